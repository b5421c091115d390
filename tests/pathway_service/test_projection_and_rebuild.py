"""pathway as a real process, fed intake's events shuffled and duplicated: it converges on
what the events imply, and a rebuild from JetStream says the live projection is identical."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from care_shared.contracts.intake import (
    AgentDose,
    AssessmentRecorded,
    ClinicRegistered,
    EpisodeOpened,
    PatientRegistered,
    TrialCompleted,
    TrialStarted,
)
from care_shared.db import Database, sqlite_url_for
from care_shared.envelope import nats_subject, new_event_id
from care_shared.testing.nats_server import NatsServer
from care_shared.testing.polling import eventually
from care_shared.testing.processes import ServiceProcess
from care_shared.topology import ensure_streams
from pathway.engine import assess, fold
from pathway.rebuild import live_assessments
from pathway.tables import patient_assessments

pytestmark = pytest.mark.e2e
AGENTS = ["sertraline", "venlafaxine", "mirtazapine", "bupropion", "nortriptyline", "phenelzine"]


def patient_history(rng: random.Random, clinic_id: str) -> tuple[str, list]:
    pid = str(uuid.uuid4())
    events = [
        PatientRegistered(patient_id=pid, clinic_id=clinic_id, external_id=pid[:8], birth_year=1985, sex="female", timezone="UTC"),
        EpisodeOpened(patient_id=pid, episode_id="e1", onset_date=date(2024, 1, 1), severity=rng.choice(["mild", "moderate", "severe"]), diagnosis="mdd"),
    ]
    day = date(2024, 2, 1)
    for i in range(rng.randint(1, 4)):
        tid = f"t{i}"
        agent = rng.choice(AGENTS)
        events.append(TrialStarted(patient_id=pid, trial_id=tid, episode_id="e1", kind="antidepressant", agents=[AgentDose(agent=agent, dose_mg_per_day=300)], started_on=day))
        day += timedelta(days=rng.choice([20, 30, 60]))
        events.append(TrialCompleted(patient_id=pid, trial_id=tid, ended_on=day, adherence_pct=rng.choice([70, 90]), outcome=rng.choice(["no_response", "partial_response", "response"])))
        events.append(AssessmentRecorded(patient_id=pid, assessment_id=str(uuid.uuid4()), instrument="PHQ-9", score=rng.randint(5, 27), item9=rng.choice([0, 0, 1, 3]), taken_on=day))
        day += timedelta(days=3)
    return pid, events


def envelope(payload, pid: str, sequence: int, clinic_id: str, event_id: str) -> bytes:  # noqa: ANN001
    return json.dumps(
        {
            "specversion": "1.0",
            "id": event_id,
            "source": "/intake",
            "type": payload.event_type,
            "subject": pid,
            "time": datetime.now(UTC).isoformat(),
            "datacontenttype": "application/json",
            "data": payload.to_data(),
            "sequence": sequence,
            "clinicid": clinic_id,
        }
    ).encode()


async def publish_in_order(js, histories: list[tuple[str, list]], clinic_id: str) -> tuple[dict[str, dict], int]:  # noqa: ANN001
    """Each patient's history onto INTAKE in order; returns each patient's expected assessment
    (the engine on the same events) and how many events were published."""
    expected = {}
    for pid, evs in histories:
        triples = [(new_event_id(), i + 1, e) for i, e in enumerate(evs)]
        expected[pid] = json.loads(json.dumps(assess(fold(pid, triples))))
        for event_id, seq, e in triples:
            await js.publish_async(
                nats_subject(e.event_type, pid), envelope(e, pid, seq, clinic_id, event_id), headers={"Nats-Msg-Id": event_id}
            )
    await js.publish_async_completed()
    return expected, sum(len(evs) for _, evs in histories)


def run_rebuild(pathway: ServiceProcess, server: NatsServer) -> subprocess.CompletedProcess:
    """As an operator runs it: replaying a whole stream is ops' (an ephemeral consumer)."""
    env = {**pathway.env_for_cli(), **server.env("ops")}
    return subprocess.run([sys.executable, "-m", "pathway", "rebuild"], env=env, capture_output=True, text=True, timeout=120)


async def test_shuffled_and_redelivered_events_converge_and_rebuild_is_identical(own_nats: NatsServer, tmp_path: Path) -> None:
    rng = random.Random(7)
    clinic_id = str(uuid.uuid4())
    histories = [patient_history(rng, clinic_id) for _ in range(12)]
    messages = []
    expected = {}
    for pid, events in histories:
        triples = [(new_event_id(), i + 1, e) for i, e in enumerate(events)]
        expected[pid] = json.loads(json.dumps(assess(fold(pid, triples))))
        for event_id, seq, e in triples:
            messages.append((nats_subject(e.event_type, pid), envelope(e, pid, seq, clinic_id, event_id), event_id))
    duplicates = rng.sample(messages, len(messages) // 3)
    delivery = messages + duplicates
    rng.shuffle(delivery)

    db_url = sqlite_url_for(tmp_path / "pathway.db")
    pathway = ServiceProcess("pathway", {"DATABASE_URL": db_url, **own_nats.env("pathway")}, tmp_path).start()
    try:
        pathway.wait_ready()
        nc = await own_nats.connect()
        js = nc.jetstream()
        await ensure_streams(js)
        registered = ClinicRegistered(clinic_id=clinic_id, name="c", key_sha256="0" * 64)
        await js.publish(nats_subject(registered.event_type, clinic_id), envelope(registered, clinic_id, 1, clinic_id, new_event_id()))
        for i, (subject, body, _) in enumerate(delivery):
            # A fresh Nats-Msg-Id for each copy, so JetStream keeps the duplicates: the
            # consumer, not the server, must see them for what they are.
            await js.publish(subject, body, headers={"Nats-Msg-Id": f"copy-{i}"})
        await nc.close()

        db = Database(db_url)
        try:
            async def caught_up() -> dict | None:
                live = await live_assessments(db)
                return live if all(live.get(pid, {}).get("as_of_event") == a["as_of_event"] for pid, a in expected.items()) else None

            live = await eventually(caught_up, timeout=60, what="pathway to apply every patient's events")
        finally:
            await db.dispose()
        for pid, a in expected.items():
            assert live[pid] == a, pid

        out = await asyncio.to_thread(run_rebuild, pathway, own_nats)
        report = json.loads(out.stdout)
        assert out.returncode == 0, out.stdout + out.stderr
        assert report["identical_to_live"] is True
        assert report["compared"] == len(expected) and report["identical"] == len(expected)
        assert report["events"] == len(delivery) + 1

        # A projection that drifted from its events is reported, not passed.
        tampered = next(iter(expected))
        db = Database(db_url)
        try:
            async with db.transaction() as s:
                await s.execute(
                    sa.update(patient_assessments)
                    .where(patient_assessments.c.patient_id == tampered)
                    .values(assessment={**expected[tampered], "status": "in_remission"})
                )
        finally:
            await db.dispose()
        out = await asyncio.to_thread(run_rebuild, pathway, own_nats)
        assert out.returncode == 1
        assert json.loads(out.stdout)["different"] == [tampered]
    finally:
        pathway.stop()
