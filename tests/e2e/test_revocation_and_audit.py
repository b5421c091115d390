"""Issue 12, keys and the read audit, on the four services as real processes:

- an operator revokes a clinic's key (by the clinic's id, `python -m intake clinic revoke` and
  `carectl clinic revoke`) and a coordinator's (`carectl coordinator revoke`): every service
  refuses it within a second, and the other keys keep working;
- a clinic reads a patient's record, assessment, referrals and contact; `carectl audit
  --patient` lists exactly those reads under the clinic's id, and another clinic's attempt
  as a 404 under its own id."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime

import httpx
import pytest

from care_shared.testing.polling import eventually
from tests.e2e.conftest import SERVICES, Network

pytestmark = pytest.mark.e2e

PROBE = {
    "intake": "/v1/patients/x",
    "pathway": "/v1/patients/x/seen",
    "referral": "/v1/patients/x/seen",
    "notify": "/v1/patients/x/seen",
}


def add_clinic(network: Network, name: str) -> tuple[str, str]:
    out = subprocess.run(
        [sys.executable, "-m", "intake", "clinic", "add", "--name", name],
        env=network.services["intake"].env_for_cli(),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    made = json.loads(out.stdout.strip().splitlines()[-1])
    return made["clinic_id"], made["api_key"]


def carectl(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "care_shared.ops.carectl", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def run(args: list[str], env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1]) if out.stdout.strip().startswith("{") else {}


async def statuses(http: httpx.AsyncClient, network: Network, key: str) -> dict[str, int]:
    async def one(s: str) -> tuple[str, int]:
        r = await http.get(network.url(s) + PROBE[s], headers={"Authorization": f"Bearer {key}"})
        return s, r.status_code

    return dict(await asyncio.gather(*(one(s) for s in SERVICES)))


async def test_revoked_keys_are_refused_everywhere_within_a_second(network: Network) -> None:
    (a_id, key_a), (b_id, key_b), (_, key_c) = (
        add_clinic(network, n) for n in ("Clinic A", "Clinic B", "Clinic C")
    )
    referral_env = network.services["referral"].env_for_cli()
    coordinator = run(
        ["-m", "referral", "coordinator", "add", "--name", "Departing coordinator"], referral_env
    )
    staying = run(["-m", "referral", "coordinator", "add", "--name", "Staying coordinator"], referral_env)
    async with httpx.AsyncClient(timeout=5) as http:

        async def known(key: str) -> bool:
            return set((await statuses(http, network, key)).values()) == {404}

        for key in (key_a, key_b, key_c):
            await eventually(
                lambda key=key: known(key), timeout=30, what="every service to know the clinic's key"
            )

        async def refused(key: str) -> bool:
            return set((await statuses(http, network, key)).values()) == {401}

        # python -m intake clinic revoke, by the clinic's id: no key needed.
        started = time.monotonic()
        result = run(
            ["-m", "intake", "clinic", "revoke", "--clinic-id", a_id],
            network.services["intake"].env_for_cli(),
        )
        done = time.monotonic()
        assert result["revoked_keys"] == 1
        await eventually(
            lambda: refused(key_a), timeout=5, interval=0.02, what="every service to refuse the revoked key"
        )
        clinic_after_command = time.monotonic() - done
        clinic_total = time.monotonic() - started

        # carectl clinic revoke.
        done = None
        out = carectl(
            [
                "clinic",
                "revoke",
                "--clinic-id",
                b_id,
                "--database-url",
                network.services["intake"].env["DATABASE_URL"],
            ],
            {**network.services["intake"].env_for_cli(), **network.nats.env("intake")},
        )
        assert out.returncode == 0, out.stderr
        done = time.monotonic()
        await eventually(
            lambda: refused(key_b), timeout=5, interval=0.02, what="every service to refuse clinic B's key"
        )
        carectl_after_command = time.monotonic() - done

        # The rest keep working: clinic C everywhere.
        assert set((await statuses(http, network, key_c)).values()) == {404}
        # Revoking again changes nothing and says so.
        assert (
            run(
                ["-m", "intake", "clinic", "revoke", "--clinic-id", a_id],
                network.services["intake"].env_for_cli(),
            )["revoked_keys"]
            == 0
        )

        # A coordinator who left: carectl coordinator revoke, by id.
        tasks = network.url("referral") + "/v1/tasks"
        assert (
            await http.get(tasks, headers={"Authorization": f"Bearer {coordinator['api_key']}"})
        ).status_code == 200
        out = carectl(
            [
                "coordinator",
                "revoke",
                "--coordinator-id",
                coordinator["coordinator_id"],
                "--database-url",
                network.services["referral"].env["DATABASE_URL"],
            ],
            referral_env,
        )
        assert out.returncode == 0, out.stderr
        done = time.monotonic()
        r = await http.get(tasks, headers={"Authorization": f"Bearer {coordinator['api_key']}"})
        coordinator_after_command = time.monotonic() - done
        assert r.status_code == 401 and r.json()["field"] == "Authorization"
        assert (
            await http.get(tasks, headers={"Authorization": f"Bearer {staying['api_key']}"})
        ).status_code == 200
        assert (await http.get(tasks, headers={"Authorization": f"Bearer {key_c}"})).status_code == 200

        # Readiness stays clean: every key event was applied.
        for s in SERVICES:
            assert (await http.get(network.url(s) + "/readyz")).status_code == 200

    print(
        f"\nrevocation: clinic key refused everywhere {clinic_after_command * 1000:.0f} ms after `python -m intake clinic revoke` "
        f"returned ({clinic_total:.2f} s including the command); carectl: {carectl_after_command * 1000:.0f} ms; "
        f"coordinator: {coordinator_after_command * 1000:.0f} ms"
    )
    assert clinic_after_command < 1.0 and carectl_after_command < 1.0 and coordinator_after_command < 1.0


async def test_the_audit_lists_who_read_a_patients_data(network: Network) -> None:
    a_id, key_a = add_clinic(network, "Reading clinic")
    b_id, key_b = add_clinic(network, "Curious clinic")
    auth_a, auth_b = {"Authorization": f"Bearer {key_a}"}, {"Authorization": f"Bearer {key_b}"}
    async with httpx.AsyncClient(timeout=10) as http:
        intake, pathway, referral, notify = (network.url(s) for s in SERVICES)

        async def register() -> dict | None:
            r = await http.post(
                f"{intake}/v1/patients",
                json={"external_id": "audit-1", "birth_year": 1975, "sex": "female", "timezone": "UTC"},
                headers=auth_a,
            )
            return r.json() if r.status_code in (201, 409) else None

        pid = (await eventually(register, what="intake to accept the clinic"))["id"]
        for path, body in (
            (f"/v1/patients/{pid}/episodes", {"onset_date": "2026-01-05", "severity": "severe"}),
            (
                f"/v1/patients/{pid}/assessments",
                {"instrument": "PHQ-9", "score": 14, "item9": 2, "taken_on": "2026-03-01"},
            ),
        ):
            assert (await http.post(intake + path, json=body, headers=auth_a)).status_code == 201

        async def ready_everywhere() -> bool:
            if (await http.get(f"{pathway}/v1/patients/{pid}/assessment", headers=auth_a)).status_code != 200:
                return False
            got = await http.get(f"{referral}/v1/referrals", params={"patient_id": pid}, headers=auth_a)
            if got.status_code != 200 or not got.json():
                return False
            r = await http.put(
                f"{notify}/v1/patients/{pid}/contact",
                json={"email": "reader@example.org", "channel": "email", "reminders": True},
                headers=auth_a,
            )
            return r.status_code == 200

        await eventually(ready_everywhere, timeout=40, what="the patient's assessment, referral and contact")
        since = datetime.now(UTC).isoformat()
        reads = [
            ("intake", f"{intake}/v1/patients/{pid}", None, "/v1/patients/{patient_id}"),
            (
                "pathway",
                f"{pathway}/v1/patients/{pid}/assessment",
                None,
                "/v1/patients/{patient_id}/assessment",
            ),
            ("referral", f"{referral}/v1/referrals", {"patient_id": pid}, "/v1/referrals"),
            ("notify", f"{notify}/v1/patients/{pid}/contact", None, "/v1/patients/{patient_id}/contact"),
        ]
        for _, url, params, _ in reads:
            assert (await http.get(url, params=params, headers=auth_a)).status_code == 200
        assert (await http.get(f"{intake}/v1/patients/{pid}", headers=auth_b)).status_code == 404

    databases = [
        arg for s in SERVICES for arg in ("--database", f"{s}={network.services[s].env['DATABASE_URL']}")
    ]

    def carectl_audit(*args: str) -> list[dict]:
        out = carectl(["audit", *args, *databases, "--json"])
        assert out.returncode == 0, out.stderr
        return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]

    rows = carectl_audit("--patient", pid)
    assert [r["at"] for r in rows] == sorted((r["at"] for r in rows), reverse=True)  # newest first
    recent = [r for r in rows if r["at"] >= since]
    got = sorted(
        (r["service"], r["actor_kind"], r["actor_id"], r["method"], r["route"], r["status"]) for r in recent
    )
    expected = sorted(
        [(s, "clinic", a_id, "GET", route, 200) for s, _, _, route in reads]
        + [("intake", "clinic", b_id, "GET", "/v1/patients/{patient_id}", 404)]
    )
    assert got == expected
    # Before those: the writes, under the clinic's id too.
    assert {("intake", "POST", "/v1/patients")} <= {
        (r["service"], r["method"], r["route"]) for r in rows if r["actor_id"] == a_id
    }
    # Who, never a key; nothing from the body or the query.
    text = json.dumps(rows)
    assert (
        key_a not in text
        and key_b not in text
        and "reader@example.org" not in text
        and "patient_id=" not in text
    )

    by_b = carectl_audit("--clinic", b_id)
    assert [(r["patient_id"], r["status"]) for r in by_b] == [(pid, 404)]

    table = carectl(["audit", "--patient", pid, *databases])
    assert (
        table.returncode == 0
        and "/v1/patients/{patient_id}/assessment" in table.stdout
        and b_id in table.stdout
    )

    # Append-only, at the database: a row can be neither changed nor removed.
    path = network.services["intake"].env["DATABASE_URL"].split("///", 1)[1]
    with sqlite3.connect(path) as conn:
        for statement in ("UPDATE audit_log SET status = 200", "DELETE FROM audit_log"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                conn.execute(statement)
