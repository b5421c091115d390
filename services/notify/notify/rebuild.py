"""Rebuild: fold every reminder's own events into its row again and compare what the events
decide (kind, status, times, channel, crisis resources) with the live reminders. The
delivery queue's working columns (lease, attempts, next try) are not events and not compared."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from care_shared.db import Database
from care_shared.eventstore import EventStore
from care_shared.rebuild import RebuildReport, as_json, refold_streams
from notify.adapters.records import FROM_EVENTS, ReminderRecords, reminder_row
from notify.adapters.tables import reminders


async def rebuild_and_compare(
    db: Database, progress: Callable[[int, int], None] | None = None
) -> RebuildReport:
    records = ReminderRecords(EventStore())

    async def project(session: AsyncSession, reminder_id: str) -> dict[str, Any] | None:
        reminder, _ = await records.load(session, reminder_id)
        return as_json(reminder_row(reminder)) if reminder else None

    async def live(session: AsyncSession) -> dict[str, Any]:
        rows = await session.execute(sa.select(reminders))
        return {row.reminder_id: as_json({c: getattr(row, c) for c in FROM_EVENTS}) for row in rows}

    return await refold_streams(db, "reminder-", project, live, progress)
