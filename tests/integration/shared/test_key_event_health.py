"""A key event a service cannot apply is never silent (issue 12): pathway, in-process on a
real nats-server, fails to apply a clinic-key-revoked until it is dead-lettered; /readyz
says so and a metric counts it, while the old key still works there. After the fix,
`carectl dlq replay` applies it: ready again, and the key refused. A key event whose data
fails the schema (dead-lettered before any handler) is reported the same way."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

import care_shared.service as service
from care_shared.auth import hash_key
from care_shared.contracts.intake import ClinicKeyRevoked, ClinicRegistered
from care_shared.db import sqlite_url_for
from care_shared.envelope import nats_subject, new_event_id, to_envelope
from care_shared.ops import carectl
from care_shared.testing.nats_server import NatsServer
from care_shared.testing.polling import eventually
from pathway.bootstrap import create_app, make_runtime
from pathway.settings import PathwaySettings

CLINIC = "0b6f2b1e-5d8c-4a4e-9d55-1f6f3c2a9e77"
KEY = "trd_key-event-health-test"


async def publish(server: NatsServer, event, sequence: int) -> None:
    env = to_envelope(
        event_id=new_event_id(),
        source="/intake",
        type=event.event_type,
        subject=CLINIC,
        time=datetime.now(UTC),
        data=event.to_data(),
        sequence=sequence,
        traceparent=None,
        clinicid=CLINIC,
    )
    nc = await server.connect()
    try:
        await nc.jetstream().publish(
            nats_subject(event.event_type, CLINIC),
            env.model_dump_json().encode(),
            headers={"Nats-Msg-Id": env.id},
        )
    finally:
        await nc.drain()


@pytest.fixture
async def pathway(own_nats: NatsServer, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = PathwaySettings(
        database_url=sqlite_url_for(tmp_path / "pathway.db"),
        **own_nats.settings("pathway"),
        consumer_max_deliver=2,
        consumer_backoff_seconds=[0.05],
    )
    app = create_app(make_runtime(settings))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://pathway"
        ) as http:
            yield http


async def test_an_unapplied_key_event_shows_in_readiness_and_metrics_until_replayed(
    pathway: httpx.AsyncClient, own_nats: NatsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    http = pathway
    auth = {"Authorization": f"Bearer {KEY}"}
    await publish(own_nats, ClinicRegistered(clinic_id=CLINIC, name="Clinic", key_sha256=hash_key(KEY)), 1)
    await eventually(lambda: _status(http, auth, 404), what="pathway to know the key")
    assert (await http.get("/readyz")).status_code == 200

    async def broken(*_args, **_kwargs) -> None:
        raise RuntimeError("projection broke")

    monkeypatch.setattr(service, "revoke_clinic_key", broken)
    await publish(own_nats, ClinicKeyRevoked(clinic_id=CLINIC, key_sha256=hash_key(KEY)), 2)

    async def not_ready() -> dict | None:
        r = await http.get("/readyz")
        return r.json() if r.status_code == 503 and "key events" in r.json()["checks"] else None

    body = await eventually(not_ready, timeout=20, what="/readyz to report the key event")
    assert "clinic-key-revoked" in body["checks"]["key events"]
    metrics = (await http.get("/metrics")).text
    assert re.search(
        r'care_access_events_failed_total\{type="care.intake.clinic-key-revoked.v1"\} [1-9]', metrics
    )
    assert re.search(r"^care_access_events_unapplied 1\.0$", metrics, re.M)
    assert (
        await http.get("/v1/patients/x/seen", headers=auth)
    ).status_code == 404  # the old key still works here

    async def dead_lettered() -> bool:
        nc = await own_nats.connect()
        try:
            return bool(await carectl._dead_letters(nc.jetstream()))
        finally:
            await nc.close()

    await eventually(dead_lettered, what="the key event in the dead-letter stream")
    monkeypatch.undo()  # the fix is deployed
    replay = carectl.argparse.Namespace(
        nats=own_nats.url, creds=str(own_nats.seed_file("ops")), dlq_command="replay", which="all"
    )
    assert await carectl.dlq(replay) == 0

    await eventually(lambda: _status(http, auth, 401), what="the replayed revocation to apply")
    r = await http.get("/readyz")
    assert r.status_code == 200, r.text
    assert re.search(r"^care_access_events_unapplied 0\.0$", (await http.get("/metrics")).text, re.M)


async def test_a_key_event_dead_lettered_before_its_handler_is_reported_too(
    pathway: httpx.AsyncClient, own_nats: NatsServer
) -> None:
    http = pathway
    auth = {"Authorization": f"Bearer {KEY}"}
    await publish(own_nats, ClinicRegistered(clinic_id=CLINIC, name="Clinic", key_sha256=hash_key(KEY)), 1)
    await eventually(lambda: _status(http, auth, 404), what="pathway to know the key")
    # A revocation whose key hash is missing: the consumer's schema check dead-letters it.
    env = to_envelope(
        event_id=new_event_id(),
        source="/intake",
        type=ClinicKeyRevoked.event_type,
        subject=CLINIC,
        time=datetime.now(UTC),
        data={"clinic_id": CLINIC},
        sequence=2,
        traceparent=None,
        clinicid=CLINIC,
    )
    nc = await own_nats.connect()
    try:
        await nc.jetstream().publish(
            nats_subject(ClinicKeyRevoked.event_type, CLINIC),
            env.model_dump_json().encode(),
            headers={"Nats-Msg-Id": env.id},
        )
    finally:
        await nc.drain()

    async def reported() -> dict | None:
        r = await http.get("/readyz")
        return r.json() if r.status_code == 503 and "key events" in r.json()["checks"] else None

    body = await eventually(reported, timeout=20, what="/readyz to report the dead-lettered key event")
    assert "clinic-key-revoked" in body["checks"]["key events"]
    assert re.search(
        r'care_access_events_failed_total\{type="care.intake.clinic-key-revoked.v1"\} 1\.0',
        (await http.get("/metrics")).text,
    )


async def _status(http: httpx.AsyncClient, auth: dict, status: int) -> bool:
    return (await http.get("/v1/patients/x/seen", headers=auth)).status_code == status
