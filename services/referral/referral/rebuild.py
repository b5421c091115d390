"""Rebuild: fold every referral's own events into its queue row again and compare with the
live queue (what coordinators see)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from care_shared.db import Database
from care_shared.eventstore import EventStore
from care_shared.rebuild import RebuildReport, as_json, refold_streams
from referral.adapters.records import Referrals, task_row
from referral.adapters.tables import tasks


async def rebuild_and_compare(
    db: Database, progress: Callable[[int, int], None] | None = None
) -> RebuildReport:
    referrals = Referrals(EventStore())

    async def project(session: AsyncSession, referral_id: str) -> dict[str, Any] | None:
        referral, owner = await referrals.load(session, referral_id)
        return as_json(await task_row(session, referral, owner)) if referral else None

    async def live(session: AsyncSession) -> dict[str, Any]:
        columns = [c.name for c in tasks.c if c.name != "referral_id"]
        rows = await session.execute(sa.select(tasks))
        return {row.referral_id: as_json({c: getattr(row, c) for c in columns}) for row in rows}

    return await refold_streams(db, "referral-", project, live, progress)
