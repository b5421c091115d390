"""Every endpoint of every service (read from its OpenAPI document, so a new route cannot be
missed), called with no key, a wrong key, and another clinic's key, on a real patient with a
real episode, trial, referral and task: 401, 403 or 404, never the patient's data; and the
owning clinic does get its data, so the refusals are about the key."""

from __future__ import annotations

import re

import httpx
import pytest

from care_shared.testing.polling import eventually
from tests.e2e.conftest import SERVICES, Network

pytestmark = pytest.mark.e2e
OPEN = {
    "/healthz",
    "/readyz",
    "/metrics",
    "/asyncapi.json",
    "/openapi.json",
    "/docs",
    "/redoc",
    "/docs/oauth2-redirect",
}
MARKER = "mrn-AUTH-MATRIX-4471"

# Bodies valid for the endpoint, so the answer to another clinic is about the patient, not
# about a malformed request.
VALID_BODIES = {
    "/v1/patients/{patient_id}/episodes": {"onset_date": "2026-01-05"},
    "/v1/patients/{patient_id}/episodes/{episode_id}": {"diagnosis": "bipolar"},
    "/v1/patients/{patient_id}/trials": {
        "kind": "antidepressant",
        "agent": "sertraline",
        "dose_mg_per_day": 100,
        "started_on": "2026-02-01",
    },
    "/v1/patients/{patient_id}/trials/{trial_id}/completion": {"ended_on": "2026-03-01"},
    "/v1/patients/{patient_id}/assessments": {"instrument": "PHQ-9", "score": 3, "taken_on": "2026-03-01"},
    "/v1/patients/{patient_id}/contact": {
        "email": "someone@example.org",
        "channel": "email",
        "reminders": True,
    },
    # trd-rules 2026.12 records (DESIGN.md 6)
    "/v1/patients/{patient_id}/comorbidities": {
        "condition": "chronic_pain",
        "present": True,
        "recorded_on": "2026-03-01",
    },
    "/v1/patients/{patient_id}/workup": {
        "check": "thyroid_function",
        "result": "normal",
        "done_on": "2026-03-01",
    },
    "/v1/patients/{patient_id}/preferences": {
        "strategy": "ect",
        "declined": True,
        "recorded_on": "2026-03-01",
    },
    "/v1/patients/{patient_id}/journal": {
        "entry_on": "2026-03-01",
        "mood": 4,
        "side_effects": ["nausea"],
        "triggers": ["poor_sleep"],
    },
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
            lambda: _try(
                http,
                f"{intake}/v1/patients",
                key_a,
                {"external_id": MARKER, "birth_year": 1980, "sex": "female", "timezone": "UTC"},
            ),
            what="intake to accept clinic A",
        )
        pid = created["id"]
        episode = (
            await http.post(
                f"{intake}/v1/patients/{pid}/episodes",
                json={"onset_date": "2026-01-05"},
                headers=_auth(key_a),
            )
        ).json()
        trial = (
            await http.post(
                f"{intake}/v1/patients/{pid}/trials",
                json=VALID_BODIES["/v1/patients/{patient_id}/trials"],
                headers=_auth(key_a),
            )
        ).json()
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

        # A suicidality answer makes the assessment urgent, and urgent always advises referral
        # (CLINICAL.md 5): so referral holds a real referral and task of clinic A's patient.
        r = await http.post(
            f"{intake}/v1/patients/{pid}/assessments",
            json={"instrument": "PHQ-9", "score": 14, "item9": 2, "taken_on": "2026-03-01"},
            headers=_auth(key_a),
        )
        assert r.status_code == 201, r.text

        async def referred() -> str | None:
            got = await http.get(
                f"{network.url('referral')}/v1/referrals", params={"patient_id": pid}, headers=_auth(key_a)
            )
            return got.json()[0]["id"] if got.status_code == 200 and got.json() else None

        ids["referral_id"] = ids["task_id"] = await eventually(
            referred, timeout=30, what="referral to open the patient's referral"
        )
        contact = await http.put(
            f"{network.url('notify')}/v1/patients/{pid}/contact",
            json=VALID_BODIES["/v1/patients/{patient_id}/contact"],
            headers=_auth(key_a),
        )
        assert contact.status_code in (200, 201), contact.text
        # A directory clinic is no patient's data: changing one is a coordinator's command.
        directory = (await http.get(f"{network.url('referral')}/v1/clinics", headers=_auth(key_a))).json()
        ids["clinic_id"] = directory[0]["id"] if directory else "00000000-0000-0000-0000-000000000000"

        checked = 0
        for service in SERVICES:
            base = network.url(service)
            spec = (await http.get(f"{base}/openapi.json")).json()
            for method, template in operations(spec):
                names = set(re.findall(r"\{(\w+)\}", template))
                assert names <= ids.keys(), f"{service} {template}: no real id for {names - ids.keys()}"
                url = base + re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], template)
                body = VALID_BODIES.get(template, {}) if method in {"POST", "PUT", "PATCH"} else None
                # A list filtered by patient is asked about clinic A's patient.
                params = {"patient_id": pid} if template == "/v1/referrals" else None
                if names:
                    # Another clinic: the patient, the referral and the task do not exist for
                    # it (404), or the command is a coordinator's (403). Never 2xx.
                    other = {404} if "patient_id" in names or method == "GET" else {403, 404}
                else:
                    other = None  # a collection: allowed, but it must not show clinic A's patient
                if method == "GET" and names:
                    # The owner does see it: the 404s above are about the key, not the URL.
                    own = await http.get(url, headers=_auth(key_a))
                    assert own.status_code == 200, (
                        f"{service} GET {template} for its own clinic: {own.status_code} {own.text[:200]}"
                    )
                for headers, expected in (
                    ({}, {401}),
                    (_auth("trd_not-a-key"), {401}),
                    (_auth(key_b), other),
                ):
                    r = await http.request(method, url, json=body, headers=headers, params=params)
                    where = (
                        f"{service} {method} {template} with {headers.get('Authorization', 'no key')[:16]}"
                    )
                    if expected is not None:
                        assert r.status_code in expected, f"{where}: {r.status_code} {r.text[:300]}"
                    assert r.status_code < 500, where
                    if headers and headers.get("Authorization") == f"Bearer {key_b}":
                        assert r.status_code not in range(200, 300) or not names, where
                    leaked = r.text.replace(
                        r.json().get("instance", "")
                        if r.headers.get("content-type", "").endswith("json") and isinstance(r.json(), dict)
                        else "",
                        "",
                    )
                    assert MARKER not in leaked and (
                        pid not in leaked
                        or r.status_code < 300
                        and headers.get("Authorization") == f"Bearer {key_a}"
                    ), where
                    checked += 1
        assert checked >= 3 * 12


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _try(http: httpx.AsyncClient, url: str, key: str, body: dict) -> dict | None:
    r = await http.post(url, json=body, headers=_auth(key))
    return r.json() if r.status_code == 201 else None
