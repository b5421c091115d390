"""The fault suite's world: the four services as real processes on PostgreSQL (one database
each), intake's outbox relay as its own process, a nats-server of the suite's own (file
storage, restartable on the same port and store), a real SMTP server (aiosmtpd) and a real
HTTP SMS gateway, and notify's clock in a file the suite moves."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import asyncpg
import httpx
from aiosmtpd.controller import Controller
from sqlalchemy.engine import make_url

from care_shared.db import normalise_url
from care_shared.testing.databases import create_postgres_database, drop_postgres_database
from care_shared.testing.nats_server import NatsServer, free_port
from care_shared.testing.processes import ServiceProcess
from tests.integration.notify.conftest import Gateway, Mailbox

SERVICES = ("intake", "pathway", "referral", "notify")


def asyncpg_dsn(url: str) -> str:
    return make_url(normalise_url(url)).set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass
class FaultLog:
    """Every fault the suite injected, when, and how long the victim took to come back."""

    started: float = field(default_factory=time.monotonic)
    entries: list[dict] = field(default_factory=list)

    def add(self, kind: str, target: str, **details: object) -> None:
        self.entries.append(
            {"t": round(time.monotonic() - self.started, 1), "fault": kind, "target": target, **details}
        )

    def count(self, kind: str | None = None) -> int:
        return sum(1 for e in self.entries if kind is None or e["fault"] == kind)


class FaultNetwork:
    def __init__(self, workdir: Path, admin_url: str) -> None:
        self.workdir = workdir
        self.admin_url = admin_url
        self.nats = NatsServer(store_dir=workdir / "nats")
        self.db_urls: dict[str, str] = {}
        self.services: dict[str, ServiceProcess] = {}
        self.relay: ServiceProcess | None = None
        self.mailbox = Mailbox()
        self.smtp: Controller | None = None
        self.gateway = Gateway()
        self.clock_file = workdir / "notify-now.txt"
        self.faults = FaultLog()
        self.recovery_failures: list[str] = []
        self.restarts: dict[str, asyncio.Task] = {}

    def log(self, message: str) -> None:
        print(f"[faults t={time.monotonic() - self.faults.started:6.1f}s] {message}", flush=True)

    async def wait_ready(self, svc: ServiceProcess, timeout: float = 90.0) -> float:
        """Until /readyz answers 200 (database, NATS, migrations). A loaded machine may take
        seconds to answer, so each look may too; the deadline is for the whole wait."""
        began = time.monotonic()
        async with httpx.AsyncClient(timeout=5.0) as http:
            while True:
                if svc.process and svc.process.poll() is not None:
                    raise RuntimeError(f"{svc.name} exited with {svc.process.returncode}:\n{svc.log_tail()}")
                try:
                    if (await http.get(f"{svc.url}/readyz")).status_code == 200:
                        return time.monotonic() - began
                except httpx.HTTPError:
                    pass
                if time.monotonic() - began > timeout:
                    raise RuntimeError(f"{svc.name} not ready after {timeout}s:\n{svc.log_tail()}")
                await asyncio.sleep(0.2)

    # --- life -----------------------------------------------------------------------------

    async def start(self, now: datetime) -> FaultNetwork:
        for name in SERVICES:
            self.db_urls[name] = await create_postgres_database(self.admin_url, prefix=f"care_fault_{name}")
        self.nats.start()
        self.smtp = Controller(self.mailbox, hostname="127.0.0.1", port=free_port())
        self.smtp.start()
        self.gateway.start()
        self.set_clock(now)
        common = {"LOG_LEVEL": "INFO"}
        extra = {
            # intake's events leave only through the standalone relay process.
            "intake": {"RELAY_ENABLED": "false"},
            "pathway": {},
            "referral": {},
            "notify": {
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(self.smtp.port),
                "SMS_GATEWAY_URL": self.gateway.url,
                "NOTIFY_CLOCK_FILE": str(self.clock_file),
                "DELIVERY_POLL_SECONDS": "0.2",
                # Wall-clock lease: a reminder claimed by a process that was killed is claimable
                # again after this long.
                "DELIVERY_LEASE_SECONDS": "2",
            },
        }
        for name in SERVICES:
            self.services[name] = ServiceProcess(
                name,
                {"DATABASE_URL": self.db_urls[name], **self.nats.env(name), **common, **extra[name]},
                self.workdir / name,
            )
        self.relay = ServiceProcess(
            "intake",
            {"DATABASE_URL": self.db_urls["intake"], **self.nats.env("intake"), **common},
            self.workdir / "intake-relay",
            command="relay",
        )
        for svc in self.services.values():
            svc.start()
        for svc in self.services.values():
            await self.wait_ready(svc)
        self.relay.start()
        self.log(
            "network ready: "
            + ", ".join(f"{n} {s.url}" for n, s in self.services.items())
            + f", NATS {self.nats.url}"
        )
        return self

    async def stop(self) -> None:
        for task in self.restarts.values():
            task.cancel()
        for svc in [*self.services.values(), *([self.relay] if self.relay else [])]:
            await asyncio.to_thread(svc.stop)
        self.nats.stop()
        if self.smtp:
            self.smtp.stop()
        self.gateway.stop()
        for url in self.db_urls.values():
            await drop_postgres_database(self.admin_url, url)

    def url(self, service: str) -> str:
        return self.services[service].url

    def set_clock(self, at: datetime) -> None:
        tmp = self.clock_file.with_suffix(".tmp")
        tmp.write_text(at.isoformat())
        os.replace(tmp, self.clock_file)  # notify never reads a half-written time

    def now(self) -> datetime:
        return datetime.fromisoformat(self.clock_file.read_text().strip())

    async def add_clinic(self, name: str) -> tuple[str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "intake",
            "clinic",
            "add",
            "--name",
            name,
            env=self.services["intake"].env_for_cli(),
            cwd=self.workdir,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        body = json.loads(out.decode().strip().splitlines()[-1])
        return body["clinic_id"], body["api_key"]

    # --- faults ---------------------------------------------------------------------------

    async def sigkill(self, name: str) -> None:
        """SIGKILL a service (or "relay") and start it again at once, as a supervisor would;
        its readiness is awaited in the background so the traffic and the schedule go on."""
        previous = self.restarts.get(name)
        if previous:
            await previous  # the last restart of this one first
        svc = self.relay if name == "relay" else self.services[name]
        assert svc is not None
        svc.kill()
        entry = {"t": round(time.monotonic() - self.faults.started, 1), "fault": "sigkill", "target": name}
        self.faults.entries.append(entry)
        svc.start()
        self.log(f"SIGKILL {name}; restarted")

        async def back() -> None:
            try:
                if name != "relay":  # the relay has no HTTP side: it shows itself in the outbox
                    entry["ready_after_s"] = round(await self.wait_ready(svc), 1)
                    self.log(f"{name} ready again after {entry['ready_after_s']}s")
            except RuntimeError as exc:
                self.recovery_failures.append(f"{name} did not come back after SIGKILL: {exc}")
                self.log(f"{name} DID NOT COME BACK")

        self.restarts[name] = asyncio.create_task(back())

    async def crash_at(self, name: str, variable: str, value: str, timeout: float = 40.0) -> None:
        """Restart a service (or "relay") with its own fault hook set, so it SIGKILLs itself at
        the worst moment (the relay: after JetStream acked a batch, before the outbox rows are
        deleted; notify: after a channel took a message, before it is recorded); when it has
        died, start it again without the hook. If the moment does not come within `timeout`,
        it is killed anyway and the entry says so."""
        previous = self.restarts.get(name)
        if previous:
            await previous
        svc = self.relay if name == "relay" else self.services[name]
        assert svc is not None
        svc.kill()
        svc.env[variable] = value
        svc.start()
        entry = {
            "t": round(time.monotonic() - self.faults.started, 1),
            "fault": "sigkill",
            "target": name,
            "at": value,
        }
        self.faults.entries.append(entry)
        self.log(f"{name} restarted with {variable}={value}")

        async def die_and_return() -> None:
            began = time.monotonic()
            assert svc.process is not None
            try:
                code = await asyncio.to_thread(svc.process.wait, timeout)
            except subprocess.TimeoutExpired:
                code = None
            entry["self_killed"] = code == -9
            entry["died_after_s"] = round(time.monotonic() - began, 1)
            if code is None:
                svc.kill()
            svc.env.pop(variable, None)
            svc.start()
            self.log(
                f"{name} {'killed itself at ' + value if code == -9 else 'never reached ' + value + ': killed'}; restarted"
            )
            try:
                if name != "relay":
                    entry["ready_after_s"] = round(await self.wait_ready(svc), 1)
                    self.log(f"{name} ready again after {entry['ready_after_s']}s")
            except RuntimeError as exc:
                self.recovery_failures.append(f"{name} did not come back after SIGKILL at {value}: {exc}")

        self.restarts[name] = asyncio.create_task(die_and_return())

    async def inject(self, kind: str, target: str) -> None:
        raise ValueError(f"no such fault here: {kind}")

    async def settle_restarts(self) -> None:
        for task in list(self.restarts.values()):
            await task

    async def restart_nats(self) -> None:
        began = time.monotonic()
        await asyncio.to_thread(self.nats.restart)
        self.faults.add("nats-restart", "nats-server", back_after_s=round(time.monotonic() - began, 1))
        self.log(f"nats-server restarted (same port and store) in {time.monotonic() - began:.1f}s")

    async def cut_postgres(self, service: str) -> int:
        """Terminate every backend of the service's database (its pool's connections, the
        relay's too for intake's), as a PostgreSQL failover or an admin would."""
        name = make_url(self.db_urls[service]).database
        conn = await asyncpg.connect(asyncpg_dsn(self.admin_url))
        try:
            # A service still coming back from an earlier SIGKILL may hold no connection yet:
            # wait (with a deadline) for one, so that every cut cuts something.
            deadline = time.monotonic() + 20
            while True:
                rows = await conn.fetch(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                    name,
                )
                if rows or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
        finally:
            await conn.close()
        self.faults.add("pg-terminate", service, backends=len(rows))
        self.log(f"pg_terminate_backend: {len(rows)} connections of {service}'s database cut")
        return len(rows)

    def log_text(self, name: str) -> str:
        svc = self.relay if name == "relay" else self.services[name]
        try:
            return svc.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
