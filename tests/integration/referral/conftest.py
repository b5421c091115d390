"""referral in-process (ASGI) on a real nats-server and a real database, with a clock the test
moves. Pathway's and intake's events are published to JetStream in their documented shape,
so referral consumes them exactly as it would from the real services."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import nats
import pytest

from care_shared.auth import generate_api_key, hash_key
from care_shared.clock import FixedClock
from care_shared.contracts.intake import ClinicRegistered
from care_shared.contracts.pathway import AssessmentChanged
from care_shared.envelope import nats_subject, new_event_id, new_id, to_envelope
from care_shared.service import Runtime
from care_shared.testing.nats_server import NatsServer
from care_shared.testing.polling import eventually
from referral.access import add_coordinator
from referral.bootstrap import create_app, make_runtime
from referral.settings import ReferralSettings

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)  # a Monday


@dataclass
class Harness:
    client: httpx.AsyncClient
    runtime: Runtime
    clock: FixedClock
    nc: nats.NATS
    coordinator: str  # keys
    coordinator_2: str
    referring_clinic: str  # a partner clinic's id, and its key
    referring_key: str
    # Pathway's stream positions: each assessment made here is the next of its patient's, in
    # the order made (publishing it later does not make it newer), as pathway's stream would.
    positions: dict[str, int] = field(default_factory=dict)
    made: Counter = field(default_factory=Counter)

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.coordinator}"}

    async def get(self, path: str, key: str | None = None, **params) -> httpx.Response:
        return await self.client.get(path, headers=self.auth(key), params=params)

    async def post(
        self, path: str, body: object = None, key: str | None = None, **headers: str
    ) -> httpx.Response:
        return await self.client.post(path, json=body, headers={**self.auth(key), **headers})

    async def add_clinic(
        self, name: str, region: str, capabilities: list[str], capacity: int = 10, partner: str | None = None
    ) -> str:
        body = {"name": name, "region": region, "capabilities": capabilities, "weekly_capacity": capacity}
        if partner:
            body["partner_clinic_id"] = partner
        r = await self.post("/v1/clinics", body)
        assert r.status_code == 201, r.text
        return r.json()["id"]

    async def publish(
        self,
        event,
        *,
        subject: str,
        clinicid: str | None,
        event_id: str | None = None,
        msg_id: str | None = None,
    ) -> str:
        event_id = event_id or new_event_id()
        sequence = self.positions.get(event.as_of_event) if isinstance(event, AssessmentChanged) else None
        env = to_envelope(
            event_id=event_id,
            source=f"/{event.event_type.split('.')[1]}",
            type=event.event_type,
            subject=subject,
            time=self.clock.now(),
            data=event.to_data(),
            sequence=sequence,
            traceparent=None,
            clinicid=clinicid,
        )
        await self.nc.jetstream().publish(
            nats_subject(event.event_type, subject),
            env.model_dump_json(exclude_none=True).encode(),
            headers={"Nats-Msg-Id": msg_id or event_id},
        )
        return event_id

    async def partner_clinic(self) -> tuple[str, str]:
        """A partner clinic as intake announces it: its id and its key."""
        clinic_id, key = new_id(), generate_api_key()
        await self.publish(
            ClinicRegistered(clinic_id=clinic_id, name="Partner", key_sha256=hash_key(key)),
            subject=clinic_id,
            clinicid=clinic_id,
        )
        await eventually(
            lambda: _accepted(self.client, key), what="referral to learn the partner clinic's key"
        )
        return clinic_id, key

    def assessment(
        self,
        patient_id: str,
        urgency: str = "routine",
        capabilities: list[str] | None = None,
        reasons: list[str] | None = None,
        as_of_event: str | None = None,
        advised: bool = True,
    ) -> AssessmentChanged:
        as_of_event = as_of_event or new_event_id()
        self.made[patient_id] += 1
        self.positions.setdefault(as_of_event, self.made[patient_id])
        return AssessmentChanged.model_validate(
            {
                "patient_id": patient_id,
                "as_of_event": as_of_event,
                "assessment": {
                    "status": "trd",
                    "urgency": urgency,
                    "referral": {
                        "advised": advised,
                        "capabilities": ["mood_disorder_clinic"] if capabilities is None else capabilities,
                        "reasons": reasons or ["status trd"],
                    },
                    "stages": {"thase_rush": 2},  # extra fields travel too; referral ignores them
                },
            }
        )

    async def advise(self, patient_id: str, clinicid: str | None = None, **kwargs) -> str:
        event = self.assessment(patient_id, **kwargs)
        await self.publish(event, subject=patient_id, clinicid=clinicid or self.referring_clinic)
        return event.as_of_event

    async def referrals(self, patient_id: str, key: str | None = None) -> list[dict]:
        r = await self.get("/v1/referrals", key, patient_id=patient_id)
        assert r.status_code == 200, r.text
        return r.json()

    async def referral_of(
        self, patient_id: str, predicate=lambda r: True, what: str = "the referral"
    ) -> dict:
        async def probe() -> dict | None:
            found = await self.referrals(patient_id)
            return found[0] if found and predicate(found[0]) else None

        return await eventually(probe, timeout=20, what=what)

    async def task(self, task_id: str) -> dict:
        r = await self.get(f"/v1/tasks/{task_id}")
        assert r.status_code == 200, r.text
        return r.json()


async def _accepted(client: httpx.AsyncClient, key: str) -> bool:
    r = await client.get("/v1/clinics", headers={"Authorization": f"Bearer {key}"})
    return r.status_code == 200


def new_patient() -> str:
    return str(uuid.uuid4())


@pytest.fixture
async def referral(nats_server: NatsServer, database_url: str) -> AsyncIterator[Harness]:
    clock = FixedClock(NOW)
    settings = ReferralSettings(
        database_url=database_url,
        **nats_server.settings("referral"),
        escalation_sweep_seconds=3600,  # tests call the sweep themselves, after moving the clock
        consumer_backoff_seconds=[0.05, 0.1, 0.2],
    )
    runtime = make_runtime(settings, clock=clock)
    app = create_app(runtime)
    async with app.router.lifespan_context(app):
        one = await add_coordinator(runtime, "Coordinator One")
        two = await add_coordinator(runtime, "Coordinator Two")
        nc = await nats_server.connect()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://referral") as client:
            h = Harness(client, runtime, clock, nc, one["api_key"], two["api_key"], "", "")
            h.referring_clinic, h.referring_key = await h.partner_clinic()
            yield h
        await nc.drain()
