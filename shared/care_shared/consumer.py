"""Consuming events: durable pull consumers, an inbox, bounded redelivery, dead letters.

For every message:
1. Parse the CloudEvents envelope and validate its data against the published schema, and
   check where it came from (care_shared.origin: stream, type, source and subject must name
   one producer). Malformed JSON, a bad envelope, an unknown type, a newer schema version
   than this code knows, data that fails validation, or a forged origin can never succeed:
   the message goes to `dlq.<consumer>` with the reason, and is terminated so the consumer
   moves on.
2. In one transaction: claim `(consumer, event_id)` in the inbox (a duplicate is skipped)
   and run the handler, which writes its state and any events of its own.
3. Ack only after that commit. A transient failure (care_shared.transient: the database
   locked or unreachable, a timeout, a lost connection) says nothing about the event: the
   handling is tried again here, with capped exponential backoff, for as long as the failure
   lasts, reporting progress so JetStream does not redeliver it meanwhile. It is counted
   (care_consumer_transient_failures_total) and logged, never toward the dead-letter budget.
   A deterministic failure naks with backoff; the last permitted delivery that still fails
   goes to the dead-letter subject with the reason instead.
4. While a handling runs, a heartbeat tells JetStream it is in progress every ack_wait/3, so
   a slow handler is not redelivered beside itself. JetStream's delivery count therefore
   grows only with deterministic failures and deliveries never answered (the process died
   or hung). JetStream itself never gives up on a message (its max_deliver is unlimited):
   past our limit, such a message is dead-lettered before the handler runs. With a
   JetStream limit, it would be dropped silently, with no dead letter and no reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime

from faststream import AckPolicy
from faststream.nats import JStream, NatsBroker, PullSub
from faststream.nats.annotations import NatsMessage
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from care_shared.contracts import (
    EventData,
    InvalidEventData,
    UnknownEventType,
    UnsupportedVersion,
    decode,
)
from care_shared.db import Database
from care_shared.envelope import CLOUDEVENTS_CONTENT_TYPE, Envelope, EnvelopeError, parse_envelope
from care_shared.eventstore import ConcurrencyError, inbox
from care_shared.metrics import ServiceMetrics
from care_shared.origin import ForgedEvent, verify_origin
from care_shared.topology import dlq_subject, durable_config, durable_for
from care_shared.transient import transient_kind

log = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, Envelope, EventData], Awaitable[None]]

DLQ_REASON = "Care-Dlq-Reason"
DLQ_CONSUMER = "Care-Dlq-Consumer"
DLQ_SUBJECT = "Care-Dlq-Original-Subject"
DLQ_STREAM_SEQ = "Care-Dlq-Stream-Sequence"
DLQ_DELIVERIES = "Care-Dlq-Deliveries"


CONFLICT_RETRIES = 5


class PoisonEvent(Exception):
    """Raised by a handler for an event that can never be processed; the message names why
    (ids and rules only, never patient data)."""


class PositionTaken(PoisonEvent):
    """The producer's stream position this event claims is already held by another event id:
    one of the two is not what it says. Never dropped as a "duplicate": dead-lettered with
    both ids, and counted."""

    def __init__(self, position: int, held_by: str, claimed_by: str) -> None:
        super().__init__(f"position {position} is held by event {held_by}; refused {claimed_by}")


@dataclass(frozen=True)
class ConsumerPolicy:
    max_deliver: int = 5
    ack_wait_seconds: float = 30.0
    backoff_seconds: tuple[float, ...] = (0.5, 2.0, 5.0, 15.0)
    fetch_batch: int = 16
    # Transient failures: retried after first, doubling to cap, for as long as they last.
    transient_first_seconds: float = 1.0
    transient_cap_seconds: float = 30.0
    # Heartbeats (in_progress) while a handler runs. Off only in tests that play a process
    # which has died holding a message.
    report_progress: bool = True

    def delay_after(self, delivered: int) -> float:
        index = min(max(delivered - 1, 0), len(self.backoff_seconds) - 1)
        return self.backoff_seconds[index]

    def transient_delay(self, attempt: int) -> float:
        return min(
            self.transient_first_seconds * 2 ** min(max(attempt - 1, 0), 30), self.transient_cap_seconds
        )


class EventConsumers:
    """Registers a service's durable consumers on its broker."""

    def __init__(
        self,
        service: str,
        broker: NatsBroker,
        db: Database,
        policy: ConsumerPolicy,
        metrics: ServiceMetrics | None = None,
        *,
        inbox: str | None = None,
        topology_checked: bool = True,
    ) -> None:
        self.service = service
        # Pull consumers fetch on the client's inbox: it must be this user's own (nats_auth).
        self.inbox = (inbox + ".").encode() if inbox else None
        self.topology_checked = topology_checked
        self.metrics = metrics or ServiceMetrics(service)
        self.streams: dict[str, str] = {}
        self.subjects: dict[str, str] = {}
        self.broker = broker
        self.db = db
        self.policy = policy
        self.processed = 0
        self.dead_lettered = 0
        self.durables: list[str] = []
        self._ack_waits: dict[str, float] = {}

    def subscribe(self, purpose: str, stream: str, subject: str, handler: Handler) -> str:
        if self.topology_checked:  # a durable the topology lacks has no permissions either
            durable_for(self.service, purpose, stream, subject)
        durable = f"{self.service}-{purpose}"
        self.durables.append(durable)
        self.streams[durable] = stream
        self.subjects[durable] = subject
        policy = self.policy

        @self.broker.subscriber(
            subject,
            stream=JStream(name=stream, declare=False),
            durable=durable,
            pull_sub=PullSub(batch_size=policy.fetch_batch, timeout=1.0),
            # Ops creates a topology durable with this configuration (carectl bus ensure); the
            # service only finds it. max_deliver -1: never dropped by JetStream (step 4 above).
            config=durable_config(durable, subject, policy.ack_wait_seconds),
            # Never FastStream's default, which terminates a message on any exception.
            ack_policy=AckPolicy.MANUAL,
            title=durable,
            **({"inbox_prefix": self.inbox} if self.inbox else {}),
        )
        async def on_message(msg: NatsMessage) -> None:
            await self.process(durable, handler, msg)

        return durable

    async def process(self, durable: str, handler: Handler, msg: NatsMessage) -> None:
        raw = msg.raw_message
        delivered = raw.metadata.num_delivered or 1
        if delivered > self.policy.max_deliver:
            reason = f"no answer after {delivered - 1} deliveries (timed out or the process died)"
            await self._dead_letter(msg, durable, reason, delivered)
            return
        try:
            envelope = parse_envelope(raw.data)
        except EnvelopeError as exc:
            await self._dead_letter(msg, durable, str(exc), delivered)
            return
        try:  # where it came from, before anything it says is read
            verify_origin(envelope, raw.metadata.stream, raw.subject)
        except ForgedEvent as exc:
            self.metrics.events_refused.labels(durable, "origin").inc()
            await self._dead_letter(msg, durable, f"refused: {exc}", delivered)
            return
        try:
            payload = decode(envelope.type, envelope.data)
        except (UnknownEventType, UnsupportedVersion, InvalidEventData) as exc:
            await self._dead_letter(msg, durable, str(exc), delivered)
            return
        try:
            async with self._reporting_progress(msg, durable):
                first_time = await self._handle_through_weather(durable, handler, envelope, payload, raw)
        except PositionTaken as exc:
            self.metrics.events_refused.labels(durable, "position_taken").inc()
            await self._dead_letter(msg, durable, f"refused: {exc}", delivered)
            return
        except PoisonEvent as exc:
            await self._dead_letter(msg, durable, f"rejected by handler: {exc}", delivered)
            return
        except Exception as exc:
            if delivered >= self.policy.max_deliver:
                reason = f"failed after {delivered} deliveries: {type(exc).__name__}"
                await self._dead_letter(msg, durable, reason, delivered)
            else:
                log.warning(
                    "event handling failed; will redeliver",
                    extra={
                        "consumer": durable,
                        "event_id": envelope.id,
                        "error": type(exc).__name__,
                        "delivered": delivered,
                    },
                )
                self.metrics.events_redelivered.labels(durable).inc()
                await msg.nack(delay=self.policy.delay_after(delivered))
            return
        # Counted at the commit: if the ack below is lost, the redelivery is a duplicate.
        if first_time:
            self.metrics.events_consumed.labels(durable, envelope.type).inc()
        else:
            self.metrics.events_duplicate.labels(durable).inc()
        try:
            await msg.ack()
        except Exception as exc:  # the commit stands; the redelivery meets the inbox
            log.warning(
                "ack failed after the commit",
                extra={"consumer": durable, "event_id": envelope.id, "error": type(exc).__name__},
            )
        self.processed += 1

    async def _handle_through_weather(
        self,
        durable: str,
        handler: Handler,
        envelope: Envelope,
        payload: EventData,
        raw,
    ) -> bool:
        """`_handle_once`, tried again after every transient failure, however long it lasts;
        a deterministic failure is raised to be counted."""
        attempt = 0
        while True:
            try:
                return await self._handle_once(durable, handler, envelope, payload)
            except PoisonEvent:
                raise
            except Exception as exc:
                kind = transient_kind(exc)
                if kind is None:
                    raise
                attempt += 1
                delay = self.policy.transient_delay(attempt)
                self.metrics.consumer_transient_failures.labels(durable, kind).inc()
                log.warning(
                    "transient failure; retrying, not counted toward dead-lettering",
                    extra={
                        "consumer": durable,
                        "event_id": envelope.id,
                        "stream_seq": raw.metadata.sequence.stream,
                        "kind": kind,
                        "error": type(exc).__name__,
                        "attempt": attempt,
                        "retry_in": delay,
                    },
                )
                await asyncio.sleep(delay)

    @asynccontextmanager
    async def _reporting_progress(self, msg: NatsMessage, durable: str) -> AsyncIterator[None]:
        """Tell JetStream every ack_wait/3 that this delivery is being worked on."""
        if not self.policy.report_progress:
            yield
            return
        every = await self._ack_wait(durable) / 3

        async def beat() -> None:
            while True:
                await asyncio.sleep(every)
                try:
                    await msg.raw_message.in_progress()
                except Exception as exc:  # NATS away: the next beat, or a redelivery, follows
                    log.debug("in_progress failed", extra={"consumer": durable, "error": type(exc).__name__})

        heartbeat = asyncio.create_task(beat())
        try:
            yield
        finally:
            heartbeat.cancel()
            with suppress(asyncio.CancelledError):
                await heartbeat

    async def _ack_wait(self, durable: str) -> float:
        """The durable's ack_wait as JetStream has it (ops created it), else the policy's."""
        if durable not in self._ack_waits:
            try:
                info = await self.broker.connection.jetstream().consumer_info(
                    self.streams[durable], durable, timeout=2.0
                )
                self._ack_waits[durable] = min(
                    info.config.ack_wait or self.policy.ack_wait_seconds, self.policy.ack_wait_seconds
                )
            except Exception:
                return self.policy.ack_wait_seconds
        return self._ack_waits[durable]

    async def _handle_once(
        self, durable: str, handler: Handler, envelope: Envelope, payload: EventData
    ) -> bool:
        """The inbox claim and the handler in one transaction. A lost race with another
        replica (optimistic concurrency, or the same row inserted twice) is normal under
        scale-out: try again at once from a fresh read, a few times, before it counts as a
        failed delivery."""
        for attempt in range(1, CONFLICT_RETRIES + 1):
            try:
                async with self.db.transaction() as session:
                    first_time = await claim_inbox(session, durable, envelope.id)
                    if first_time:
                        await handler(session, envelope, payload)
                return first_time
            except (ConcurrencyError, IntegrityError):
                if attempt == CONFLICT_RETRIES:
                    raise
                self.metrics.events_conflicts.labels(durable).inc()
        raise AssertionError("unreachable")

    async def refresh_lag(self) -> None:
        """Consumer lag and pending acks, asked of JetStream at scrape time."""
        js = self.broker.connection.jetstream()
        for durable, stream in self.streams.items():
            info = await js.consumer_info(stream, durable)
            self.metrics.consumer_pending.labels(durable).set(info.num_pending or 0)
            self.metrics.consumer_ack_pending.labels(durable).set(info.num_ack_pending or 0)

    async def _dead_letter(self, msg: NatsMessage, durable: str, reason: str, delivered: int) -> None:
        raw = msg.raw_message
        stream_seq = raw.metadata.sequence.stream
        headers = {
            # Dedupe: a crash after this publish and before the term() republishes the same.
            "Nats-Msg-Id": f"dlq:{durable}:{stream_seq}",
            DLQ_REASON: reason[:1000],
            DLQ_CONSUMER: durable,
            DLQ_SUBJECT: raw.subject,
            DLQ_STREAM_SEQ: str(stream_seq),
            DLQ_DELIVERIES: str(delivered),
            "Content-Type": CLOUDEVENTS_CONTENT_TYPE,
        }
        try:
            await self.broker.connection.jetstream().publish(
                dlq_subject(durable), raw.data, headers=headers, timeout=5.0
            )
        except Exception as exc:  # the DLQ is away: keep the message, try again later
            log.error("dead-letter publish failed", extra={"consumer": durable, "error": type(exc).__name__})
            await msg.nack(delay=self.policy.delay_after(delivered))
            return
        log.warning(
            "event dead-lettered",
            extra={"consumer": durable, "stream_seq": stream_seq, "reason": reason},
        )
        self.dead_lettered += 1
        self.metrics.events_dead_lettered.labels(durable).inc()
        await msg.reject()  # term(): never redelivered


async def claim_inbox(session: AsyncSession, consumer: str, event_id: str) -> bool:
    """Record the event as processed by `consumer`; False if it already was."""
    values = {"consumer": consumer, "event_id": event_id, "processed_at": datetime.now(UTC)}
    dialect = session.bind.dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(inbox).values(**values).on_conflict_do_nothing()
    result = await session.execute(stmt)
    return result.rowcount == 1
