"""The drug table (CLINICAL.md section 2), shipped as data in `data/drugs.json`, loaded once.

The class comes from this table, never from an ATC prefix: SNRIs, bupropion and mirtazapine
all sit under N06AX.

The table keeps each dose in the agent's own unit (`unit`: liothyronine in micrograms, the
rest in mg), as the handbook and the pharmacist write it; `Drug` gives every dose in mg,
converted exactly (`to_mg`), because events always carry mg.

Names: brand names and aliases map to the generic; matching ignores case, a trailing release
form (XR, XL, SR, CR, ER, LA, ODT, SolTab) and the salt words of the table (`lookup`,
`normalise_agent`). An agent the table does not know is kept as entered (lower case), never
dropped: callers report it as `unknown_agent`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib.resources import files

MG = "mg"
MICROGRAM = "microgram"
# Exact factors to mg, as decimals so 25 micrograms is exactly the float 0.025.
_PER_MG: dict[str, Decimal] = {MG: Decimal(1), MICROGRAM: Decimal(1000)}

AUGMENTER = "augmenter"
RAPID_ACTING = "rapid-acting"  # esketamine, ketamine: kinds of their own, adequacy by sessions


def to_mg(value: float, unit: str) -> float:
    """`value` in `unit` (mg or microgram) as mg, exactly: to_mg(25, "microgram") == 0.025."""
    try:
        per_mg = _PER_MG[unit]
    except KeyError:
        raise ValueError(f"unknown dose unit {unit!r}") from None
    return float(Decimal(repr(float(value))) / per_mg)


def from_mg(mg: float, unit: str) -> float:
    """The inverse of `to_mg`, for showing a dose in the agent's own unit."""
    return float(Decimal(repr(float(mg))) * _PER_MG[unit])


def per_day_text(drug: Drug, mg: float) -> str:
    """A daily dose as clinicians write it for this agent: in its table unit ("100 mg/day",
    liothyronine "25 microgram/day", never "0.025 mg/day")."""
    return f"{from_mg(mg, drug.unit):g} {drug.unit}/day"


@dataclass(frozen=True)
class Drug:
    name: str  # the generic name, lower case
    drug_class: str
    atc: str
    min_mg_per_day: float | None  # for adequacy; None for the rapid-acting agents
    max_mg_per_day: float | None = None  # the usual maximum (CLINICAL.md 2); None where none
    unit: str = MG  # the unit the table (and clinics, by default) state doses in
    brands: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    max_mg_per_session: float | None = None  # esketamine: 84 mg per session

    @property
    def is_augmenter(self) -> bool:
        return self.drug_class == AUGMENTER

    @property
    def is_rapid_acting(self) -> bool:
        return self.drug_class == RAPID_ACTING

    @property
    def dose_ceiling_mg(self) -> float | None:
        """The maximum a single recorded dose is judged against: per day, else per session."""
        return self.max_mg_per_day if self.max_mg_per_day is not None else self.max_mg_per_session


@dataclass(frozen=True)
class _Table:
    drugs: dict[str, Drug]
    names: dict[str, str]  # every generic, brand and alias, lower case -> generic
    release_forms: frozenset[str]
    salts: frozenset[str]


def _mg(raw: dict, key: str, unit: str) -> float | None:
    return to_mg(raw[key], unit) if key in raw else None


@cache
def _table() -> _Table:
    raw = json.loads(files("care_shared").joinpath("data/drugs.json").read_text())
    drugs: dict[str, Drug] = {}
    names: dict[str, str] = {}
    for name, d in raw["drugs"].items():
        unit = d.get("unit", MG)
        drug = Drug(
            name=name,
            drug_class=d["class"],
            atc=d["atc"],
            min_mg_per_day=_mg(d, "min_per_day", unit),
            max_mg_per_day=_mg(d, "max_per_day", unit),
            unit=unit,
            brands=tuple(d.get("brands", ())),
            aliases=tuple(d.get("aliases", ())),
            max_mg_per_session=_mg(d, "max_per_session", unit),
        )
        drugs[name] = drug
        for other in (name, *drug.brands, *drug.aliases):
            key = other.lower()
            if names.setdefault(key, name) != name:
                raise ValueError(f"drugs.json: {other!r} names both {names[key]} and {name}")
    return _Table(
        drugs,
        names,
        frozenset(f.lower() for f in raw.get("release_forms", ())),
        frozenset(s.lower() for s in raw.get("salts", ())),
    )


_SEPARATORS = re.compile(r"[\s(),/]+")


def _key(name: str, table: _Table) -> str:
    """The name without case, salt words or a trailing release form ("Effexor-XR" -> effexor)."""
    words = [w for w in _SEPARATORS.split(name.strip().lower()) if w]
    if words:
        stem, dash, form = words[-1].rpartition("-")
        if dash and stem and form in table.release_forms:
            words[-1:] = [stem, form]
    words = [w for w in words if w not in table.salts] or words
    while len(words) > 1 and words[-1] in table.release_forms:
        words.pop()
    return " ".join(words)


def normalise_agent(name: str) -> str:
    """The generic name for a generic, brand or alias ("Zoloft", "Effexor XR", "Lithium
    carbonate", "T3"); an unknown agent as entered, in lower case with single spaces."""
    table = _table()
    generic = table.names.get(_key(name, table))
    return generic if generic is not None else " ".join(name.lower().split())


def lookup(name: str) -> Drug | None:
    """The drug, or None for an agent the table does not know (report it, never drop it)."""
    table = _table()
    generic = table.names.get(_key(name, table))
    return table.drugs[generic] if generic is not None else None


def all_drugs(*, rapid_acting: bool = False) -> dict[str, Drug]:
    """The table by generic name: the daily-dosed agents (antidepressants and augmenters),
    plus esketamine and ketamine when `rapid_acting` (they have no daily doses)."""
    return {n: d for n, d in _table().drugs.items() if rapid_acting or not d.is_rapid_acting}
