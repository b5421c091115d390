"""Two pathway replicas on one durable consumer and one PostgreSQL database: the work is
shared, nothing is done twice, nothing is lost."""

from __future__ import annotations

import random
import re
import uuid
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from care_shared.contracts.pathway import AssessmentChanged
from care_shared.db import Database
from care_shared.eventstore import events, outbox
from care_shared.testing.nats_server import NatsServer
from care_shared.testing.polling import eventually
from care_shared.testing.processes import ServiceProcess
from care_shared.topology import ensure_streams
from pathway.rebuild import live_assessments
from tests.integration.pathway_service.test_projection_and_rebuild import patient_history, publish_in_order

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


def consumed(metrics: str) -> float:
    return sum(
        float(v)
        for v in re.findall(
            r'care_events_consumed_total\{consumer="pathway-intake",[^}]*\} ([0-9.e+]+)', metrics
        )
    )


async def test_two_replicas_share_one_durable_consumer(
    own_nats: NatsServer, postgres_url: str, tmp_path: Path
) -> None:
    rng = random.Random(11)
    clinic_id = str(uuid.uuid4())
    histories = [patient_history(rng, clinic_id) for _ in range(40)]
    env = {"DATABASE_URL": postgres_url, **own_nats.env("pathway"), "CONSUMER_FETCH_BATCH": "4"}
    replicas = [ServiceProcess("pathway", env, tmp_path / f"replica-{i}").start() for i in range(2)]
    try:
        for r in replicas:
            r.wait_ready()
        nc = await own_nats.connect()
        js = nc.jetstream()
        await ensure_streams(js)
        expected, total = await publish_in_order(js, histories, clinic_id)

        db = Database(postgres_url)
        try:

            async def caught_up() -> dict | None:
                live = await live_assessments(db)
                return (
                    live
                    if all(
                        live.get(p, {}).get("as_of_event") == a["as_of_event"] for p, a in expected.items()
                    )
                    else None
                )

            live = await eventually(caught_up, timeout=90, what="both replicas to apply every event")
            assert live == expected  # nothing lost, nothing applied wrongly

            async def outbox_drained() -> bool:
                async with db.read() as s:
                    return (await s.execute(sa.select(sa.func.count()).select_from(outbox))).scalar_one() == 0

            await eventually(outbox_drained, what="both relays to publish")

            async with db.read() as s:
                changes = (
                    await s.execute(
                        sa.select(events.c.stream_id, events.c.data)
                        .where(events.c.type == AssessmentChanged.event_type)
                        .order_by(events.c.stream_id, events.c.version)
                    )
                ).all()
            # Nothing done twice: no assessment published twice in a row for one patient.
            previous: dict[str, dict] = {}
            for stream_id, data in changes:
                a = {k: v for k, v in data["assessment"].items() if k != "as_of_event"}
                assert previous.get(stream_id) != a, f"{stream_id} published the same assessment twice"
                previous[stream_id] = a
        finally:
            await db.dispose()

        # Each change published exactly once to JetStream.
        info = await js.stream_info("PATHWAY")
        assert info.state.messages == len(changes)
        await nc.close()

        async with httpx.AsyncClient() as http:
            shares = [consumed((await http.get(f"{r.url}/metrics")).text) for r in replicas]
        # Counted once per event, when its inbox claim first commits (a lost race is retried
        # uncounted, a duplicate counts as care_events_duplicate): more would be double handling.
        assert sum(shares) == total
        assert all(s > 0 for s in shares), f"work not shared: {shares}"
    finally:
        for r in replicas:
            r.stop()
