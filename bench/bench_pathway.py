"""pathway benchmarks: the engine alone, the per-event cost at 10 and 1,000 events of history,
and the consuming service end to end (real nats-server, real pathway process, SQLite).

    .venv/bin/python bench/bench_pathway.py            # prints a report, writes bench/results/
"""

from __future__ import annotations

import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from care_shared.contracts.intake import (
    AgentDose,
    AssessmentRecorded,
    EpisodeOpened,
    PatientRegistered,
    TrialCompleted,
    TrialStarted,
)
from care_shared.db import Database, sqlite_url_for
from care_shared.envelope import nats_subject, new_event_id
from care_shared.testing.nats_server import NatsServer
from care_shared.testing.processes import ServiceProcess
from care_shared.topology import ensure_streams
from pathway.engine import PatientFacts, assess
from pathway.projection import PatientProjection
from pathway.rebuild import live_assessments

RESULTS = Path(__file__).parent / "results"


def history(pid: str, n: int) -> list:
    """A realistic patient: registration, an episode, two failed trials, then assessments."""
    events = [
        PatientRegistered(
            patient_id=pid, clinic_id="c", external_id="x", birth_year=1980, sex="female", timezone="UTC"
        ),
        EpisodeOpened(
            patient_id=pid, episode_id="e", onset_date=date(2020, 1, 1), severity="moderate", diagnosis="mdd"
        ),
        TrialStarted(
            patient_id=pid,
            trial_id="t1",
            episode_id="e",
            kind="antidepressant",
            agents=[AgentDose(agent="sertraline", dose_mg_per_day=100)],
            started_on=date(2020, 2, 1),
        ),
        TrialCompleted(
            patient_id=pid, trial_id="t1", ended_on=date(2020, 4, 1), adherence_pct=90, outcome="no_response"
        ),
        TrialStarted(
            patient_id=pid,
            trial_id="t2",
            episode_id="e",
            kind="antidepressant",
            agents=[AgentDose(agent="venlafaxine", dose_mg_per_day=150)],
            started_on=date(2020, 4, 5),
        ),
        TrialCompleted(
            patient_id=pid, trial_id="t2", ended_on=date(2020, 6, 1), adherence_pct=90, outcome="no_response"
        ),
    ]
    day = date(2020, 6, 2)
    while len(events) < n:
        events.append(
            AssessmentRecorded(
                patient_id=pid,
                assessment_id=str(uuid.uuid4()),
                instrument="PHQ-9",
                score=12 + len(events) % 10,
                item9=len(events) % 2,
                taken_on=day,
            )
        )
        day += timedelta(days=1)
    return [(new_event_id(), i + 1, e) for i, e in enumerate(events[:n])]


def engine_events_per_second(patients: int = 200, events_each: int = 30) -> float:
    work = [history(str(uuid.uuid4()), events_each) for _ in range(patients)]
    start = time.perf_counter()
    for triples in work:
        proj = PatientProjection.new("p")
        for event_id, seq, e in triples:
            proj.add(seq, event_id, e.event_type, e.to_data())
            assess(proj.facts)
    return patients * events_each / (time.perf_counter() - start)


def cost_per_event_us(history_len: int, samples: int = 300) -> float:
    """What the handler does for one new event: load the stored facts, apply, assess, store."""
    triples = history(str(uuid.uuid4()), history_len + samples)
    proj = PatientProjection.new("p")
    for event_id, seq, e in triples[:history_len]:
        proj.add(seq, event_id, e.event_type, e.to_data())
    stored = json.dumps(proj.facts.to_json())
    timings = []
    for event_id, seq, e in triples[history_len : history_len + samples]:
        t0 = time.perf_counter()
        p = PatientProjection(PatientFacts.from_json(json.loads(stored)), {})
        p.add(seq, event_id, e.event_type, e.to_data())
        json.dumps(assess(p.facts))
        stored = json.dumps(p.facts.to_json())
        timings.append(time.perf_counter() - t0)
    return statistics.median(timings) * 1e6


def envelope(e, pid: str, seq: int, event_id: str) -> bytes:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": event_id,
            "source": "/intake",
            "type": e.event_type,
            "subject": pid,
            "time": datetime.now(UTC).isoformat(),
            "data": e.to_data(),
            "sequence": seq,
            "clinicid": "c",
        }
    ).encode()


async def service_events_per_second(patients: int = 50, events_each: int = 20) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        server = NatsServer(store_dir=work / "nats").start()
        db_url = sqlite_url_for(work / "pathway.db")
        svc = ServiceProcess(
            "pathway", {"DATABASE_URL": db_url, **server.env("pathway"), "CARE_TRACE_FILE": ""}, work
        ).start()
        try:
            svc.wait_ready()
            nc = await server.connect()
            js = nc.jetstream()
            await ensure_streams(js)
            expected = {}
            for _ in range(patients):
                pid = str(uuid.uuid4())
                triples = history(pid, events_each)
                expected[pid] = triples[-1][0]
                for event_id, seq, e in triples:
                    await js.publish_async(
                        nats_subject(e.event_type, pid),
                        envelope(e, pid, seq, event_id),
                        headers={"Nats-Msg-Id": event_id},
                    )
            await js.publish_async_completed()
            start = time.perf_counter()
            db = Database(db_url)
            while True:
                live = await live_assessments(db)
                if all(live.get(p, {}).get("as_of_event") == last for p, last in expected.items()):
                    break
                if time.perf_counter() - start > 300:
                    raise TimeoutError("pathway did not catch up in 300 s")
                await asyncio.sleep(0.05)
            elapsed = time.perf_counter() - start
            await db.dispose()
            await nc.close()
            total = patients * events_each
            return {
                "events": total,
                "seconds": round(elapsed, 2),
                "events_per_s": round(total / elapsed, 1),
                "database": "sqlite",
            }
        finally:
            svc.stop()
            server.stop()


def main() -> int:
    at_10 = cost_per_event_us(10)
    at_1000 = cost_per_event_us(1000)
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": __import__("os").cpu_count(),
        },
        "pathway_engine_events_per_s": round(engine_events_per_second(), 1),
        "pathway_cost_per_event_us": {
            "history_10": round(at_10, 1),
            "history_1000": round(at_1000, 1),
            "ratio": round(at_1000 / at_10, 2),
        },
        "pathway_service": asyncio.run(service_events_per_second()),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "pathway.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
