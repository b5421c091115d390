"""Comparing a projection rebuilt from events with the live one (`carectl rebuild <service>`)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RebuildReport:
    events: int
    compared: int
    identical: int = 0
    different: list[str] = field(default_factory=list)
    missing_in_live: list[str] = field(default_factory=list)
    only_in_live: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.different or self.missing_in_live or self.only_in_live)

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "identical_to_live": self.ok}


def compare(live: dict[str, Any], rebuilt: dict[str, Any], *, events: int) -> RebuildReport:
    """Both sides keyed by id, values JSON-comparable (pass them through `as_json`)."""
    report = RebuildReport(events=events, compared=len(rebuilt))
    for key, value in rebuilt.items():
        if key not in live:
            report.missing_in_live.append(key)
        elif live[key] == value:
            report.identical += 1
        else:
            report.different.append(key)
    report.only_in_live = sorted(set(live) - set(rebuilt))
    return report


def as_json(value: Any) -> Any:
    """Dates and datetimes as ISO strings, as a projection stores them."""
    return json.loads(json.dumps(value, default=lambda v: v.isoformat()))


def progress_bar(label: str):  # noqa: ANN201
    def draw(done: int, total: int) -> None:
        width = 40
        filled = width * done // max(total, 1)
        print(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}", end="", file=sys.stderr, flush=True)
        if done >= total:
            print(file=sys.stderr)

    return draw
