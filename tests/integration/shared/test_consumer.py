"""The consumer machinery on a real nats-server: inbox, redelivery, dead letters."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import nats
import pytest
from faststream.nats import NatsBroker
from nats.js.api import ConsumerConfig, DeliverPolicy
from sqlalchemy import func, select

from care_shared.consumer import (
    DLQ_CONSUMER,
    DLQ_DELIVERIES,
    DLQ_REASON,
    ConsumerPolicy,
    EventConsumers,
    PoisonEvent,
)
from care_shared.db import Database, sqlite_url_for
from care_shared.envelope import new_event_id
from care_shared.migrations import migrate
from care_shared.nats_auth import OPS, inbox_prefix
from care_shared.seen import record_seen, seen_events
from care_shared.testing.nats_server import NatsServer
from care_shared.testing.polling import eventually
from care_shared.topology import ensure_streams

MIGRATIONS = Path(__import__("pathway").__file__).parent / "migrations"
POLICY = ConsumerPolicy(max_deliver=3, ack_wait_seconds=5, backoff_seconds=(0.05, 0.1), fetch_batch=8)


def assessment(
    patient_id: str,
    *,
    event_id: str | None = None,
    type_: str = "care.intake.assessment-recorded.v1",
    data: dict | None = None,
) -> dict:
    return {
        "specversion": "1.0",
        "id": event_id or new_event_id(),
        "source": "/intake",
        "type": type_,
        "subject": patient_id,
        "time": datetime.now(UTC).isoformat(),
        "datacontenttype": "application/json",
        "data": data
        if data is not None
        else {
            "patient_id": patient_id,
            "assessment_id": str(uuid.uuid4()),
            "instrument": "PHQ-9",
            "score": 14,
            "taken_on": "2026-01-10",
        },
        "sequence": 2,
        "clinicid": "clinic-1",
    }


class Harness:
    def __init__(
        self,
        server: NatsServer,
        db: Database,
        patient_id: str,
        policy: ConsumerPolicy = POLICY,
        service: str | None = None,
    ) -> None:
        self.server = server
        self.db = db
        self.patient_id = patient_id
        self.service = service or f"t{uuid.uuid4().hex[:8]}"
        self.calls: Counter[str] = Counter()
        self.fail_times: dict[str, int] = {}
        self.poison: set[str] = set()
        self.hang: set[str] = set()  # handled until `released`: an answer that never comes in time
        self.released = asyncio.Event()
        self.slow: dict[str, float] = {}  # handled in this many seconds: longer than ack_wait
        # As ops (who may consume anything): these durables are the test's own, not the topology's.
        self.broker = NatsBroker(server.url, security=server.security(), inbox_prefix=inbox_prefix(OPS))
        self.consumers = EventConsumers(
            self.service, self.broker, db, policy, inbox=inbox_prefix(OPS), topology_checked=False
        )
        self.durable = self.consumers.subscribe("intake", "INTAKE", f"intake.*.{patient_id}", self.handle)

    async def handle(self, session, envelope, payload) -> None:
        self.calls[envelope.id] += 1
        if envelope.id in self.poison:
            raise PoisonEvent("assessment refers to no known trial")
        if envelope.id in self.hang:
            await self.released.wait()
            raise RuntimeError("gave up after the ack deadline")
        await asyncio.sleep(self.slow.get(envelope.id, 0))
        if self.calls[envelope.id] <= self.fail_times.get(envelope.id, 0):
            raise RuntimeError("database briefly away")
        await record_seen(session, self.durable, envelope, payload.patient_id)

    async def start(self) -> None:
        await self.broker.connect()
        await ensure_streams(self.broker.connection.jetstream())
        await self.broker.start()

    async def publish(self, body: bytes | dict, msg_id: str | None = None) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        name = "assessment-recorded"
        try:
            declared = json.loads(raw).get("type", "")
        except (ValueError, AttributeError):
            declared = ""
        if isinstance(declared, str) and declared.count(".") == 3:
            name = declared.split(".")[2]  # the subject names the event, as the relay's do
        js = self.broker.connection.jetstream()
        await js.publish(
            f"intake.{name}.{self.patient_id}",
            raw,
            headers={"Nats-Msg-Id": msg_id or uuid.uuid4().hex},
        )

    async def effects(self, event_id: str) -> int:
        async with self.db.read() as s:
            return (
                await s.execute(
                    select(func.count()).select_from(seen_events).where(seen_events.c.event_id == event_id)
                )
            ).scalar_one()

    async def dead_letters(self) -> list[nats.aio.msg.Msg]:
        nc = await self.server.connect()
        try:
            js = nc.jetstream()
            sub = await js.pull_subscribe(
                f"dlq.{self.durable}",
                durable=None,
                stream="DLQ",
                config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
            )
            try:
                return await sub.fetch(100, timeout=0.5)
            except TimeoutError:  # nats-py raises its own or the built-in one
                return []
        finally:
            await nc.close()


@pytest.fixture
async def harness(nats_server: NatsServer, tmp_path: Path) -> AsyncIterator[Harness]:
    db = Database(sqlite_url_for(tmp_path / "consumer.db"))
    await migrate(db, MIGRATIONS)
    h = Harness(nats_server, db, str(uuid.uuid4()))
    await h.start()
    yield h
    await h.broker.stop()
    await db.dispose()


async def test_the_same_event_delivered_twice_has_one_effect(harness: Harness) -> None:
    event = assessment(harness.patient_id)
    # Two different message ids defeat JetStream's dedupe: only the inbox stands between us and a double effect.
    await harness.publish(event, msg_id="first")
    await harness.publish(event, msg_id="second")
    await eventually(
        lambda: _async(harness.calls[event["id"]] >= 1 and harness.consumers.processed >= 2),
        what="both deliveries",
    )
    assert await harness.effects(event["id"]) == 1


async def test_poison_messages_go_to_the_dead_letter_subject_and_the_consumer_keeps_going(
    harness: Harness,
) -> None:
    pid = harness.patient_id
    poison = {
        b"{not json": "malformed JSON",
        json.dumps({"specversion": "1.0", "id": "x"}).encode(): "invalid envelope",
        json.dumps(assessment(pid, type_="care.intake.mystery-happened.v1")).encode(): "unknown event type",
        json.dumps(
            assessment(pid, type_="care.intake.assessment-recorded.v9")
        ).encode(): "understands up to v2",
        json.dumps(
            assessment(pid, data={"patient_id": pid, "instrument": "PHQ-9"})
        ).encode(): "failed validation",
        b"x" * (300 * 1024): "too large",
    }
    for body in poison:
        await harness.publish(body)
    good = assessment(pid)
    await harness.publish(good)

    await eventually(lambda: harness.effects(good["id"]), what="the message after the poison to be processed")
    letters = await eventually(
        lambda: _len_at_least(harness.dead_letters(), len(poison)), what="every poison message in the DLQ"
    )
    reasons = [m.headers[DLQ_REASON] for m in letters]
    for expected in poison.values():
        assert any(expected in r for r in reasons), (expected, reasons)
    assert all(m.headers[DLQ_CONSUMER] == harness.durable for m in letters)
    assert {m.data for m in letters} == set(poison)  # the original bytes, for replay after a fix


async def test_events_whose_origin_does_not_hold_together_are_refused_and_counted(harness: Harness) -> None:
    """The bus is a trust boundary: stream, type, source and subject must name one producer,
    and an event id may not come from the future (care_shared.origin)."""
    pid = harness.patient_id
    future = uuid.UUID(int=(int((datetime.now(UTC).timestamp() + 3600) * 1000) << 80) | (7 << 76) | (1 << 63))
    forged = {
        "source": ({**assessment(pid), "source": "/evil"}, "source '/evil' is not /intake"),
        # A coordinator's key on intake's stream: access events come only from their owner's.
        "type": (
            {
                **assessment(pid),
                "type": "care.referral.coordinator-registered.v1",
                "data": {"coordinator_id": "c1", "name": "Mallory", "key_sha256": "0" * 64},
            },
            "belongs to referral",
        ),
        "subject": ({**assessment(pid), "subject": "another-patient"}, "differs from the envelope subject"),
        "future": ({**assessment(pid), "id": str(future)}, "in the future"),
        "not uuid7": ({**assessment(pid), "id": str(uuid.uuid4())}, "is not a UUIDv7"),
    }
    for body, _ in forged.values():
        await harness.publish(body)
    good = assessment(pid)
    await harness.publish(good)
    await eventually(lambda: harness.effects(good["id"]), what="the real event after the forgeries")
    letters = await eventually(
        lambda: _len_at_least(harness.dead_letters(), len(forged)), what="every forgery in the DLQ"
    )
    reasons = [m.headers[DLQ_REASON] for m in letters]
    for _, expected in forged.values():
        assert any(expected in r for r in reasons), (expected, reasons)
    for body, _ in forged.values():
        assert harness.calls[body["id"]] == 0  # the handler never saw them
    refused = harness.consumers.metrics.events_refused.labels(harness.durable, "origin")._value.get()
    assert refused == len(forged)


async def test_a_transient_failure_is_redelivered_with_backoff_and_acted_on_once(harness: Harness) -> None:
    event = assessment(harness.patient_id)
    harness.fail_times[event["id"]] = 2
    await harness.publish(event)
    await eventually(lambda: harness.effects(event["id"]), what="processing after two failures")
    assert harness.calls[event["id"]] == 3
    assert await harness.dead_letters() == []


async def test_a_database_locked_past_every_delivery_dead_letters_nothing(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    """Locked for far longer than three deliveries' backoff (which used to dead-letter the
    event): retried in place, uncounted, and handled once when the lock goes."""
    path = tmp_path / "consumer.db"
    db = Database(sqlite_url_for(path), lock_timeout_seconds=0.1)
    await migrate(db, MIGRATIONS)
    policy = ConsumerPolicy(
        max_deliver=3,
        ack_wait_seconds=5,
        backoff_seconds=(0.05, 0.1),
        transient_first_seconds=0.05,
        transient_cap_seconds=0.2,
    )
    h = Harness(nats_server, db, str(uuid.uuid4()), policy)
    await h.start()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        events = [assessment(h.patient_id) for _ in range(3)]
        for event in events:
            await h.publish(event)
        transient = h.consumers.metrics.consumer_transient_failures.labels(h.durable, "database_busy")
        await eventually(lambda: _async(transient._value.get() >= 3 * 5), what="many locked attempts")
        holder.execute("ROLLBACK")
        for event in events:
            await eventually(lambda e=event: h.effects(e["id"]), what="handling once the lock is gone")
        assert [h.calls[e["id"]] for e in events] == [1, 1, 1]
        assert await h.dead_letters() == []
        info = await eventually(lambda: _acked(h), what="the acks after the commits")
        assert info.num_redelivered == 0
    finally:
        holder.close()
        await h.broker.stop()
        await db.dispose()


async def test_a_handler_slower_than_ack_wait_is_handled_once(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    """Two replicas share the durable, so a lapsed ack_wait would hand the message to the
    idle one at once: the heartbeat must keep it with the first."""
    db = Database(sqlite_url_for(tmp_path / "consumer.db"))
    await migrate(db, MIGRATIONS)
    policy = ConsumerPolicy(max_deliver=3, ack_wait_seconds=1, backoff_seconds=(0.05,))
    first = Harness(nats_server, db, str(uuid.uuid4()), policy)
    replicas = [first, Harness(nats_server, db, first.patient_id, policy, service=first.service)]
    event = assessment(first.patient_id)
    for h in replicas:
        h.slow[event["id"]] = 3.5  # three ack_waits and a half
        await h.start()
    try:
        await first.publish(event)
        await eventually(lambda: first.effects(event["id"]), what="the slow handling", timeout=15)
        info = await eventually(lambda: _acked(first), what="the ack after the commit")
        assert info.config.ack_wait == 1
        assert info.num_redelivered == 0
        assert sum(h.calls[event["id"]] for h in replicas) == 1
        assert sum(h.consumers.metrics.events_duplicate.labels(h.durable)._value.get() for h in replicas) == 0
    finally:
        for h in replicas:
            await h.broker.stop()
        await db.dispose()


async def test_a_handler_that_never_succeeds_is_dead_lettered_after_the_last_delivery(
    harness: Harness,
) -> None:
    stuck = assessment(harness.patient_id)
    harness.fail_times[stuck["id"]] = 99
    rejected = assessment(harness.patient_id)
    harness.poison.add(rejected["id"])
    await harness.publish(stuck)
    await harness.publish(rejected)
    letters = await eventually(lambda: _len_at_least(harness.dead_letters(), 2), what="both dead letters")
    by_reason = {m.headers[DLQ_REASON]: m for m in letters}
    assert any(r.startswith("failed after 3 deliveries: RuntimeError") for r in by_reason)
    assert any("rejected by handler: assessment refers to no known trial" in r for r in by_reason)
    assert harness.calls[stuck["id"]] == POLICY.max_deliver
    assert harness.calls[rejected["id"]] == 1  # a poison verdict is not retried
    assert [m.headers[DLQ_DELIVERIES] for m in letters if "failed after" in m.headers[DLQ_REASON]] == ["3"]
    assert await harness.effects(stuck["id"]) == 0


async def test_a_message_never_answered_is_dead_lettered_not_dropped(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    """A delivery that is never answered (the handler hangs past ack_wait, or its process dies)
    reports no failure. JetStream redelivers it to another replica; past the limit it must land
    in the DLQ with a reason instead of being dropped in silence. Three replicas share the
    durable: the first two hang on it, the third sees the third delivery. The hanging ones
    report no progress: they play processes that died holding the message."""
    db = Database(sqlite_url_for(tmp_path / "consumer.db"))
    await migrate(db, MIGRATIONS)
    policy = ConsumerPolicy(
        max_deliver=2, ack_wait_seconds=1, backoff_seconds=(0.05,), fetch_batch=8, report_progress=False
    )
    patient_id = str(uuid.uuid4())
    first = Harness(nats_server, db, patient_id, policy)
    replicas = [first] + [
        Harness(nats_server, db, patient_id, policy, service=first.service) for _ in range(2)
    ]
    silent = assessment(patient_id)
    for h in replicas:
        h.hang.add(silent["id"])
        await h.start()
    try:
        await first.publish(silent)
        letters = await eventually(
            lambda: _len_at_least(first.dead_letters(), 1), what="the dead letter", timeout=30
        )
        assert [m.headers[DLQ_REASON] for m in letters] == [
            "no answer after 2 deliveries (timed out or the process died)"
        ]
        assert [m.headers[DLQ_DELIVERIES] for m in letters] == ["3"]
        # The third delivery never reached a handler (the second may still wait on the write lock).
        assert 1 <= sum(h.calls[silent["id"]] for h in replicas) <= policy.max_deliver
    finally:
        for h in replicas:
            h.released.set()
        for h in replicas:
            await h.broker.stop()
        await db.dispose()


async def _acked(h: Harness):
    info = await h.broker.connection.jetstream().consumer_info("INTAKE", h.durable)
    return info if info.num_ack_pending == 0 else None


async def _async(value):
    return value


async def _len_at_least(awaitable, n: int):
    items = await awaitable
    return items if len(items) >= n else None
