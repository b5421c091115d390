"""intake's POST throughput and latency, beside a bare FastAPI endpoint served the same way."""

from __future__ import annotations

import subprocess
import sys
import uuid

from harness import BENCH, add_clinic, measure_http, scope

from care_shared.db import sqlite_url_for
from care_shared.testing.nats_server import free_port
from care_shared.testing.processes import ServiceProcess

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
            return (
                kind,
                f"{self.base}/v1/patients",
                {"external_id": f"b-{uuid.uuid4()}", "birth_year": 1980, "sex": "female", "timezone": "UTC"},
            )
        if kind == "episode":
            return (
                kind,
                f"{p}/episodes",
                {"onset_date": "2025-06-01", "severity": "moderate", "diagnosis": "mdd"},
            )
        if kind == "trial":
            return (
                kind,
                f"{p}/trials",
                {
                    "kind": "antidepressant",
                    "agent": "sertraline",
                    "dose_mg_per_day": 100,
                    "started_on": "2025-07-01",
                },
            )
        if kind == "completion":
            return (
                kind,
                f"{p}/trials/{self.trial}/completion",
                {
                    "ended_on": "2025-09-01",
                    "max_dose_mg_per_day": 100,
                    "adherence_pct": 90,
                    "outcome": "no_response",
                },
            )
        return (
            kind,
            f"{p}/assessments",
            {"instrument": "PHQ-9", "score": 14 + self.i, "item9": 0, "taken_on": "2025-09-02"},
        )

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
        return (
            "bare",
            f"{self.base}/v1/patients/{uuid.uuid4()}/assessments",
            {"instrument": "PHQ-9", "score": 14, "item9": 0, "taken_on": "2025-09-02"},
        )

    def ok(self, kind: str, body: dict) -> None:
        pass

    def reset(self) -> None:
        pass


async def bare_fastapi(seconds: float) -> dict:
    async with scope("bare") as s:
        port = free_port()
        proc = ServiceProcess("bare", {}, s.dir)
        log_file = open(s.dir / "bare.log", "ab")  # noqa: ASYNC230
        proc.process = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, str(BENCH / "bare_app.py"), str(port)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
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
        url = sqlite_url_for(s.dir / "intake.db") if kind == "sqlite" else await s.new_pg()
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
