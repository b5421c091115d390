"""Issue 12, point 4, on real processes: failures that never dead-letter good events.

- pathway's database locked for longer than the old redelivery budget (five deliveries and
  their backoff) while intake's events flow: nothing dead-lettered, nothing redelivered, every
  event handled once after the lock goes, and the transient failures counted.
- a handling slower than ack_wait (two pathway replicas share the durable, so a lapsed
  ack_wait would hand the message to the other at once): handled once, never redelivered.
- a POST behind a held lock: 503 "database busy" after the bounded wait, nothing stored; the
  same request with the same Idempotency-Key succeeds once the lock is gone.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from care_shared.db import sqlite_url_for
from care_shared.settings import ServiceSettings
from care_shared.testing.nats_server import NatsServer
from care_shared.testing.polling import eventually
from care_shared.testing.processes import ServiceProcess
from care_shared.topology import durable_config

pytestmark = [pytest.mark.e2e, pytest.mark.faults]
PATHWAY_DURABLE = "pathway-intake"


def add_clinic(svc: ServiceProcess, name: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "intake", "clinic", "add", "--name", name],
        env=svc.env_for_cli(),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["api_key"]


@asynccontextmanager
async def running(*services: ServiceProcess) -> AsyncIterator[None]:
    try:
        for svc in services:
            svc.start()
        for svc in services:
            await asyncio.to_thread(svc.wait_ready)
        yield
    finally:
        for svc in services:
            svc.stop()


class Lock:
    """Another process's exclusive lock on a service's SQLite file (an operator's sqlite3
    shell, a backup tool): no one else writes until it is let go."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("BEGIN EXCLUSIVE")
        self.taken = time.monotonic()

    def release(self) -> float:
        self.conn.execute("ROLLBACK")
        self.conn.close()
        return time.monotonic() - self.taken


def handled(path: Path) -> set[str]:
    """Event ids in pathway's inbox (one row per event and consumer: its primary key)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return {
            r[0] for r in conn.execute("SELECT event_id FROM inbox WHERE consumer = ?", (PATHWAY_DURABLE,))
        }


async def metric(http: httpx.AsyncClient, svc: ServiceProcess, name: str, **labels: str) -> float:
    text = (await http.get(f"{svc.url}/metrics")).text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


async def post_assessments(
    http: httpx.AsyncClient, intake: ServiceProcess, key: str, pid: str, n: int
) -> set[str]:
    ids = set()
    for i in range(n):
        r = await http.post(
            f"{intake.url}/v1/patients/{pid}/assessments",
            headers={"Authorization": f"Bearer {key}"},
            json={"instrument": "PHQ-9", "score": 10 + i, "taken_on": f"2026-03-{i + 1:02d}"},
        )
        assert r.status_code == 201, r.text
        ids.add(r.json()["event_id"])
    return ids


async def register(http: httpx.AsyncClient, intake: ServiceProcess, key: str) -> dict:
    r = await http.post(
        f"{intake.url}/v1/patients",
        headers={"Authorization": f"Bearer {key}"},
        json={
            "external_id": f"p-{uuid.uuid4().hex[:8]}",
            "birth_year": 1980,
            "sex": "female",
            "timezone": "UTC",
        },
    )
    assert r.status_code == 201, r.text
    return r.json()


async def bus_state(server: NatsServer) -> tuple[int, int, int]:
    """(dead letters, redeliveries on pathway's durable, its unacknowledged messages)."""
    nc = await server.connect()
    try:
        js = nc.jetstream()
        info = await js.consumer_info("INTAKE", PATHWAY_DURABLE)
        return (await js.stream_info("DLQ")).state.messages, info.num_redelivered, info.num_ack_pending
    finally:
        await nc.close()


async def test_a_database_locked_past_the_old_budget_dead_letters_nothing(
    own_nats: NatsServer, tmp_path: Path
) -> None:
    backoff = [0.5, 1.0, 2.0, 3.0]
    lock_timeout = 0.5
    # What the old consumer took to dead-letter: five locked deliveries and the backoff between.
    old_budget = 5 * lock_timeout + sum(backoff)
    hold = old_budget + 3
    pathway_db = tmp_path / "pathway.db"
    intake = ServiceProcess(
        "intake",
        {"DATABASE_URL": sqlite_url_for(tmp_path / "intake.db"), **own_nats.env("intake")},
        tmp_path / "intake",
    )
    pathway = ServiceProcess(
        "pathway",
        {
            "DATABASE_URL": sqlite_url_for(pathway_db),
            **own_nats.env("pathway"),
            "DATABASE_LOCK_TIMEOUT_SECONDS": str(lock_timeout),
            "CONSUMER_BACKOFF_SECONDS": json.dumps(backoff),
            "CONSUMER_TRANSIENT_FIRST_SECONDS": "0.2",
            "CONSUMER_TRANSIENT_CAP_SECONDS": "1",
        },
        tmp_path / "pathway",
    )
    key = add_clinic(intake, "Locked clinic")
    async with running(intake, pathway), httpx.AsyncClient(timeout=10) as http:
        patient = await register(http, intake, key)
        await eventually(
            lambda: asyncio.to_thread(lambda: patient["event_id"] in handled(pathway_db)),
            what="pathway to take the first event",
        )

        lock = Lock(pathway_db)
        try:
            sent = await post_assessments(http, intake, key, patient["id"], 5)

            async def many_transient() -> bool:
                return (
                    await metric(
                        http,
                        pathway,
                        "care_consumer_transient_failures_total",
                        consumer=PATHWAY_DURABLE,
                        kind="database_busy",
                    )
                    >= 5
                )

            await eventually(many_transient, what="pathway to meet the lock again and again", timeout=hold)
            await asyncio.sleep(
                max(0.0, hold - (time.monotonic() - lock.taken))
            )  # the lock outlasts the old budget
        finally:
            held = lock.release()
        assert held > old_budget

        await eventually(
            lambda: asyncio.to_thread(lambda: sent <= handled(pathway_db)),
            timeout=30,
            what="every event handled after the lock",
        )
        await eventually(lambda: _all_acked(own_nats), what="every event acknowledged")
        dead, redelivered, _ = await bus_state(own_nats)
        transient = await metric(
            http, pathway, "care_consumer_transient_failures_total", consumer=PATHWAY_DURABLE
        )
        duplicates = await metric(http, pathway, "care_events_duplicate_total", consumer=PATHWAY_DURABLE)
        consumed = await metric(
            http,
            pathway,
            "care_events_consumed_total",
            consumer=PATHWAY_DURABLE,
            type="care.intake.assessment-recorded.v2",
        )
    print(
        f"\nlocked {held:.1f}s (old budget {old_budget:.1f}s): {transient:.0f} transient failures, "
        f"dead letters {dead}, redelivered {redelivered}, duplicates {duplicates:.0f}, assessments handled {consumed:.0f}/5"
    )
    assert (dead, redelivered, duplicates) == (0, 0, 0)
    assert consumed == 5  # lost 0, duplicated 0


async def _all_acked(server: NatsServer) -> bool:
    return (await bus_state(server))[2] == 0


async def test_a_handling_slower_than_ack_wait_is_done_once(own_nats: NatsServer, tmp_path: Path) -> None:
    ack_wait = 2.0
    nc = await own_nats.connect()  # as ops, who owns the durables: a short ack_wait for this test
    try:
        await nc.jetstream().add_consumer("INTAKE", durable_config(PATHWAY_DURABLE, "intake.>", ack_wait))
    finally:
        await nc.close()
    pathway_db = tmp_path / "pathway.db"
    # The lock wait is longer than this ack_wait on purpose: each handling blocks past it.
    env = {
        "DATABASE_URL": sqlite_url_for(pathway_db),
        **own_nats.env("pathway"),
        "DATABASE_LOCK_TIMEOUT_SECONDS": "10",
        "CONSUMER_ACK_WAIT_SECONDS": str(ack_wait),
    }
    intake = ServiceProcess(
        "intake",
        {"DATABASE_URL": sqlite_url_for(tmp_path / "intake.db"), **own_nats.env("intake")},
        tmp_path / "intake",
    )
    replicas = [ServiceProcess("pathway", env, tmp_path / f"pathway-{i}") for i in (1, 2)]
    key = add_clinic(intake, "Slow clinic")
    async with running(intake, *replicas), httpx.AsyncClient(timeout=10) as http:
        patient = await register(http, intake, key)
        await eventually(
            lambda: asyncio.to_thread(lambda: patient["event_id"] in handled(pathway_db)),
            what="pathway to take the first event",
        )
        lock = Lock(pathway_db)
        try:
            sent = await post_assessments(http, intake, key, patient["id"], 3)
            await asyncio.sleep(3 * ack_wait)  # the handlings wait on the lock, past ack_wait thrice
        finally:
            held = lock.release()
        await eventually(
            lambda: asyncio.to_thread(lambda: sent <= handled(pathway_db)),
            timeout=30,
            what="every event handled after the lock",
        )
        await eventually(lambda: _all_acked(own_nats), what="every event acknowledged")
        dead, redelivered, _ = await bus_state(own_nats)
        duplicates = sum(
            [await metric(http, r, "care_events_duplicate_total", consumer=PATHWAY_DURABLE) for r in replicas]
        )
        consumed = sum(
            [
                await metric(
                    http,
                    r,
                    "care_events_consumed_total",
                    consumer=PATHWAY_DURABLE,
                    type="care.intake.assessment-recorded.v2",
                )
                for r in replicas
            ]
        )
    print(
        f"\nhandlings blocked {held:.1f}s against ack_wait {ack_wait}s: redelivered {redelivered}, duplicates {duplicates:.0f}, dead letters {dead}, handled {consumed:.0f}/3"
    )
    assert (dead, redelivered, duplicates) == (0, 0, 0)
    assert consumed == 3


async def test_a_post_behind_a_held_lock_is_a_503_database_busy(own_nats: NatsServer, tmp_path: Path) -> None:
    intake_db = tmp_path / "intake.db"
    intake = ServiceProcess(
        "intake", {"DATABASE_URL": sqlite_url_for(intake_db), **own_nats.env("intake")}, tmp_path / "intake"
    )
    bound = ServiceSettings().database_lock_timeout_seconds  # the shipped default, not a copy
    key = add_clinic(intake, "Busy clinic")
    body = {"external_id": "busy-1", "birth_year": 1975, "sex": "male", "timezone": "UTC"}
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": str(uuid.uuid4())}
    async with running(intake), httpx.AsyncClient(timeout=30) as http:

        def stored() -> tuple[int, int]:
            with sqlite3.connect(f"file:{intake_db}?mode=ro", uri=True) as conn:
                return (
                    conn.execute("SELECT count(*) FROM events").fetchone()[0],
                    conn.execute("SELECT count(*) FROM outbox").fetchone()[0],
                )

        before = stored()
        lock = Lock(intake_db)
        try:
            started = time.monotonic()
            r = await http.post(f"{intake.url}/v1/patients", json=body, headers=headers)
            waited = time.monotonic() - started
            during = stored()
        finally:
            lock.release()
        assert r.status_code == 503, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        problem = r.json()
        assert problem["type"].endswith("/database-busy") and problem["title"] == "Database busy", problem
        assert "connection" not in problem["detail"].lower()
        assert int(r.headers["retry-after"]) >= 1
        # The route's write waits its bound, then the audit's write of the 503 waits its own.
        assert bound * 0.8 <= waited <= 2 * bound + 2, waited
        assert during == before  # nothing stored, nothing to publish
        again = await http.post(f"{intake.url}/v1/patients", json=body, headers=headers)
        assert again.status_code == 201, again.text
    print(f"\nPOST behind a held lock: 503 database-busy after {waited:.1f}s (bound {bound}s)")
