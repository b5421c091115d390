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

import httpx
import pytest
import sqlalchemy as sa

from care_shared.auth import generate_api_key, hash_key
from care_shared.contracts import decode
from care_shared.contracts.intake import (
    AgentDose,
    AssessmentRecorded,
    ClinicRegistered,
    ComorbidityRecorded,
    EpisodeOpened,
    JournalEntryRecorded,
    PatientRegistered,
    TreatmentPreferenceRecorded,
    TrialCompleted,
    TrialStarted,
    WorkupCheckRecorded,
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
        PatientRegistered(
            patient_id=pid,
            clinic_id=clinic_id,
            external_id=pid[:8],
            birth_year=1985,
            sex="female",
            timezone="UTC",
        ),
        EpisodeOpened(
            patient_id=pid,
            episode_id="e1",
            onset_date=date(2024, 1, 1),
            severity=rng.choice(["mild", "moderate", "severe"]),
            diagnosis="mdd",
        ),
    ]
    day = date(2024, 2, 1)
    for i in range(rng.randint(1, 4)):
        tid = f"t{i}"
        agent = rng.choice(AGENTS)
        events.append(
            TrialStarted(
                patient_id=pid,
                trial_id=tid,
                episode_id="e1",
                kind="antidepressant",
                agents=[AgentDose(agent=agent, dose_mg_per_day=300)],
                started_on=day,
            )
        )
        day += timedelta(days=rng.choice([20, 30, 60]))
        events.append(
            TrialCompleted(
                patient_id=pid,
                trial_id=tid,
                ended_on=day,
                adherence_pct=rng.choice([70, 90]),
                outcome=rng.choice(["no_response", "partial_response", "response"]),
            )
        )
        events.append(
            AssessmentRecorded(
                patient_id=pid,
                assessment_id=str(uuid.uuid4()),
                instrument="PHQ-9",
                score=rng.randint(5, 27),
                item9=rng.choice([0, 0, 1, 3]),
                taken_on=day,
            )
        )
        day += timedelta(days=3)
    return pid, events


def envelope(payload, pid: str, sequence: int, clinic_id: str, event_id: str) -> bytes:
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


async def publish_in_order(
    js, histories: list[tuple[str, list]], clinic_id: str
) -> tuple[dict[str, dict], int]:
    """Each patient's history onto INTAKE in order; returns each patient's expected assessment
    (the engine on the same events) and how many events were published."""
    expected = {}
    for pid, evs in histories:
        triples = [(new_event_id(), i + 1, e) for i, e in enumerate(evs)]
        expected[pid] = json.loads(json.dumps(assess(fold(pid, triples))))
        for event_id, seq, e in triples:
            await js.publish_async(
                nats_subject(e.event_type, pid),
                envelope(e, pid, seq, clinic_id, event_id),
                headers={"Nats-Msg-Id": event_id},
            )
    await js.publish_async_completed()
    return expected, sum(len(evs) for _, evs in histories)


def run_rebuild(pathway: ServiceProcess, server: NatsServer) -> subprocess.CompletedProcess:
    """As an operator runs it: replaying a whole stream is ops' (an ephemeral consumer)."""
    env = {**pathway.env_for_cli(), **server.env("ops")}
    return subprocess.run(
        [sys.executable, "-m", "pathway", "rebuild"], env=env, capture_output=True, text=True, timeout=120
    )


async def test_shuffled_and_redelivered_events_converge_and_rebuild_is_identical(
    own_nats: NatsServer, tmp_path: Path
) -> None:
    rng = random.Random(7)
    clinic_id = str(uuid.uuid4())
    histories = [patient_history(rng, clinic_id) for _ in range(12)]
    messages = []
    expected = {}
    for pid, events in histories:
        triples = [(new_event_id(), i + 1, e) for i, e in enumerate(events)]
        expected[pid] = json.loads(json.dumps(assess(fold(pid, triples))))
        for event_id, seq, e in triples:
            messages.append(
                (nats_subject(e.event_type, pid), envelope(e, pid, seq, clinic_id, event_id), event_id)
            )
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
        await js.publish(
            nats_subject(registered.event_type, clinic_id),
            envelope(registered, clinic_id, 1, clinic_id, new_event_id()),
        )
        for i, (subject, body, _) in enumerate(delivery):
            # A fresh Nats-Msg-Id for each copy, so JetStream keeps the duplicates: the
            # consumer, not the server, must see them for what they are.
            await js.publish(subject, body, headers={"Nats-Msg-Id": f"copy-{i}"})
        await nc.close()

        db = Database(db_url)
        try:

            async def caught_up() -> dict | None:
                live = await live_assessments(db)
                return (
                    live
                    if all(
                        live.get(pid, {}).get("as_of_event") == a["as_of_event"]
                        for pid, a in expected.items()
                    )
                    else None
                )

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


# ------------------------------------------------------------------ after the trd-rules 2026.12 upgrade
def v1(payload, drop: set[str], **data_changes) -> tuple[str, dict]:
    """The event as a pre-2026.12 intake published it: the v1 type and data without the v2 fields."""
    data = {k: v for k, v in payload.to_data().items() if k not in drop}
    data.update(data_changes)
    return payload.event_type.rsplit(".v", 1)[0] + ".v1", data


def upgrade_history(rng: random.Random, clinic_id: str) -> tuple[str, list[tuple[str, dict]]]:
    """A patient recorded before the upgrade (v1 events, brand names as old events carry them)
    and after it (v2 events with the new fields, and every new record kind)."""
    pid = str(uuid.uuid4())
    old_agent, new_agent = rng.choice(
        [("Zoloft", "venlafaxine"), ("Effexor XR", "bupropion"), ("Prozac", "mirtazapine")]
    )
    d0 = date(2024, 1, 1)
    events: list[tuple[str, dict]] = [
        v1(
            PatientRegistered(
                patient_id=pid,
                clinic_id=clinic_id,
                external_id=pid[:8],
                birth_year=rng.choice([1950, 1985]),
                sex=rng.choice(["female", "male"]),
                timezone="Europe/London",
            ),
            {"country"},
        ),
        v1(
            EpisodeOpened(
                patient_id=pid,
                episode_id="e1",
                onset_date=d0,
                severity=rng.choice(["moderate", "severe"]),
                psychotic_features=rng.random() < 0.3,
            ),
            {"prior_episodes", "age_at_first_onset"},
        ),
        v1(
            TrialStarted(
                patient_id=pid,
                trial_id="t1",
                episode_id="e1",
                kind="antidepressant",
                agents=[AgentDose(agent=old_agent, dose_mg_per_day=rng.choice([100, 300]))],
                started_on=d0 + timedelta(days=9),
            ),
            set(),
        ),
        v1(
            TrialCompleted(
                patient_id=pid,
                trial_id="t1",
                ended_on=d0 + timedelta(days=65),
                adherence_pct=rng.choice([70, 90]),
                outcome=rng.choice(["no_response", "partial_response", "response"]),
                max_dose_mg_per_day=None,
            ),
            set(),
        ),
        v1(
            AssessmentRecorded(
                patient_id=pid,
                assessment_id=str(uuid.uuid4()),
                instrument="PHQ-9",
                score=rng.randint(10, 27),
                item9=rng.choice([None, 0, 1, 3]),
                taken_on=d0 + timedelta(days=66),
            ),
            {"source"},
        ),
    ]
    # after the upgrade: v2 events and the new record kinds
    day = d0 + timedelta(days=70)
    new: list = [
        ComorbidityRecorded(
            patient_id=pid,
            record_id=str(uuid.uuid4()),
            condition=rng.choice(["eating_disorder", "chronic_pain"]),
            present=True,
            recorded_on=day,
        ),
        WorkupCheckRecorded(
            patient_id=pid,
            record_id=str(uuid.uuid4()),
            episode_id="e1",
            check=rng.choice(["adherence_review", "thyroid_function"]),
            result=rng.choice(["normal", "abnormal"]),
            done_on=day,
        ),
        TreatmentPreferenceRecorded(
            patient_id=pid,
            record_id=str(uuid.uuid4()),
            episode_id="e1",
            strategy=rng.choice(["ect", "augmentation", "aripiprazole", "esketamine"]),
            declined=True,
            recorded_on=day,
        ),
        TrialStarted(
            patient_id=pid,
            trial_id="t2",
            episode_id="e1",
            kind="combination",
            started_on=day,
            agents=[
                AgentDose(
                    agent=new_agent,
                    dose_mg_per_day=rng.choice([75, 150]),
                    unit="mg",
                    entered_as=new_agent.title(),
                ),
                AgentDose(agent="aripiprazole", dose_mg_per_day=5),
            ],
            baseline={"instrument": "PHQ-9", "score": 20},
        ),
        AssessmentRecorded(
            patient_id=pid,
            assessment_id=str(uuid.uuid4()),
            instrument="PHQ-9",
            score=sum(items := [rng.randint(0, 3) for _ in range(9)]),
            item9=items[-1],
            items=items,
            source="patient",
            taken_on=day + timedelta(days=20),
        ),
        AssessmentRecorded(
            patient_id=pid,
            assessment_id=str(uuid.uuid4()),
            instrument="WSAS",
            score=rng.randint(5, 35),
            taken_on=day + timedelta(days=21),
        ),
        *[
            JournalEntryRecorded(
                patient_id=pid,
                entry_id=str(uuid.uuid4()),
                entry_on=day + timedelta(days=i),
                mood=rng.randint(0, 5),
                side_effects=rng.sample(["nausea", "headache", "insomnia"], k=rng.randint(0, 2)),
                triggers=rng.sample(["poor_sleep", "conflict"], k=rng.randint(0, 1)),
            )
            for i in range(rng.randint(3, 9))
        ],
    ]
    if rng.random() < 0.7:
        new.append(
            TrialCompleted(
                patient_id=pid,
                trial_id="t2",
                ended_on=day + timedelta(days=rng.choice([30, 60])),
                adherence_pct=90,
                outcome=rng.choice(["no_response", "response", "intolerance"]),
                max_doses=[
                    AgentDose(agent=new_agent, dose_mg_per_day=300),
                    AgentDose(agent="aripiprazole", dose_mg_per_day=10),
                ],
            )
        )
    if rng.random() < 0.5:
        new.append(
            TrialStarted(
                patient_id=pid,
                trial_id="t3",
                episode_id="e1",
                kind="ect",
                started_on=day + timedelta(days=90),
            )
        )
        new.append(
            TrialCompleted(
                patient_id=pid,
                trial_id="t3",
                ended_on=day + timedelta(days=120),
                sessions=rng.choice([5, 8]),
                outcome="no_response",
                placement=rng.choice(["bilateral", "right_unilateral"]),
            )
        )
    return pid, events + [(e.event_type, e.to_data()) for e in new]


def raw_envelope(
    event_type: str, data: dict, pid: str, sequence: int, clinic_id: str, event_id: str
) -> bytes:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": event_id,
            "source": "/intake",
            "type": event_type,
            "subject": pid,
            "time": datetime.now(UTC).isoformat(),
            "datacontenttype": "application/json",
            "data": data,
            "sequence": sequence,
            "clinicid": clinic_id,
        }
    ).encode()


async def test_a_rebuild_after_the_upgrade_equals_the_live_projection(
    own_nats: NatsServer, tmp_path: Path
) -> None:
    """v1 events (with brand names) and the 2026.12 record kinds, shuffled and duplicated: the live
    projection is what the engine implies (trd-rules 2026.12), and a rebuild says it is identical."""
    rng = random.Random(11)
    clinic_id = str(uuid.uuid4())
    messages, expected = [], {}
    for _ in range(8):
        pid, history = upgrade_history(rng, clinic_id)
        triples = [(new_event_id(), i + 1, event_type, data) for i, (event_type, data) in enumerate(history)]
        expected[pid] = json.loads(
            json.dumps(assess(fold(pid, [(eid, seq, decode(t, d)) for eid, seq, t, d in triples])))
        )
        assert expected[pid]["rules_version"] == "trd-rules 2026.12"
        for event_id, seq, event_type, data in triples:
            subject = nats_subject(event_type, pid)
            messages.append((subject, raw_envelope(event_type, data, pid, seq, clinic_id, event_id)))
    assert any(m[1].find(b"patient-registered.v1") > 0 for m in messages)
    delivery = messages + rng.sample(messages, len(messages) // 4)
    rng.shuffle(delivery)

    db_url = sqlite_url_for(tmp_path / "pathway.db")
    pathway = ServiceProcess("pathway", {"DATABASE_URL": db_url, **own_nats.env("pathway")}, tmp_path).start()
    try:
        pathway.wait_ready()
        nc = await own_nats.connect()
        js = nc.jetstream()
        await ensure_streams(js)
        key = generate_api_key()
        registered = ClinicRegistered(clinic_id=clinic_id, name="c", key_sha256=hash_key(key))
        await js.publish(
            nats_subject(registered.event_type, clinic_id),
            envelope(registered, clinic_id, 1, clinic_id, new_event_id()),
        )
        for i, (subject, body) in enumerate(delivery):
            await js.publish(subject, body, headers={"Nats-Msg-Id": f"copy-{i}"})
        await nc.close()

        db = Database(db_url)
        try:

            async def caught_up() -> dict | None:
                live = await live_assessments(db)
                return (
                    live
                    if all(
                        live.get(pid, {}).get("as_of_event") == a["as_of_event"]
                        for pid, a in expected.items()
                    )
                    else None
                )

            live = await eventually(
                caught_up, timeout=60, what="pathway to apply every upgraded patient's events"
            )
        finally:
            await db.dispose()
        for pid, a in expected.items():
            assert live[pid] == a, pid
        # the upgrade's content is there: brands resolved, the new record kinds folded in
        assert not any(f["flag"] == "unknown_agent" for a in live.values() for f in a["flags"])
        assert {ag for a in live.values() for t in a["trials"] for ag in t["agents"]} >= {"aripiprazole"}
        assert all(a["rules_version"] == "trd-rules 2026.12" and a["journal"] for a in live.values())
        assert all(a["declined"] for a in live.values())
        assert any(a["workup"] for a in live.values()) and any(a["tried"] for a in live.values())

        # GET /v1/patients/{id}/assessment publishes the 2026.12 fields (DESIGN.md 6 additions)
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as http:
            for pid, a in expected.items():
                r = await http.get(f"{pathway.url}/v1/patients/{pid}/assessment")
                assert r.status_code == 200, r.text
                body = r.json()
                for field in (
                    "rules_version",
                    "tried",
                    "declined",
                    "not_offered",
                    "workup",
                    "journal",
                    "flags",
                    "referral",
                ):
                    assert body[field] == a[field], field

        out = await asyncio.to_thread(run_rebuild, pathway, own_nats)
        assert out.returncode == 0, out.stdout + out.stderr
        report = json.loads(out.stdout)
        assert report["identical_to_live"] is True
        assert report["compared"] == len(expected) and report["identical"] == len(expected)
    finally:
        pathway.stop()
