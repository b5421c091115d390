"""Rebuild: fold every referral's own events into its queue row again and compare with the
live queue (what coordinators see)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from care_shared.db import Database
from care_shared.eventstore import EventStore, events
from care_shared.rebuild import RebuildReport, as_json, compare
from referral.records import Referrals, task_row, utc
from referral.tables import tasks

PREFIX = "referral-"


def _utc(value: Any) -> Any:
    return utc(value) if isinstance(value, datetime) else value


async def rebuild_and_compare(db: Database, progress: Callable[[int, int], None] | None = None) -> RebuildReport:
    referrals = Referrals(EventStore())
    rebuilt: dict[str, Any] = {}
    async with db.read() as session:
        stream_ids = (
            await session.execute(sa.select(events.c.stream_id).where(events.c.stream_id.like(f"{PREFIX}%")).distinct())
        ).scalars().all()
        n_events = (
            await session.execute(sa.select(sa.func.count()).select_from(events).where(events.c.stream_id.like(f"{PREFIX}%")))
        ).scalar_one()
        for i, stream_id in enumerate(sorted(stream_ids), 1):
            referral_id = stream_id.removeprefix(PREFIX)
            referral, owner = await referrals.load(session, referral_id)
            if referral is not None:
                rebuilt[referral_id] = as_json(await task_row(session, referral, owner))
            if progress:
                progress(i, len(stream_ids))
        columns = [c for c in tasks.c if c.name != "referral_id"]
        live = {
            row.referral_id: as_json({c.name: _utc(getattr(row, c.name)) for c in columns})
            for row in await session.execute(sa.select(tasks))
        }
    return compare(live, rebuilt, events=n_events)
