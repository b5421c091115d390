"""Each consumer's events/s, from the first publish until it has taken them all."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime

import bench_pathway as bp
import httpx
from harness import metric, operator_command, scope, wait_for
from sqlalchemy import text

from care_shared.contracts.pathway import AssessmentChanged
from care_shared.db import sqlite_url_for
from care_shared.envelope import nats_subject, new_event_id
from care_shared.topology import ensure_streams
from pathway.rebuild import live_assessments

# --- consumers -------------------------------------------------------------------------------


async def consumer(service: str, patients: int, events_each: int, budget: float) -> dict:
    """Publish patients x events_each intake envelopes to JetStream, time until `service` has
    taken all of them (the timer starts before the first publish)."""
    async with scope(f"consume-{service}") as s:
        server = s.start_nats()
        url = sqlite_url_for(s.dir / f"{service}.db")
        svc = s.service(service, {"DATABASE_URL": url, **server.env(service)}).wait_ready()
        nc = await server.connect()
        db = s.database(url)
        try:
            js = nc.jetstream()
            await ensure_streams(js)
            expected = {}
            work = []
            for _ in range(patients):
                pid = str(uuid.uuid4())
                triples = bp.history(pid, events_each)
                expected[pid] = triples[-1][0]
                work += [
                    (nats_subject(e.event_type, pid), bp.envelope(e, pid, seq, eid), eid)
                    for eid, seq, e in triples
                ]
            total = len(work)
            async with httpx.AsyncClient(timeout=10) as http:
                start = time.perf_counter()
                for subject, data, eid in work:
                    await js.publish_async(subject, data, headers={"Nats-Msg-Id": eid})
                await js.publish_async_completed()
                published_s = time.perf_counter() - start
                if service == "pathway":

                    async def done() -> bool:
                        live = await live_assessments(db)
                        return all(live.get(p, {}).get("as_of_event") == last for p, last in expected.items())

                    how = "every patient's patient_assessments.as_of_event == its last event"
                else:
                    consumer_label = f'consumer="{service}-intake"'

                    async def done() -> bool:
                        return (
                            await metric(http, svc.url, "care_events_consumed_total", consumer_label) >= total
                        )

                    how = f"care_events_consumed_total{{{consumer_label}}} == events"
                await wait_for(done, budget, f"{service} to take {total} events", every=0.1)
                elapsed = time.perf_counter() - start
                extra = {}
                if service == "notify":
                    async with db.read() as session:
                        extra["seen_events_rows"] = int(
                            (
                                await session.execute(
                                    text("SELECT count(*) FROM seen_events WHERE consumer = 'notify-intake'")
                                )
                            ).scalar_one()
                        )
            return {
                "service": service,
                "database": "sqlite",
                "events": total,
                "published_in_s": round(published_s, 2),
                "seconds": round(elapsed, 2),
                "events_per_s": round(total / elapsed, 1),
                "done_when": how,
                **extra,
            }
        finally:
            await nc.close()


async def referral_consumer(patients: int, updates_each: int, budget: float) -> dict:
    """pathway's assessment-changed events for `patients` patients, each advising a referral
    and then changing `updates_each - 1` times (urgency up and down): referral opens, routes
    and queues one task per patient and reassesses it on each update. Timed from the first
    publish until care_events_consumed_total for referral-pathway reaches the total."""
    async with scope("consume-referral") as s:
        server = s.start_nats()
        url = sqlite_url_for(s.dir / "referral.db")
        env = {"DATABASE_URL": url, **server.env("referral")}
        # The demo directory: four clinics with varied capabilities, so referrals are routed.
        operator_command(["referral", "demo-seed", "--key-file", str(s.dir / "coordinator.key")], env, s.dir)
        svc = s.service("referral", env).wait_ready()
        nc = await server.connect()
        try:
            js = nc.jetstream()
            await ensure_streams(js)
            urgencies = ["routine", "urgent", "routine", "emergency"]
            work = []
            for _ in range(patients):
                pid = str(uuid.uuid4())
                for i in range(updates_each):
                    event_id = new_event_id()
                    data = {
                        "patient_id": pid,
                        "as_of_event": event_id,
                        "assessment": {
                            "status": "trd",
                            "urgency": urgencies[i % len(urgencies)],
                            "referral": {
                                "advised": True,
                                "capabilities": ["mood_disorder_clinic"],
                                "reasons": ["status trd"],
                            },
                        },
                    }
                    body = json.dumps(
                        {
                            "specversion": "1.0",
                            "id": event_id,
                            "source": "/pathway",
                            "type": AssessmentChanged.event_type,
                            "subject": pid,
                            "time": datetime.now(UTC).isoformat(),
                            "data": data,
                            "sequence": i + 1,
                            "clinicid": "bench-clinic",
                        }
                    ).encode()
                    work.append((nats_subject(AssessmentChanged.event_type, pid), body, event_id))
            total = len(work)
            label = 'consumer="referral-pathway"'
            async with httpx.AsyncClient(timeout=10) as http:
                start = time.perf_counter()
                for subject, data, eid in work:
                    await js.publish_async(subject, data, headers={"Nats-Msg-Id": eid})
                await js.publish_async_completed()

                async def done() -> bool:
                    return await metric(http, svc.url, "care_events_consumed_total", label) >= total

                await wait_for(done, budget, f"referral to take {total} events", every=0.1)
                elapsed = time.perf_counter() - start
                tasks = await metric(http, svc.url, "care_referral_tasks_total", 'step="queued"')
            return {
                "service": "referral",
                "database": "sqlite",
                "events": total,
                "patients": patients,
                "tasks_queued": tasks,
                "seconds": round(elapsed, 2),
                "events_per_s": round(total / elapsed, 1),
                "done_when": f"care_events_consumed_total{{{label}}} == events",
            }
        finally:
            await nc.close()
