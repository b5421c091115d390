"""Escalation: a task left unclaimed past its urgency's limit is escalated (an event; it moves
up the queue). The sweep asks the injectable clock for the time, so tests move the clock and
call `escalate_due` instead of waiting."""

from __future__ import annotations

import asyncio
import logging

from opentelemetry.instrumentation.utils import suppress_instrumentation
from sqlalchemy import func, select

from care_shared.eventstore import ConcurrencyError
from care_shared.service import Runtime
from referral import domain
from referral.records import Referrals
from referral.tables import tasks

log = logging.getLogger(__name__)


async def escalate_due(runtime: Runtime) -> list[str]:
    """Escalate every task due now; returns the referral ids escalated by this call."""
    now = runtime.clock.now()
    referrals = Referrals(runtime.store)
    # The sweep's look at the queue would be a stray root trace every few seconds; an
    # escalation itself is traced through the event it appends.
    with suppress_instrumentation():
        async with runtime.db.read() as session:
            # Only a narrowing: nothing is due before it has waited the shortest limit since
            # it was queued or its lease ended. The domain has the word on each one.
            waited_enough = now - min(domain.ESCALATE_AFTER.values())
            ids = (
                await session.execute(
                    select(tasks.c.referral_id).where(
                        tasks.c.status.in_((*domain.WAITING, domain.CLAIMED)),
                        func.coalesce(tasks.c.lease_until, tasks.c.waiting_since) <= waited_enough,
                    )
                )
            ).scalars().all()
            candidates = await referrals.load_many(session, ids)
    due = [rid for rid, (r, _) in candidates.items() if domain.escalation_due(r, now)]
    escalated = []
    for referral_id in sorted(due):
        try:
            async with runtime.db.transaction() as session:
                referral, owner = await referrals.load(session, referral_id)
                decided = domain.escalate(referral, now) if referral else []
                if decided:
                    await referrals.append(session, referral, owner, decided)
                    escalated.append(referral_id)
        except ConcurrencyError:
            continue  # someone acted on it meanwhile: the next sweep looks again
    if escalated:
        log.info("tasks escalated", extra={"count": len(escalated)})
    return escalated


class EscalationSweep:
    """Runs `escalate_due` every few seconds inside the service."""

    def __init__(self, runtime: Runtime, every_seconds: float) -> None:
        self.runtime = runtime
        self.every_seconds = every_seconds
        self._stop = asyncio.Event()

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                await escalate_due(self.runtime)
            except Exception as exc:  # the database may be away for a moment: try next round
                log.warning("escalation sweep failed", extra={"error": type(exc).__name__})
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=self.every_seconds)
            except TimeoutError:
                pass

    def stop(self) -> None:
        self._stop.set()
