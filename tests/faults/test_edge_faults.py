"""Issue 12's fault additions, on real processes:

- NATS down at start-up: `/healthz` answers at once, `/readyz` is 503 naming NATS (and the
  log says so), a clinic's write is stored and waits in the outbox; once NATS is up the
  service is ready without a restart and the write is published; SIGTERM stops the process
  within its grace period whether NATS ever came or not.
- A poison outbox row (one that can never become a message) is set aside with its reason,
  listed by `carectl outbox` and counted by a metric, and the rows behind it are published.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from care_shared.db import Database, sqlite_url_for
from care_shared.eventstore import EventStore, NewEvent
from care_shared.testing.nats_server import NatsServer
from care_shared.testing.polling import eventually
from care_shared.testing.processes import ServiceProcess

pytestmark = [pytest.mark.e2e, pytest.mark.faults]
GRACE_SECONDS = 30  # Kubernetes' default terminationGracePeriodSeconds


def add_clinic(svc: ServiceProcess, name: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "intake", "clinic", "add", "--name", name],
        env=svc.env_for_cli(),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["api_key"]


def carectl_outbox(url: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "care_shared.ops.carectl", "outbox", "--database", f"intake={url}"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def wait_healthz(svc: ServiceProcess, timeout: float = 30.0) -> float:
    """Seconds from now until /healthz answers 200."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if svc.process.poll() is not None:
            raise AssertionError(f"{svc.name} exited:\n{svc.log_tail()}")
        try:
            if httpx.get(f"{svc.url}/healthz", timeout=1.0).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{svc.name}: no /healthz in {timeout}s:\n{svc.log_tail()}")


def sigterm_seconds(svc: ServiceProcess) -> float:
    started = time.monotonic()
    code = svc.stop(timeout=GRACE_SECONDS)
    elapsed = time.monotonic() - started
    # uvicorn re-raises the signal once it has shut down cleanly: -15 is that, not a kill.
    assert code in (0, -15), f"{svc.name} exited {code} after SIGTERM:\n{svc.log_tail()}"
    assert "Application shutdown complete" in svc.log_path.read_text(errors="replace"), svc.log_tail()
    return elapsed


async def test_nats_down_at_start_up(tmp_path: Path) -> None:
    absent = NatsServer(tmp_path / "nats").prepare()  # a port, a store and credentials; no server yet
    env = lambda name, service: {  # noqa: E731
        "DATABASE_URL": sqlite_url_for(tmp_path / f"{name}.db"),
        **absent.env(service),
    }
    lonely = ServiceProcess("pathway", env("lonely-pathway", "pathway"), tmp_path / "lonely")
    intake = ServiceProcess("intake", env("intake", "intake"), tmp_path / "intake")
    referral = ServiceProcess("referral", env("referral", "referral"), tmp_path / "referral")
    services = [lonely, intake, referral]
    try:
        key = add_clinic(intake, "Offline clinic")  # the database needs no NATS
        for svc in services:
            svc.start()
        healthz_after = {svc.name: wait_healthz(svc) for svc in services}
        async with httpx.AsyncClient(timeout=5) as http:
            for svc in services:
                r = await http.get(f"{svc.url}/readyz")
                assert r.status_code == 503 and r.headers["content-type"].startswith(
                    "application/problem+json"
                )
                assert r.json()["checks"]["nats"] == "disconnected", r.json()

            async def logged(svc: ServiceProcess) -> bool:
                return "NATS not reachable" in svc.log_path.read_text(errors="replace")

            for svc in services:
                await eventually(lambda svc=svc: logged(svc), what=f"{svc.name} to log that NATS is away")

            # A clinic's write while NATS is away: stored, waiting in the outbox.
            async def registered() -> dict | None:
                r = await http.post(
                    f"{intake.url}/v1/patients",
                    json={"external_id": "offline-1", "birth_year": 1990, "sex": "female", "timezone": "UTC"},
                    headers={"Authorization": f"Bearer {key}"},
                )
                return r.json() if r.status_code == 201 else None

            patient = await eventually(registered, what="intake to store a write with NATS away")

            # SIGTERM while still waiting for NATS: honoured.
            lonely_stop = sigterm_seconds(lonely)

            absent.start()
            for svc in (intake, referral):

                async def ready(svc: ServiceProcess = svc) -> bool:
                    return (await http.get(f"{svc.url}/readyz")).status_code == 200

                await eventually(
                    ready, timeout=60, what=f"{svc.name} ready once NATS is up, without a restart"
                )

            nc = await absent.connect()
            try:
                js = nc.jetstream()

                async def published() -> bool:
                    try:
                        msg = await js.get_last_msg("INTAKE", f"intake.patient-registered.{patient['id']}")
                    except Exception:
                        return False
                    return json.loads(msg.data)["id"] == patient["event_id"]

                await eventually(
                    published, timeout=30, what="the write stored while NATS was away to be published"
                )
                assert "REFERRAL_TASKS" in {
                    s.config.name for s in await js.streams_info()
                }  # referral's own stream, declared late
            finally:
                await nc.close()
        stops = {svc.name: sigterm_seconds(svc) for svc in (intake, referral)}
    finally:
        for svc in services:
            svc.stop()
        absent.stop()
    print(
        f"\nNATS down at start-up: /healthz after {healthz_after}; SIGTERM took {lonely_stop:.1f}s waiting for NATS, {stops} once running"
    )
    assert lonely_stop < GRACE_SECONDS and all(s < GRACE_SECONDS for s in stops.values())


async def test_database_down_at_start_up_still_serves_healthz_and_honours_sigterm(
    own_nats: NatsServer, tmp_path: Path
) -> None:
    from care_shared.testing.nats_server import free_port

    # Nothing listens there: migrations wait (and say so), HTTP does not.
    nowhere = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/care"
    svc = ServiceProcess("pathway", {"DATABASE_URL": nowhere, **own_nats.env("pathway")}, tmp_path).start()
    try:
        wait_healthz(svc)
        async with httpx.AsyncClient(timeout=5) as http:
            r = await http.get(f"{svc.url}/readyz")
            assert r.status_code == 503 and r.json()["checks"]["database"] != "ok", r.text
            assert r.json()["checks"]["start-up"] == "waiting at migrations"
            r = await http.get(
                f"{svc.url}/v1/patients/x/assessment", headers={"Authorization": "Bearer trd_x"}
            )
            assert r.status_code == 503 and r.headers["retry-after"] == "1"  # starting: retry
        assert sigterm_seconds(svc) < GRACE_SECONDS
    finally:
        svc.stop()


async def test_a_poison_outbox_row_is_set_aside_and_never_blocks_the_rows_behind_it(
    own_nats: NatsServer, tmp_path: Path
) -> None:
    url = sqlite_url_for(tmp_path / "intake.db")
    intake = ServiceProcess("intake", {"DATABASE_URL": url, **own_nats.env("intake")}, tmp_path)
    key = add_clinic(intake, "Poison clinic")
    intake.start().wait_ready()
    try:
        # An event whose subject can never be a NATS token: it can never become a message.
        db = Database(url)
        try:
            async with db.transaction() as session:
                [poison] = await EventStore().append(
                    session,
                    "poison-1",
                    0,
                    [
                        NewEvent(
                            type="care.intake.clinic-registered.v1",
                            subject="not one token",
                            data={"clinic_id": "x", "name": "x", "key_sha256": "0" * 64},
                        )
                    ],
                )
        finally:
            await db.dispose()
        auth = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=intake.url, timeout=10) as http:
            created = []
            for i in range(5):
                r = await http.post(
                    "/v1/patients",
                    json={"external_id": f"behind-{i}", "birth_year": 1980, "sex": "male", "timezone": "UTC"},
                    headers=auth,
                )
                assert r.status_code == 201, r.text
                created.append(r.json())

            nc = await own_nats.connect()
            try:
                js = nc.jetstream()

                async def all_published() -> bool:
                    for p in created:
                        try:
                            await js.get_last_msg("INTAKE", f"intake.patient-registered.{p['id']}")
                        except Exception:
                            return False
                    return True

                await eventually(
                    all_published, timeout=30, what="the rows behind the poison row to be published"
                )
            finally:
                await nc.close()

            async def counted() -> str | None:
                text = (await http.get("/metrics")).text
                return text if re.search(r"^care_outbox_set_aside 1\.0$", text, re.M) else None

            metrics = await eventually(counted, what="the set-aside metric")
            assert re.search(r"^care_outbox_backlog 0\.0$", metrics, re.M)
            assert (await http.get("/readyz")).status_code == 200

        out = carectl_outbox(url, tmp_path)
        assert poison.event_id in out.stdout and "ValueError" in out.stdout, out.stdout + out.stderr
        assert "intake" in out.stdout
    finally:
        intake.stop()
