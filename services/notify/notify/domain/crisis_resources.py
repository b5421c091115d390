"""Crisis resources by country (CLINICAL.md sections 5 and 8): which row of the table a
patient's messages carry. The table is data, versioned with the rules
(`data/crisis_resources.json`); the country is the patient's own `country`, else the country
of the patient's IANA time zone in tzdata's `zone.tab`, else the default row.

Pure but for reading the two data files once: the table, and `zone.tab` from the `tzdata`
package (a pinned dependency, so every machine maps a zone to the same country), falling
back to the system's /usr/share/zoneinfo where the package's copy is missing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path

DEFAULT_ROW = "default"
SYSTEM_ZONEINFO = Path("/usr/share/zoneinfo")


@dataclass(frozen=True)
class CrisisResources:
    """The row a message carries: its name in the table (`US`, ..., `default`), the rule set
    it comes from, and what the patient reads."""

    row: str
    rules_version: str
    resources: str


@dataclass(frozen=True)
class CrisisTable:
    rules_version: str
    rows: dict[str, str]  # row name -> resources, word for word
    crisis_line_rows: frozenset[str]  # rows that add the clinic's crisis line where configured

    def row_for(
        self, *, country: str | None, timezone: str | None, crisis_line: str | None = None
    ) -> CrisisResources:
        """The patient's `country`, else their time zone's country, else the default row.
        A country without a row of its own (or a zone without a country) gets the default."""
        code = (country or "").upper() or country_of_zone(timezone)
        row = code if code in self.rows and code != DEFAULT_ROW else DEFAULT_ROW
        resources = self.rows[row]
        if row in self.crisis_line_rows and crisis_line:
            # Messages never name the clinic (messages.py): it is "your care team".
            resources = f"{resources}; your care team's crisis line: {crisis_line}"
        return CrisisResources(row, self.rules_version, resources)


@cache
def crisis_table() -> CrisisTable:
    raw = json.loads(files("notify").joinpath("data/crisis_resources.json").read_text())
    rows = {name: row["resources"] for name, row in raw["rows"].items()}
    if DEFAULT_ROW not in rows:
        raise ValueError("crisis_resources.json: the table needs a default row")
    plus = frozenset(name for name, row in raw["rows"].items() if row.get("plus_crisis_line"))
    return CrisisTable(raw["rules_version"], rows, plus)


def _tzdata_file(name: str) -> str | None:
    try:
        return files("tzdata").joinpath("zoneinfo", name).read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
        pass
    path = SYSTEM_ZONEINFO / name
    return path.read_text(encoding="utf-8") if path.exists() else None


@cache
def zone_countries() -> dict[str, str]:
    """zone.tab: `country-code <TAB> coordinates <TAB> TZ [<TAB> comments]`, one zone per
    line, '#' comments. A zone names one country there."""
    text = _tzdata_file("zone.tab") or ""
    countries = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) >= 3:
            countries[fields[2]] = fields[0]
    return countries


@cache
def zone_links() -> dict[str, str]:
    """Link names (`US/Eastern`, `GB`, `Eire`, `Europe/Belfast`) to their zone, from the
    `L target link` lines of tzdata.zi: zone.tab lists zones, not the names linked to them."""
    text = _tzdata_file("tzdata.zi") or ""
    links = {}
    for line in text.splitlines():
        if line.startswith("L "):
            _, target, link = line.split()
            links[link] = target
    return links


def country_of_zone(timezone: str | None) -> str | None:
    """The country zone.tab gives the time zone (through its link's target where the name is
    a link: zone.tab's own line first, so `Europe/Jersey` is JE, not GB); None for a zone
    with no country (UTC, Etc/...) or an unknown name."""
    if not timezone:
        return None
    countries = zone_countries()
    if timezone in countries:
        return countries[timezone]
    target = zone_links().get(timezone)
    return countries.get(target) if target else None
