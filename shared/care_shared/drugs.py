"""The drug table (CLINICAL.md section 2), shipped as data in `data/drugs.json`, loaded once.

The class comes from this table, never from an ATC prefix: SNRIs, bupropion and mirtazapine
all sit under N06AX.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files


@dataclass(frozen=True)
class Drug:
    name: str
    drug_class: str
    atc: str
    min_mg_per_day: float

    @property
    def is_augmenter(self) -> bool:
        return self.drug_class == "augmenter"


@cache
def _table() -> tuple[dict[str, Drug], dict[str, str]]:
    raw = json.loads(files("care_shared").joinpath("data/drugs.json").read_text())
    drugs = {
        name: Drug(name, d["class"], d["atc"], float(d["min_mg_per_day"]))
        for name, d in raw["drugs"].items()
    }
    return drugs, raw.get("aliases", {})


def normalise_agent(name: str) -> str:
    key = name.strip().lower()
    _, aliases = _table()
    return aliases.get(key, key)


def lookup(name: str) -> Drug | None:
    """The drug, or None for an agent the table does not know (report it, never drop it)."""
    drugs, _ = _table()
    return drugs.get(normalise_agent(name))


def all_drugs() -> dict[str, Drug]:
    return dict(_table()[0])
