"""Comparing a projection rebuilt from events with the live one (`carectl rebuild <service>`)."""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from care_shared.db import Database
from care_shared.eventstore import events


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


async def refold_streams(
    db: Database,
    prefix: str,
    project: Callable[[AsyncSession, str], Awaitable[Any | None]],
    live: Callable[[AsyncSession], Awaitable[dict[str, Any]]],
    progress: Callable[[int, int], None] | None = None,
) -> RebuildReport:
    """Fold every stream named `<prefix><id>` in this service's own store again with
    `project(session, id)`, and compare with `live(session)`: both keyed by id."""
    rebuilt: dict[str, Any] = {}
    named = events.c.stream_id.like(f"{prefix}%")
    async with db.read() as session:
        stream_ids = sorted(
            (await session.execute(sa.select(events.c.stream_id).where(named).distinct())).scalars()
        )
        n_events = (
            await session.execute(sa.select(sa.func.count()).select_from(events).where(named))
        ).scalar_one()
        for i, stream_id in enumerate(stream_ids, 1):
            key = stream_id.removeprefix(prefix)
            row = await project(session, key)
            if row is not None:
                rebuilt[key] = row
            if progress:
                progress(i, len(stream_ids))
        current = await live(session)
    return compare(current, rebuilt, events=n_events)


def as_json(value: Any) -> Any:
    """Dates and datetimes as ISO strings, as a projection stores them; a naive datetime (as
    SQLite hands them back) is UTC, as everything here stores."""

    def iso(v: Any) -> str:
        if isinstance(v, datetime):
            return (v if v.tzinfo else v.replace(tzinfo=UTC)).astimezone(UTC).isoformat()
        return v.isoformat()

    return json.loads(json.dumps(value, default=iso))


def progress_bar(label: str):
    def draw(done: int, total: int) -> None:
        width = 40
        filled = width * done // max(total, 1)
        print(
            f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}",
            end="",
            file=sys.stderr,
            flush=True,
        )
        if done >= total:
            print(file=sys.stderr)

    return draw
