"""SIGTERM in the middle of a backlog: the service finishes what it has in hand, acks it and
exits 0; started again, it takes up the rest, and nothing is handled twice."""

from __future__ import annotations

import random
import re
import uuid
from pathlib import Path

import httpx
import pytest

from care_shared.db import Database, sqlite_url_for
from care_shared.testing.nats_server import NatsServer
from care_shared.testing.polling import eventually
from care_shared.testing.processes import ServiceProcess
from care_shared.topology import ensure_streams
from pathway.rebuild import live_assessments
from tests.integration.pathway_service.test_projection_and_rebuild import patient_history, publish_in_order

pytestmark = pytest.mark.e2e


def counter(metrics: str, name: str) -> float:
    return sum(
        float(v) for v in re.findall(rf'{name}\{{consumer="pathway-intake"[^}}]*\}} ([0-9.e+]+)', metrics)
    )


async def test_sigterm_finishes_in_flight_work_and_a_restart_takes_up_the_rest(
    own_nats: NatsServer, tmp_path: Path
) -> None:
    rng = random.Random(5)
    clinic_id = str(uuid.uuid4())
    histories = [patient_history(rng, clinic_id) for _ in range(60)]
    url = sqlite_url_for(tmp_path / "pathway.db")
    env = {"DATABASE_URL": url, **own_nats.env("pathway")}
    first = ServiceProcess("pathway", env, tmp_path / "first").start()
    first.wait_ready()

    nc = await own_nats.connect()
    js = nc.jetstream()
    await ensure_streams(js)
    expected, total = await publish_in_order(js, histories, clinic_id)

    async with httpx.AsyncClient(timeout=10) as http:

        async def under_way() -> bool:
            done = counter((await http.get(f"{first.url}/metrics")).text, "care_events_consumed_total")
            return done >= 10

        await eventually(under_way, timeout=60, what="the first process to be under way")
    # uvicorn re-raises the signal once its shutdown is complete, so the status is SIGTERM's.
    assert first.stop(timeout=30) in (0, -15), first.log_tail()
    log = first.log_tail(100_000)
    assert "Application shutdown complete" in log, log[-3000:]
    assert '"level": "ERROR"' not in log and "handling failed" not in log, log[-3000:]

    second = ServiceProcess("pathway", env, tmp_path / "second").start()
    try:
        second.wait_ready()
        db = Database(url)
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

            assert (
                await eventually(caught_up, timeout=90, what="the second process to finish the backlog")
                == expected
            )
        finally:
            await db.dispose()
        async with httpx.AsyncClient(timeout=10) as http:
            metrics = (await http.get(f"{second.url}/metrics")).text
        # Whatever the first process committed it also acked before it exited: none of it
        # comes back to the second as a duplicate.
        assert counter(metrics, "care_events_duplicate_total") == 0
        assert 0 < counter(metrics, "care_events_consumed_total") < total  # it really stopped midway
    finally:
        second.stop()
        await nc.close()
