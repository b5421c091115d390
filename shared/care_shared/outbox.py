"""The outbox relay: publishes committed events to JetStream and then forgets them.

- Woken right after a commit that wrote outbox rows; polling is only a safety net (and the
  way a relay running in another process notices work).
- Publishes in batches with `Nats-Msg-Id` = event id: a relay that dies after publishing and
  before deleting its rows republishes them on restart, and JetStream drops the duplicates.
- Continues the trace of the request that stored each event (its stored `traceparent`).
- Retries with exponential backoff when NATS or the database is away.
- A row that can never become a message (its envelope or subject cannot be built) is set
  aside with its reason (`set_aside_at`, `last_error`; `carectl outbox`, the
  care_outbox_set_aside metric) and never blocks the rows behind it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from datetime import UTC, datetime

from nats.js import JetStreamContext
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import SpanKind, Status, StatusCode
from pydantic import ValidationError
from sqlalchemy import delete, func, select, update

from care_shared.db import Database
from care_shared.envelope import CLOUDEVENTS_CONTENT_TYPE, EventType, nats_subject, to_envelope
from care_shared.eventstore import events, outbox
from care_shared.metrics import ServiceMetrics
from care_shared.tracing import context_from_traceparent

log = logging.getLogger(__name__)

# Fault injection for the crash tests: set to "kill_after_publish" and the relay SIGKILLs its
# own process after JetStream acknowledged a batch and before the outbox rows are deleted.
FAULT_ENV = "CARE_RELAY_FAULT"


def envelope_bytes(source: str, row) -> bytes:
    recorded_at: datetime = row.recorded_at
    env = to_envelope(
        event_id=row.event_id,
        source=source,
        type=row.type,
        subject=row.subject,
        time=recorded_at,
        data=row.data,
        sequence=row.version,
        traceparent=row.meta.get("traceparent"),
        clinicid=row.meta.get("clinicid"),
    )
    return env.model_dump_json(exclude_none=True).encode()


class OutboxRelay:
    def __init__(
        self,
        db: Database,
        source: str,
        jetstream: Callable[[], JetStreamContext],
        *,
        batch_size: int = 256,
        poll_seconds: float = 1.0,
        ack_timeout: float = 10.0,
        tracer_provider: trace.TracerProvider | None = None,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self.db = db
        self.source = source
        self.service = source.strip("/")
        self._jetstream = jetstream
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.ack_timeout = ack_timeout
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._tracer = trace.get_tracer("care.outbox", tracer_provider=tracer_provider)
        self.published_total = 0
        self.metrics = metrics
        db.on_commit(self.wake)

    def wake(self, _appended: list[str] | None = None) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                published = await self.publish_pending()
                failures = 0
                if published >= self.batch_size:
                    continue  # more is waiting
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                delay = min(0.2 * 2**failures, 10.0)
                log.warning(
                    "outbox relay failed; retrying",
                    extra={"error": type(exc).__name__, "retry_in_s": delay},
                )
                await self._sleep(delay)
                continue
            await self._sleep(self.poll_seconds, wakeable=True)

    async def _sleep(self, seconds: float, *, wakeable: bool = False) -> None:
        waiter = self._wake if wakeable else self._stopping
        try:
            await asyncio.wait_for(waiter.wait(), timeout=seconds)
        except TimeoutError:
            pass

    async def publish_pending(self) -> int:
        """Publish one batch; returns how many rows it took."""
        # The relay's own database work would otherwise add a stray root trace every poll;
        # what operators follow is the publish span, which continues the request's trace.
        with suppress_instrumentation():
            return await self._publish_batch()

    def _pending_query(self):
        return (
            select(outbox.c.position, events)
            .join(events, events.c.position == outbox.c.position)
            .where(outbox.c.set_aside_at.is_(None))
            .order_by(outbox.c.position)
            .limit(self.batch_size)
        )

    async def _publish_batch(self) -> int:
        if self.db.is_sqlite:
            # SQLite has one writer: read, publish with no transaction open, then forget the
            # published rows in a short write, so clinics' writes never wait on NATS.
            async with self.db.read() as session:
                rows = (await session.execute(self._pending_query())).all()
            if not rows:
                return 0
            done, failed, poisoned = await self._publish(rows)
            async with self.db.transaction() as session:
                await self._forget(session, done, failed)
                await self._set_aside(session, poisoned)
        else:
            async with self.db.transaction() as session:
                # Several relays (replicas) share the outbox without publishing a row twice.
                query = self._pending_query().with_for_update(of=outbox, skip_locked=True)
                rows = (await session.execute(query)).all()
                if not rows:
                    return 0
                done, failed, poisoned = await self._publish(rows)
                await self._forget(session, done, failed)
                await self._set_aside(session, poisoned)
        self.published_total += len(done)
        if failed:  # after the commit, so the published rows stay published
            raise RuntimeError(f"{len(failed)} of {len(rows)} publishes failed")
        return len(rows)

    async def _publish(self, rows) -> tuple[list[int], list[tuple], list[tuple]]:
        """Publish a batch to JetStream; which positions it acknowledged, which failed, and
        which can never become a message (set aside, with why)."""
        js = self._jetstream()
        pending = []
        poisoned = []
        for row in rows:
            # A service speaks only for itself: an event of another service's type is never
            # published from here (its consumers would refuse it as forged anyway).
            if EventType(row.type).service != self.service:
                poisoned.append((row, f"ForeignEvent: {row.type} is not a {self.service} event"))
                log.error(
                    "outbox row of another service's type set aside",
                    extra={"position": row.position, "type": row.type},
                )
                continue
            try:
                subject = nats_subject(row.type, row.subject)
                message = envelope_bytes(self.source, row)
            except Exception as exc:
                poisoned.append((row, unpublishable_reason(exc)))
                log.error(
                    "outbox row set aside: it cannot become a message",
                    extra={
                        "position": row.position,
                        "event_id": row.event_id,
                        "type": row.type,
                        "error": type(exc).__name__,
                    },
                )
                continue
            span = self._tracer.start_span(
                f"send {subject.split('.', 2)[0]}.{subject.split('.', 2)[1]}",
                context=context_from_traceparent(row.meta.get("traceparent")),
                kind=SpanKind.PRODUCER,
                attributes={
                    "messaging.system": "nats",
                    "messaging.operation.type": "send",
                    "messaging.destination.name": subject,
                    "messaging.message.id": row.event_id,
                    "care.event.type": row.type,
                },
            )
            headers = {"Nats-Msg-Id": row.event_id, "Content-Type": CLOUDEVENTS_CONTENT_TYPE}
            propagate.inject(headers, context=trace.set_span_in_context(span))
            future = await js.publish_async(subject, message, headers=headers)
            pending.append((row, span, future))
        results = (
            await asyncio.wait_for(
                asyncio.gather(*(f for _, _, f in pending), return_exceptions=True),
                timeout=self.ack_timeout,
            )
            if pending
            else []
        )
        done, failed = [], []
        for (row, span, _), result in zip(pending, results, strict=True):
            if isinstance(result, BaseException):
                span.set_status(Status(StatusCode.ERROR, type(result).__name__))
                failed.append((row, result))
            else:
                done.append(row.position)
                if self.metrics:
                    self.metrics.events_published.labels(row.type).inc()
            span.end()
        if os.environ.get(FAULT_ENV) == "kill_after_publish":
            os.kill(os.getpid(), signal.SIGKILL)
        return done, failed, poisoned

    async def _forget(self, session, done: list[int], failed: list[tuple]) -> None:
        if done:
            await session.execute(delete(outbox).where(outbox.c.position.in_(done)))
        for row, error in failed:
            await session.execute(
                update(outbox)
                .where(outbox.c.position == row.position)
                .values(attempts=outbox.c.attempts + 1, last_error=type(error).__name__)
            )

    async def _set_aside(self, session, poisoned: list[tuple]) -> None:
        for row, reason in poisoned:
            await session.execute(
                update(outbox)
                .where(outbox.c.position == row.position)
                .values(set_aside_at=datetime.now(UTC), last_error=reason, attempts=outbox.c.attempts + 1)
            )
        if self.metrics and poisoned:
            self.metrics.outbox_set_aside.inc(len(poisoned))

    async def backlog(self) -> int:
        """Rows waiting to be published (set-aside rows are counted apart)."""
        async with self.db.read() as session:
            return int(
                (
                    await session.execute(
                        select(func.count()).select_from(outbox).where(outbox.c.set_aside_at.is_(None))
                    )
                ).scalar_one()
            )


def unpublishable_reason(exc: Exception) -> str:
    """Why a row cannot become a message: the error and, for a schema error, the fields at
    fault; never the values (they may be clinical data)."""
    if isinstance(exc, ValidationError):
        fields = sorted({".".join(str(p) for p in e.get("loc", ())) or "envelope" for e in exc.errors()})
        return f"{type(exc).__name__}: invalid {', '.join(fields)}"[:500]
    return type(exc).__name__


async def set_aside_rows(db: Database) -> list[dict]:
    async with db.read() as session:
        rows = (
            (
                await session.execute(
                    select(
                        outbox.c.position,
                        outbox.c.set_aside_at,
                        outbox.c.last_error,
                        events.c.event_id,
                        events.c.type,
                        events.c.stream_id,
                    )
                    .join(events, events.c.position == outbox.c.position)
                    .where(outbox.c.set_aside_at.is_not(None))
                    .order_by(outbox.c.position)
                )
            )
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]
