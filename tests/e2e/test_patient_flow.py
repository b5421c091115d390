"""One patient through all four services, as real processes on a real nats-server."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from care_shared.db import sqlite_url_for
from care_shared.testing.nats_server import NatsServer
from care_shared.testing.polling import eventually
from care_shared.testing.processes import ServiceProcess

SERVICES = ("intake", "pathway", "referral", "notify")
pytestmark = pytest.mark.e2e


class Network:
    def __init__(self, nats: NatsServer, workdir: Path) -> None:
        self.nats = nats
        self.workdir = workdir
        self.services = {
            name: ServiceProcess(name, {"DATABASE_URL": sqlite_url_for(workdir / f"{name}.db"), "NATS_URL": nats.url}, workdir)
            for name in SERVICES
        }

    def add_clinic(self, name: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "intake", "clinic", "add", "--name", name],
            env={**self.services["intake"].env_for_cli()},
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])["api_key"]

    def url(self, service: str) -> str:
        return self.services[service].url

    def spans(self) -> list[dict]:
        found = []
        for svc in self.services.values():
            if svc.trace_file.exists():
                found += [json.loads(line) for line in svc.trace_file.read_text().splitlines() if line.strip()]
        return found


@pytest.fixture
def network(own_nats: NatsServer, tmp_path: Path) -> Iterator[Network]:
    net = Network(own_nats, tmp_path)
    for svc in net.services.values():
        svc.start()
    try:
        for svc in net.services.values():
            svc.wait_ready()
        yield net
    finally:
        for svc in net.services.values():
            svc.stop()


async def test_a_trial_completion_reaches_pathway_referral_and_notify_in_one_trace(network: Network) -> None:
    key = network.add_clinic("E2E clinic")
    auth = {"Authorization": f"Bearer {key}"}
    marker = "mrn-ZEBRA-7731"  # recognisable: must never appear in spans or logs
    async with httpx.AsyncClient(timeout=10) as http:
        intake = network.url("intake")

        async def post(path: str, body: dict) -> dict:
            r = await http.post(f"{intake}{path}", json=body, headers=auth)
            assert r.status_code == 201, r.text
            return r.json()

        # The clinic's key reaches intake at once; the patient record is where the flow starts.
        patient = await eventually(lambda: _try_post(http, f"{intake}/v1/patients", auth, {"external_id": marker, "birth_year": 1979, "sex": "female", "timezone": "America/New_York"}), what="intake to accept the new clinic")
        pid = patient["id"]
        await post(f"/v1/patients/{pid}/episodes", {"onset_date": "2025-06-01", "severity": "severe", "diagnosis": "mdd"})
        trial = await post(f"/v1/patients/{pid}/trials", {"kind": "antidepressant", "agent": "escitalopram", "dose_mg_per_day": 20, "started_on": "2025-07-01"})
        r = await http.post(
            f"{intake}/v1/patients/{pid}/trials/{trial['id']}/completion",
            json={"ended_on": "2025-09-01", "max_dose_mg_per_day": 20, "adherence_pct": 95, "outcome": "no_response"},
            headers=auth,
        )
        assert r.status_code == 201, r.text
        completed = r.json()["event_id"]

        async def seen(service: str) -> list[dict]:
            r = await http.get(f"{network.url(service)}/v1/patients/{pid}/seen", headers=auth)
            return r.json() if r.status_code == 200 else []

        async def has(service: str, predicate) -> list[dict] | None:  # noqa: ANN001
            rows = await seen(service)
            return rows if any(predicate(e) for e in rows) else None

        await eventually(lambda: has("pathway", lambda e: e["event_id"] == completed), timeout=30, what="pathway to see trial-completed")
        await eventually(lambda: has("notify", lambda e: e["event_id"] == completed), timeout=30, what="notify to see trial-completed")
        referral_rows = await eventually(
            lambda: has("referral", lambda e: e["caused_by"] == completed), timeout=30, what="referral to see pathway's assessment for it"
        )
        changed = next(e for e in referral_rows if e["caused_by"] == completed)
        assert changed["type"] == "care.pathway.assessment-changed.v1"
        await eventually(lambda: has("notify", lambda e: e["event_id"] == changed["event_id"]), timeout=30, what="notify to see pathway's event")

        # Another clinic sees none of it.
        other = network.add_clinic("Other clinic")
        async def other_is_refused() -> bool:
            r = await http.get(f"{network.url('pathway')}/v1/patients/{pid}/seen", headers={"Authorization": f"Bearer {other}"})
            return r.status_code == 404
        await eventually(other_is_refused, timeout=30, what="pathway to know the other clinic and refuse it")

    # One trace: the completion request, the relay's publish, each consumer, pathway's own
    # event and its publish, and the consumers of that.
    def request_trace() -> str | None:
        for s in network.spans():
            if s["service"] == "intake" and s["kind"] == "SERVER" and s["name"].startswith("POST") and "completion" in s["name"]:
                return s["trace_id"]
        return None

    async def whole_trace() -> dict[tuple[str, str], int] | None:
        trace_id = request_trace()
        if not trace_id:
            return None
        kinds: dict[tuple[str, str], int] = {}
        for s in network.spans():
            if s["trace_id"] == trace_id:
                kinds[(s["service"], s["kind"])] = kinds.get((s["service"], s["kind"]), 0) + 1
        wanted = {("intake", "SERVER"), ("intake", "PRODUCER"), ("pathway", "CONSUMER"), ("pathway", "PRODUCER"), ("referral", "CONSUMER"), ("notify", "CONSUMER")}
        return kinds if wanted <= kinds.keys() else None

    kinds = await eventually(whole_trace, timeout=30, what="every hop's span in the request's trace")
    assert kinds[("notify", "CONSUMER")] >= 2  # intake's event and pathway's, both in this trace

    for svc in network.services.values():
        assert marker not in svc.trace_file.read_text(), f"patient reference leaked into {svc.name} spans"
        assert marker not in svc.log_tail(10_000), f"patient reference leaked into {svc.name} logs"


async def _try_post(http: httpx.AsyncClient, url: str, auth: dict, body: dict) -> dict | None:
    r = await http.post(url, json=body, headers=auth)
    return r.json() if r.status_code == 201 else None
