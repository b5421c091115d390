"""Every endpoint of every service, called with no key, a wrong key, and another clinic's
key: 401 or 404, never the patient's data."""

from __future__ import annotations

import re

import httpx
import pytest

from care_shared.testing.polling import eventually
from tests.e2e.conftest import SERVICES, Network

pytestmark = pytest.mark.e2e
OPEN = {"/healthz", "/readyz", "/metrics", "/asyncapi.json", "/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect"}
MARKER = "mrn-AUTH-MATRIX-4471"

# Bodies valid for the endpoint, so the answer to another clinic is about the patient, not
# about a malformed request.
VALID_BODIES = {
    "/v1/patients/{patient_id}/episodes": {"onset_date": "2026-01-05"},
    "/v1/patients/{patient_id}/episodes/{episode_id}": {"diagnosis": "bipolar"},
    "/v1/patients/{patient_id}/trials": {"kind": "antidepressant", "agent": "sertraline", "dose_mg_per_day": 100, "started_on": "2026-02-01"},
    "/v1/patients/{patient_id}/trials/{trial_id}/completion": {"ended_on": "2026-03-01"},
    "/v1/patients/{patient_id}/assessments": {"instrument": "PHQ-9", "score": 3, "taken_on": "2026-03-01"},
    "/v1/patients/{patient_id}/contact": {"email": "someone@example.org", "channel": "email", "reminders": True},
}


def operations(spec: dict) -> list[tuple[str, str]]:
    return [
        (method.upper(), path)
        for path, methods in spec["paths"].items()
        if path not in OPEN and path.startswith("/v1/")
        for method in methods
    ]


async def test_no_key_wrong_key_and_another_clinics_key_never_see_data(network: Network) -> None:
    key_a, key_b = network.add_clinic("Clinic A"), network.add_clinic("Clinic B")
    async with httpx.AsyncClient(timeout=10) as http:
        intake = network.url("intake")
        created = await eventually(
            lambda: _try(http, f"{intake}/v1/patients", key_a, {"external_id": MARKER, "birth_year": 1980, "sex": "female", "timezone": "UTC"}),
            what="intake to accept clinic A",
        )
        pid = created["id"]
        episode = (await http.post(f"{intake}/v1/patients/{pid}/episodes", json={"onset_date": "2026-01-05"}, headers=_auth(key_a))).json()
        trial = (await http.post(f"{intake}/v1/patients/{pid}/trials", json=VALID_BODIES["/v1/patients/{patient_id}/trials"], headers=_auth(key_a))).json()
        ids = {"patient_id": pid, "episode_id": episode["id"], "trial_id": trial["id"]}

        async def everywhere() -> bool:  # both clinics and the patient known to every service
            for s in SERVICES:
                path = f"/v1/patients/{pid}" if s == "intake" else f"/v1/patients/{pid}/seen"
                if (await http.get(f"{network.url(s)}{path}", headers=_auth(key_a))).status_code != 200:
                    return False
                if (await http.get(f"{network.url(s)}{path}", headers=_auth(key_b))).status_code != 404:
                    return False
            return True
        await eventually(everywhere, timeout=30, what="every service to know both clinics and the patient")

        checked = 0
        for service in SERVICES:
            base = network.url(service)
            spec = (await http.get(f"{base}/openapi.json")).json()
            for method, template in operations(spec):
                url = base + re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), "00000000-0000-0000-0000-000000000000"), template)
                body = VALID_BODIES.get(template, {}) if method in {"POST", "PUT", "PATCH"} else None
                for headers, expected in (({}, {401}), (_auth("trd_not-a-key"), {401}), (_auth(key_b), {404} if "{patient_id}" in template else None)):
                    r = await http.request(method, url, json=body, headers=headers)
                    where = f"{service} {method} {template} with {headers.get('Authorization', 'no key')[:16]}"
                    if expected is not None:
                        assert r.status_code in expected, f"{where}: {r.status_code} {r.text[:300]}"
                    assert r.status_code < 500, where
                    if headers and headers.get("Authorization") == f"Bearer {key_b}":
                        assert r.status_code not in range(200, 300) or "{patient_id}" not in template, where
                    leaked = r.text.replace(r.json().get("instance", "") if r.headers.get("content-type", "").endswith("json") and isinstance(r.json(), dict) else "", "")
                    assert MARKER not in leaked and (pid not in leaked or r.status_code < 300 and headers.get("Authorization") == f"Bearer {key_a}"), where
                    checked += 1
        assert checked >= 3 * 12


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _try(http: httpx.AsyncClient, url: str, key: str, body: dict) -> dict | None:
    r = await http.post(url, json=body, headers=_auth(key))
    return r.json() if r.status_code == 201 else None
