from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy
from sqlalchemy import func, select

from care_shared.clock import FixedClock
from care_shared.eventstore import events
from care_shared.service import Runtime
from care_shared.testing.nats_server import NatsServer
from intake.bootstrap import create_app, make_runtime
from intake.clinics import add_clinic
from intake.settings import IntakeSettings

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


@dataclass
class Intake:
    client: httpx.AsyncClient
    runtime: Runtime
    nats: NatsServer
    key_a: str
    key_b: str

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key_a}"}

    async def post(self, path: str, body: object, key: str | None = None, **headers: str) -> httpx.Response:
        return await self.client.post(path, json=body, headers={**self.auth(key), **headers})

    async def stored_counts(self) -> int:
        """Events in the store (the outbox drains on its own, so it is not compared)."""
        async with self.runtime.db.read() as s:
            return (await s.execute(select(func.count()).select_from(events))).scalar_one()

    async def published_for(self, patient_id: str) -> list[dict]:
        return [data for _, data in await self.published_messages(patient_id)]

    async def published_messages(self, patient_id: str) -> list[tuple[dict, dict]]:
        """(headers, envelope) of each message on the bus for the patient."""
        nc = await self.nats.connect()
        try:
            sub = await nc.jetstream().pull_subscribe(
                f"intake.*.{patient_id}",
                durable=None,
                stream="INTAKE",
                config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
            )
            try:
                return [
                    (dict(m.headers or {}), json.loads(m.data)) for m in await sub.fetch(1000, timeout=0.3)
                ]
            except TimeoutError:  # nats-py raises its own or the built-in one
                return []
        finally:
            await nc.close()

    async def new_patient(self, key: str | None = None, timezone: str = "Europe/London", **extra) -> str:
        import uuid

        body = {
            "external_id": f"mrn-{uuid.uuid4().hex[:10]}",
            "birth_year": 1980,
            "sex": "female",
            "timezone": timezone,
            **extra,
        }
        r = await self.post("/v1/patients", body, key)
        assert r.status_code == 201, r.text
        return r.json()["id"]

    async def new_episode(self, patient_id: str, **extra) -> str:
        body = {
            "onset_date": "2026-01-05",
            "severity": "moderate",
            "psychotic_features": False,
            "diagnosis": "mdd",
            **extra,
        }
        r = await self.post(f"/v1/patients/{patient_id}/episodes", body)
        assert r.status_code == 201, r.text
        return r.json()["id"]

    async def new_trial(self, patient_id: str, **extra) -> str:
        body = {
            "kind": "antidepressant",
            "agent": "sertraline",
            "dose_mg_per_day": 100,
            "started_on": "2026-02-01",
            **extra,
        }
        r = await self.post(f"/v1/patients/{patient_id}/trials", body)
        assert r.status_code == 201, r.text
        return r.json()["id"]


@pytest.fixture
async def intake(nats_server: NatsServer, database_url: str) -> AsyncIterator[Intake]:
    runtime = make_runtime(
        IntakeSettings(database_url=database_url, **nats_server.settings("intake")), clock=FixedClock(NOW)
    )
    app = create_app(runtime)
    async with app.router.lifespan_context(app):
        a = await add_clinic(runtime, "Clinic A")
        b = await add_clinic(runtime, "Clinic B")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
            yield Intake(client, runtime, nats_server, a["api_key"], b["api_key"])
