"""The delivery loop: sends each due reminder exactly once.

1. Claim a due reminder (a short lease, so one replica works it) and write a delivery
   attempt; commit. The attempt is on disk before anything leaves.
2. Send, with the reminder's idempotency key. If the previous try left an attempt with no
   outcome (the process died between sending and recording), first ask the channel whether
   it has the message; either way a resend carries the same key, which the receiver dedupes.
3. Record the outcome: `reminder-sent`; or a retry after backoff; or, after the last try,
   `reminder-failed`. A sent reminder replans the patient (the next adherence reminder).

Quiet hours (CLINICAL.md section 8) are kept here, at send time, whatever made a reminder due
(planned late, moved to a past time, a retry, a backlog after notify was down): one due in
them is moved to 08:00 local, which takes it out of the due query until then.

Times come from the injectable clock, so tests move time instead of waiting.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import SpanKind, Status, StatusCode
from sqlalchemy import func, insert, select, update

from care_shared.clock import Clock
from care_shared.contracts.notify import Channel, ReminderKind
from care_shared.db import Database
from care_shared.eventstore import ConcurrencyError, EventStore, events
from care_shared.tracing import context_from_traceparent
from notify.adapters.channels import ChannelSender, DeliveryError, Outgoing
from notify.adapters.records import (
    ReminderRecords,
    due_filter,
    load_contact,
    load_facts,
    lock_patient,
    reminder_stream,
    replan,
)
from notify.adapters.tables import delivery_attempts, reminders
from notify.domain import reminder as rem
from notify.domain.contact import ContactChannel
from notify.domain.crisis_resources import crisis_table
from notify.domain.messages import compose
from notify.domain.schedule import QUIET_HOURS, SERIES, keeps_quiet_hours

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryPolicy:
    max_attempts: int = 5
    backoff_seconds: tuple[float, ...] = (60.0, 300.0, 900.0, 3600.0)
    lease_seconds: float = 60.0
    poll_seconds: float = 1.0
    batch: int = 50

    def backoff(self, attempt: int) -> timedelta:
        return timedelta(seconds=self.backoff_seconds[min(attempt - 1, len(self.backoff_seconds) - 1)])


@dataclass(frozen=True)
class Claimed:
    reminder_id: str
    patient_id: str
    attempt: int
    in_doubt: bool
    channel: Channel
    outgoing: Outgoing
    crisis: bool
    kind: ReminderKind
    timezone: str
    traceparent: str | None = None


class DeliveryLoop:
    def __init__(
        self,
        db: Database,
        store: EventStore,
        clock: Clock,
        channels: Sequence[ChannelSender],
        policy: DeliveryPolicy,
        *,
        fault: str | None = None,
        tracer_provider: trace.TracerProvider | None = None,
        crisis_line: str | None = None,
    ) -> None:
        self.db, self.store, self.clock, self.policy = db, store, clock, policy
        # The clinic's crisis line for the crisis resources' default row (CLINICAL.md 8).
        self.crisis_line = crisis_line
        self.channels = {c.channel: c for c in channels}
        self.records = ReminderRecords(store)
        self.fault = fault  # tests only: "kill_after_send:<email|sms>" SIGKILLs this process
        self._stopping = asyncio.Event()
        self._tracer = trace.get_tracer("care.notify.delivery", tracer_provider=tracer_provider)
        self.sent = 0

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                worked = await self.deliver_due()
            except Exception as exc:  # the database may be away: keep the loop alive
                log.warning("delivery pass failed", extra={"error": type(exc).__name__})
                worked = 0
            if not worked:
                try:
                    await asyncio.wait_for(self._stopping.wait(), self.policy.poll_seconds)
                except TimeoutError:
                    pass

    async def deliver_due(self) -> int:
        now, wall = self.clock.now(), datetime.now(UTC)
        # The poll and the claim would each be a stray root trace every few seconds; what
        # operators follow is the delivery span, which continues the trace of the reminder's cause.
        with suppress_instrumentation():
            async with self.db.read() as session:
                due = (
                    (
                        await session.execute(
                            select(reminders.c.reminder_id)
                            .where(due_filter(now, wall))
                            .order_by(reminders.c.next_attempt_at, reminders.c.reminder_id)
                            .limit(self.policy.batch)
                        )
                    )
                    .scalars()
                    .all()
                )
        for reminder_id in due:
            if self._stopping.is_set():
                break
            await self.deliver(reminder_id)
        return len(due)

    async def deliver(self, reminder_id: str) -> None:
        with suppress_instrumentation():
            claimed = await self._claim(reminder_id)
        if claimed is None:
            return
        with self._tracer.start_as_current_span(
            f"deliver {claimed.channel.value}",
            context=context_from_traceparent(claimed.traceparent),
            kind=SpanKind.CLIENT,
            attributes={
                "care.reminder.id": reminder_id,
                "care.delivery.attempt": claimed.attempt,
                "care.delivery.channel": claimed.channel.value,
            },
        ) as span:
            error = await self._send(claimed)
            if error is not None:
                span.set_status(Status(StatusCode.ERROR, "delivery failed"))
            await self._record(claimed, error)

    async def _send(self, claimed: Claimed) -> str | None:
        reminder_id = claimed.reminder_id
        sender = self.channels.get(claimed.channel)
        error: str | None = None
        try:
            if sender is None:
                raise DeliveryError(f"{claimed.channel.value}: channel not configured")
            already = await sender.delivered(claimed.outgoing.key) if claimed.in_doubt else None
            if not already:
                await sender.send(claimed.outgoing)
        except DeliveryError as exc:
            error = str(exc)
        if error is None and self.fault == f"kill_after_send:{claimed.channel.value}":
            log.warning("fault injection: SIGKILL after send", extra={"reminder_id": reminder_id})
            os.kill(os.getpid(), signal.SIGKILL)
        return error

    async def _claim(self, reminder_id: str) -> Claimed | None:
        now, wall = self.clock.now(), datetime.now(UTC)
        async with self.db.transaction() as session:
            patient_id = await session.scalar(
                select(reminders.c.patient_id).where(reminders.c.reminder_id == reminder_id)
            )
            if patient_id is None:
                return None
            # The patient's lock before the reminder's row, in the order every replan takes
            # them: a claim may append to the reminder (cancel, hold), and may not deadlock.
            await lock_patient(session, patient_id)
            taken = await session.execute(
                update(reminders)
                .where(reminders.c.reminder_id == reminder_id, due_filter(now, wall))
                .values(lease_until=wall + timedelta(seconds=self.policy.lease_seconds))
            )
            if taken.rowcount != 1:
                return None  # another replica has it, or it changed meanwhile
            current, version = await self.records.load(session, reminder_id)
            assert current is not None
            crisis_message = current.kind is ReminderKind.CRISIS_RESOURCES
            contact = await load_contact(session, patient_id)
            preferred = contact.channel_for(crisis_message) if contact else None
            if preferred is None:
                # Consent withdrawn (or no address left) since it was scheduled; the replan
                # cancels it too.
                reason = "no_contact" if crisis_message else "opted_out"
                await self.records.append(session, current, version, rem.cancel(current, reason))
                return None
            # The delivery continues the trace of the clinic request that led to the reminder.
            scheduled_in = (
                await session.execute(
                    select(events.c.meta)
                    .where(events.c.stream_id == reminder_stream(reminder_id))
                    .order_by(events.c.version.desc())
                    .limit(1)
                )
            ).scalar_one_or_none() or {}
            facts = await load_facts(session, patient_id)
            if keeps_quiet_hours(current.kind) and QUIET_HOURS.is_quiet(now, facts.zone):
                morning = QUIET_HOURS.deliver_at(now, facts.zone)
                await self.records.append(
                    session,
                    current,
                    version,
                    rem.move(current, current.due_at, morning),
                    queue={"lease_until": None},
                    traceparent=scheduled_in.get("traceparent"),
                )
                return None
            appointment = None
            if current.referral_id and current.referral_id in facts.referrals:
                appointment = facts.referrals[current.referral_id].appointment_at
            # CLINICAL.md 5 and 8: while urgency is raised every message carries the row of
            # the patient's country (their own, else their time zone's, else the default).
            crisis = None
            if facts.crisis_resources or crisis_message:
                crisis = crisis_table().row_for(
                    country=facts.country, timezone=facts.timezone, crisis_line=self.crisis_line
                )
            message = compose(current.kind, crisis=crisis, appointment_at=appointment, timezone=facts.zone)
            channel = Channel.EMAIL if preferred is ContactChannel.EMAIL else Channel.SMS
            to = contact.email if channel is Channel.EMAIL else contact.phone
            last = (
                await session.execute(
                    select(delivery_attempts)
                    .where(delivery_attempts.c.reminder_id == reminder_id)
                    .order_by(delivery_attempts.c.attempt.desc())
                    .limit(1)
                )
            ).first()
            attempt = (last.attempt + 1) if last else 1
            # One key per reminder, whatever the try: what makes a resend harmless.
            key = reminder_id
            await session.execute(
                insert(delivery_attempts).values(
                    reminder_id=reminder_id,
                    attempt=attempt,
                    idempotency_key=key,
                    channel=channel.value,
                    started_at=now,
                    crisis_resources_row=crisis.row if crisis else None,
                    crisis_resources_version=crisis.rules_version if crisis else None,
                )
            )
        return Claimed(
            reminder_id,
            current.patient_id,
            attempt,
            in_doubt=bool(last and last.outcome is None),
            channel=channel,
            outgoing=Outgoing(key, to or "", message.subject, message.text),
            crisis=crisis is not None,
            kind=current.kind,
            timezone=facts.zone,
            traceparent=scheduled_in.get("traceparent"),
        )

    async def _record(self, claimed: Claimed, error: str | None) -> None:
        for _ in range(5):
            try:
                await self._record_once(claimed, error)
                return
            except ConcurrencyError:
                continue  # a replan appended to the reminder meanwhile: read it again

    async def _record_once(self, claimed: Claimed, error: str | None) -> None:
        now = self.clock.now()
        async with self.db.transaction() as session:
            await session.execute(
                update(delivery_attempts)
                .where(
                    delivery_attempts.c.reminder_id == claimed.reminder_id,
                    delivery_attempts.c.attempt == claimed.attempt,
                )
                .values(outcome="error" if error else "sent", error=error)
            )
            await lock_patient(session, claimed.patient_id)
            current, version = await self.records.load(session, claimed.reminder_id)
            assert current is not None
            if error is None:
                if current.status in (rem.SENT, rem.FAILED):
                    return
                event = rem.record_sent(current, claimed.channel, now, claimed.attempt, claimed.crisis)
                await self.records.append(
                    session, current, version, event, queue={"lease_until": None, "attempts": claimed.attempt}
                )
                self.sent += 1
                log.info(
                    "reminder sent",
                    extra={
                        "reminder_id": claimed.reminder_id,
                        "channel": claimed.channel.value,
                        "attempt": claimed.attempt,
                    },
                )
                if current.kind in SERIES:
                    await replan(session, self.store, claimed.patient_id, now)
                return
            log.warning(
                "reminder delivery failed",
                extra={"reminder_id": claimed.reminder_id, "attempt": claimed.attempt, "error": error},
            )
            if not current.pending:
                return
            if claimed.attempt >= self.policy.max_attempts:
                event = rem.record_failed(current, claimed.channel, now, claimed.attempt, error)
                await self.records.append(
                    session,
                    current,
                    version,
                    event,
                    queue={"lease_until": None, "attempts": claimed.attempt, "last_error": error[:120]},
                )
                if current.kind in SERIES:
                    await replan(session, self.store, claimed.patient_id, now)
                return
            next_try = now + self.policy.backoff(claimed.attempt)
            if keeps_quiet_hours(claimed.kind):
                next_try = QUIET_HOURS.deliver_at(next_try, claimed.timezone)
            await session.execute(
                update(reminders)
                .where(reminders.c.reminder_id == claimed.reminder_id)
                .values(
                    attempts=claimed.attempt,
                    last_error=error[:120],
                    lease_until=None,
                    next_attempt_at=next_try,
                )
            )


async def queue_depth(db: Database, now: datetime) -> int:
    async with db.read() as session:
        return (
            await session.execute(
                select(func.count()).select_from(reminders).where(due_filter(now, datetime.now(UTC)))
            )
        ).scalar_one()
