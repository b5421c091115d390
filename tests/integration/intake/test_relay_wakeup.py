"""The relay is woken by the commit that wrote outbox rows; polling is only a safety net."""

from __future__ import annotations

import time

import httpx

from care_shared.clock import FixedClock
from care_shared.testing.nats_server import NatsServer
from care_shared.testing.polling import eventually
from intake.bootstrap import create_app, make_runtime
from intake.clinics import add_clinic
from intake.settings import IntakeSettings
from tests.integration.intake.conftest import NOW, Intake


async def test_a_commit_wakes_the_relay_long_before_its_next_poll(
    nats_server: NatsServer, database_url: str
) -> None:
    poll = 120.0  # if only the poll published, the event would wait up to two minutes
    settings = IntakeSettings(
        database_url=database_url, **nats_server.settings("intake"), relay_poll_seconds=poll
    )
    runtime = make_runtime(settings, clock=FixedClock(NOW))
    app = create_app(runtime)
    async with app.router.lifespan_context(app):
        clinic = await add_clinic(runtime, "Clinic A")
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://intake"
        ) as client:
            intake = Intake(client, runtime, nats_server, clinic["api_key"], clinic["api_key"])
            # Let the relay's start-up pass finish, so that it is asleep on its poll.
            await eventually(lambda: _outbox_empty(intake), what="the start-up pass to drain the outbox")
            for _ in range(3):
                began = time.monotonic()
                patient_id = await intake.new_patient()
                await eventually(
                    lambda pid=patient_id: intake.published_for(pid),
                    timeout=10,
                    what="the event in JetStream",
                )
                assert time.monotonic() - began < poll / 4


async def _outbox_empty(intake: Intake) -> bool:
    from sqlalchemy import func, select

    from care_shared.eventstore import outbox

    async with intake.runtime.db.read() as s:
        return (await s.execute(select(func.count()).select_from(outbox))).scalar_one() == 0
