"""The outbox relay as a real process, killed with SIGKILL between JetStream's ack and the
commit that forgets the published rows, then restarted."""

from __future__ import annotations

import json
import signal
import uuid
from datetime import date
from pathlib import Path

import httpx
import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy
from sqlalchemy import func, select

from care_shared.contracts.intake import AssessmentRecorded
from care_shared.db import Database, sqlite_url_for
from care_shared.eventstore import EventStore, NewEvent, outbox
from care_shared.migrations import migrate
from care_shared.seen import seen_events
from care_shared.testing.nats_server import NatsServer
from care_shared.testing.polling import eventually
from care_shared.testing.processes import ServiceProcess

INTAKE_MIGRATIONS = Path(__import__("intake").__file__).parent / "migrations"
PATIENTS, EVENTS_EACH, BATCH = 5, 10, 20


async def append_assessments(db: Database) -> list[str]:
    store = EventStore()
    ids = []
    for _ in range(PATIENTS):
        patient_id = str(uuid.uuid4())
        new = []
        for i in range(EVENTS_EACH):
            e = AssessmentRecorded(
                patient_id=patient_id,
                assessment_id=str(uuid.uuid4()),
                instrument="PHQ-9",
                score=10 + i,
                taken_on=date(2026, 1, 1 + i),
            )
            new.append(NewEvent(e.event_type, patient_id, e.to_data(), meta={"clinicid": "clinic-1"}))
        async with db.transaction() as s:
            stored = await store.append(s, f"patient-{patient_id}", 0, new)
        ids += [e.event_id for e in stored]
    return ids


async def stream_event_ids(server: NatsServer) -> list[str]:
    nc = await server.connect()
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe(
            "intake.>", durable=None, stream="INTAKE", config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
        )
        ids: list[str] = []
        while True:
            try:
                msgs = await sub.fetch(200, timeout=0.5)
            except TimeoutError:  # nats-py raises its own or the built-in one
                return ids
            ids += [json.loads(m.data)["id"] for m in msgs]
    finally:
        await nc.close()


async def outbox_rows(db: Database) -> int:
    async with db.read() as s:
        return (await s.execute(select(func.count()).select_from(outbox))).scalar_one()


@pytest.mark.e2e
async def test_relay_sigkilled_after_publish_republishes_and_nothing_is_doubled(
    own_nats: NatsServer, database_url: str, tmp_path: Path
) -> None:
    db = Database(database_url)
    await migrate(db, INTAKE_MIGRATIONS)
    event_ids = await append_assessments(db)  # committed; no relay has run yet
    env = {"DATABASE_URL": database_url, **own_nats.env("intake"), "RELAY_BATCH_SIZE": str(BATCH)}

    pathway_db = sqlite_url_for(tmp_path / "pathway.db")
    pathway = ServiceProcess(
        "pathway", {"DATABASE_URL": pathway_db, **own_nats.env("pathway")}, tmp_path
    ).start()
    try:
        pathway.wait_ready()

        doomed = ServiceProcess(
            "intake", {**env, "CARE_RELAY_FAULT": "kill_after_publish"}, tmp_path, command="relay"
        ).start()
        assert doomed.wait_exit(timeout=60) == -signal.SIGKILL
        published_before_crash = await stream_event_ids(own_nats)
        assert len(published_before_crash) == BATCH
        assert await outbox_rows(db) == len(event_ids)  # the crash lost the "published" mark

        relay = ServiceProcess("intake", env, tmp_path, command="relay").start()
        try:
            await eventually(lambda: _zero(outbox_rows(db)), timeout=60, what="the outbox to drain")
        finally:
            relay.stop()

        in_stream = await stream_event_ids(own_nats)
        assert sorted(in_stream) == sorted(event_ids)  # every event, each exactly once

        pathway_store = Database(pathway_db)
        try:

            async def acted_on() -> list:
                async with pathway_store.read() as s:
                    rows = (
                        await s.execute(
                            select(seen_events.c.event_id, func.count()).group_by(seen_events.c.event_id)
                        )
                    ).all()
                return rows if len(rows) == len(event_ids) else None

            rows = await eventually(acted_on, timeout=60, what="pathway to take in every event")
            assert {r[0] for r in rows} == set(event_ids)
            # Each event reached pathway once: a second delivery would show as a duplicate
            # skipped by its inbox (seen_events alone cannot show it: its key is the event id).
            async with httpx.AsyncClient(timeout=10) as http:
                metrics = (await http.get(f"{pathway.url}/metrics")).text
            assert _metric(metrics, 'care_events_duplicate_total{consumer="pathway-intake"}') == 0
            consumed = sum(
                _metric(line, line.split(" ")[0])
                for line in metrics.splitlines()
                if line.startswith('care_events_consumed_total{consumer="pathway-intake"')
            )
            assert consumed == len(event_ids)
        finally:
            await pathway_store.dispose()
    finally:
        pathway.stop()
        await db.dispose()


def _metric(text: str, name: str) -> float:
    """A sample's value from Prometheus text; 0 when the series was never touched."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def _zero(awaitable) -> bool:
    return (await awaitable) == 0


async def test_the_relay_never_publishes_another_services_event(own_nats: NatsServer, tmp_path: Path) -> None:
    """intake's relay speaks only for intake: an outbox row of a pathway type (a bug, or a
    tampered database) is set aside with its reason, and the rows behind it still go."""
    from care_shared.outbox import OutboxRelay

    db = Database(sqlite_url_for(tmp_path / "intake.db"))
    await migrate(db, INTAKE_MIGRATIONS)
    pid = str(uuid.uuid4())
    forged = NewEvent("care.pathway.assessment-changed.v1", pid, {"patient_id": pid}, meta={})
    real = NewEvent(AssessmentRecorded.event_type, pid, {"patient_id": pid}, meta={})
    async with db.transaction() as s:
        await EventStore().append(s, f"patient-{pid}", 0, [forged, real])
    nc = await own_nats.connect("intake")
    try:
        relay = OutboxRelay(db, "/intake", lambda: nc.jetstream())
        await relay.publish_pending()
        ops = await own_nats.connect()
        info = {s: (await ops.jetstream().stream_info(s)).state.messages for s in ("INTAKE", "PATHWAY")}
        await ops.close()
        assert info == {"INTAKE": 1, "PATHWAY": 0}
        async with db.read() as s:
            held = (await s.execute(select(outbox.c.last_error, outbox.c.set_aside_at))).all()
        assert len(held) == 1 and held[0].last_error.startswith("ForeignEvent") and held[0].set_aside_at
    finally:
        await nc.close()
        await db.dispose()
