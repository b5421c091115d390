"""Escalation: a task left unclaimed past its urgency's limit is escalated (an event; it moves
up the queue). The sweep asks the injectable clock for the time, so tests move the clock and
call `escalate_due` instead of waiting."""

from __future__ import annotations

import asyncio
import logging

from care_shared.service import Runtime
from referral import handlers
from referral.adapters.records import Referrals

log = logging.getLogger(__name__)


async def escalate_due(runtime: Runtime) -> list[str]:
    """Escalate every task due now (referral.handlers.escalate_due at the runtime's clock)."""
    return await handlers.escalate_due(runtime.db, Referrals(runtime.store), runtime.clock.now())


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
