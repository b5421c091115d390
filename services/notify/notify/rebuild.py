"""Rebuild: fold every reminder's own events into its row again and compare what the events
decide (kind, status, times, channel, crisis resources) with the live reminders. The
delivery queue's working columns (lease, attempts, next try) are not events and not compared."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from care_shared.db import Database
from care_shared.eventstore import EventStore, events
from care_shared.rebuild import RebuildReport, as_json, compare
from notify.records import FROM_EVENTS, ReminderRecords, reminder_row, utc
from notify.tables import reminders

PREFIX = "reminder-"


def _normalised(row: dict[str, Any]) -> dict[str, Any]:
    return as_json({k: utc(v) if isinstance(v, datetime) else v for k, v in row.items()})


async def rebuild_and_compare(db: Database, progress: Callable[[int, int], None] | None = None) -> RebuildReport:
    records = ReminderRecords(EventStore())
    rebuilt: dict[str, Any] = {}
    async with db.read() as session:
        stream_ids = (
            await session.execute(sa.select(events.c.stream_id).where(events.c.stream_id.like(f"{PREFIX}%")).distinct())
        ).scalars().all()
        n_events = (
            await session.execute(sa.select(sa.func.count()).select_from(events).where(events.c.stream_id.like(f"{PREFIX}%")))
        ).scalar_one()
        for i, stream_id in enumerate(sorted(stream_ids), 1):
            reminder_id = stream_id.removeprefix(PREFIX)
            reminder, _ = await records.load(session, reminder_id)
            if reminder is not None:
                rebuilt[reminder_id] = _normalised(reminder_row(reminder))
            if progress:
                progress(i, len(stream_ids))
        live = {
            row.reminder_id: _normalised({c: getattr(row, c) for c in FROM_EVENTS})
            for row in await session.execute(sa.select(reminders))
        }
    return compare(live, rebuilt, events=n_events)
