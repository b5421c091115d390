"""The event store's appends (beside the `eventsourcing` library) and the outbox relay."""

from __future__ import annotations

import asyncio
import time
import uuid

import bench_pathway as bp
from harness import PG_HOST, PG_PORT, PG_USER, pg_name, ratio, scope
from sqlalchemy import func, select

from care_shared.db import Database, sqlite_url_for
from care_shared.eventstore import EventStore, NewEvent, outbox
from care_shared.migrations import migrate
from intake.bootstrap import MIGRATIONS as INTAKE_MIGRATIONS

# --- event store appends ---------------------------------------------------------------------


async def our_appends(url: str, n: int, publish: bool, streams: int = 10) -> dict:
    """One event per transaction, as intake appends one per request, round-robin on streams."""
    db = Database(url)
    try:
        await migrate(db, INTAKE_MIGRATIONS)
        store = EventStore()
        pids = [str(uuid.uuid4()) for _ in range(streams)]
        versions = dict.fromkeys(pids, 0)
        work = [bp.history(pid, n // streams + 1) for pid in pids]
        t0 = time.perf_counter()
        for i in range(n):
            pid = pids[i % streams]
            _, _, e = work[i % streams][versions[pid]]
            async with db.transaction() as session:
                await store.append(
                    session,
                    f"patient-{pid}",
                    versions[pid],
                    [NewEvent(type=e.event_type, subject=pid, data=e.to_data(), meta={"clinicid": "c"})],
                    publish=publish,
                )
            versions[pid] += 1
        elapsed = time.perf_counter() - t0
        return {"events": n, "seconds": round(elapsed, 2), "events_per_s": round(n / elapsed, 1)}
    finally:
        await db.dispose()


_ES_PATIENT = None


def es_patient_class() -> type:
    """The same patient as an `eventsourcing` aggregate (defined once: the library registers
    each class by topic)."""
    global _ES_PATIENT
    if _ES_PATIENT is None:
        from eventsourcing.domain import Aggregate, event

        class Patient(Aggregate):
            @event("Registered")
            def __init__(self, external_id: str) -> None:
                self.external_id = external_id
                self.scores: list[int] = []

            @event("AssessmentRecorded")
            def record(
                self, assessment_id: str, instrument: str, score: int, item9: int, taken_on: str
            ) -> None:
                self.scores.append(score)

        _ES_PATIENT = Patient
    return _ES_PATIENT


def eventsourcing_appends(env: dict[str, str], n: int, streams: int = 10) -> dict:
    from eventsourcing.application import Application

    Patient = es_patient_class()
    app = Application(env=env)
    try:
        patients = [Patient(f"x{i}") for i in range(streams)]
        t0 = time.perf_counter()
        for i in range(n):
            p = patients[i % streams]
            if i >= streams:
                p.record(str(uuid.uuid4()), "PHQ-9", 12 + i % 10, i % 2, "2025-09-02")
            app.save(p)  # one new event per save, as one per transaction above
        elapsed = time.perf_counter() - t0
        assert len(app.repository.get(patients[0].id).scores) == n // streams - 1
        return {"events": n, "seconds": round(elapsed, 2), "events_per_s": round(n / elapsed, 1)}
    finally:
        app.close()


async def appends(kind: str, n: int) -> dict:
    async with scope(f"append-{kind}") as s:
        if kind == "sqlite":
            ours = await our_appends(sqlite_url_for(s.dir / "ours.db"), n, publish=True)
            ours_no_outbox = await our_appends(sqlite_url_for(s.dir / "ours2.db"), n, publish=False)
            es_env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(s.dir / "es.db")}
        else:
            ours = await our_appends(await s.new_pg(), n, publish=True)
            ours_no_outbox = await our_appends(await s.new_pg(), n, publish=False)
            es_env = {
                "PERSISTENCE_MODULE": "eventsourcing.postgres",
                "POSTGRES_DBNAME": pg_name(await s.new_pg()),
                "POSTGRES_HOST": PG_HOST,
                "POSTGRES_PORT": str(PG_PORT),
                "POSTGRES_USER": PG_USER,
                "POSTGRES_PASSWORD": "",
            }
        es = await asyncio.to_thread(eventsourcing_appends, es_env, n)
        return {
            "database": kind,
            "ours_with_outbox": ours,
            "ours_without_outbox": ours_no_outbox,
            "eventsourcing": es,
            "ratio_ours_with_outbox_to_eventsourcing": ratio(ours["events_per_s"], es["events_per_s"]),
            "ratio_ours_without_outbox_to_eventsourcing": ratio(
                ours_no_outbox["events_per_s"], es["events_per_s"]
            ),
        }


# --- the outbox relay ------------------------------------------------------------------------


async def relay(kind: str, n: int) -> dict:
    async with scope(f"relay-{kind}") as s:
        server = s.start_nats()
        url = sqlite_url_for(s.dir / "intake.db") if kind == "sqlite" else await s.new_pg()
        db = s.database(url)
        await migrate(db, INTAKE_MIGRATIONS)
        store = EventStore()
        for _ in range(n // 50):
            pid = str(uuid.uuid4())
            async with db.transaction() as session:
                await store.append(
                    session,
                    f"patient-{pid}",
                    0,
                    [
                        NewEvent(
                            type=e.event_type,
                            subject=pid,
                            data=e.to_data(),
                            meta={"clinicid": "c"},
                            event_id=eid,
                        )
                        for eid, _, e in bp.history(pid, 50)
                    ],
                )

        async def backlog() -> int:
            async with db.read() as session:
                return int((await session.execute(select(func.count()).select_from(outbox))).scalar_one())

        total = await backlog()
        t_spawn = time.perf_counter()
        s.service("intake", {"DATABASE_URL": url, **server.env("intake")}, command="relay")
        t_first = None
        deadline = t_spawn + 90
        while time.perf_counter() < deadline:
            count = await backlog()
            now = time.perf_counter()
            if t_first is None and count < total:
                t_first = now
            if count == 0:
                break
            await asyncio.sleep(0.02)
        else:
            raise TimeoutError(f"relay left {count} of {total} rows after 90 s")
        t_empty = time.perf_counter()
        nc = await server.connect()
        try:
            published = (await nc.jetstream().stream_info("INTAKE")).state.messages
        finally:
            await nc.close()
        return {
            "database": kind,
            "events": total,
            "stream_messages_after": published,
            "seconds_from_first_publish": round(t_empty - t_first, 2),
            "seconds_including_process_start": round(t_empty - t_spawn, 2),
            "events_per_s": round(total / (t_empty - t_first), 1),
        }
