"""No patient data in spans, span attributes, span events or logs: the whole flow, from a
clinic's POST to a reminder's delivery by e-mail and SMS, run with recognisable fake names,
e-mail addresses and phone numbers, then everything exported and logged is searched."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from care_shared.testing.nats_server import NatsServer
from care_shared.testing.polling import eventually
from tests.e2e.conftest import Network
from tests.integration.notify.conftest import Gateway, Mailbox, gateway, mailbox  # noqa: F401 - fixtures

pytestmark = pytest.mark.e2e

NAME = "Zebediah Quartermaine"
EMAIL = "zebediah.quartermaine@example.org"
PHONE = "+447700900461"
SMS_NAME = "Ottoline Featherstonehaugh"
SMS_PHONE = "+447700900987"
NEEDLES = [
    NAME,
    EMAIL,
    PHONE,
    PHONE.lstrip("+"),
    SMS_NAME,
    SMS_PHONE,
    SMS_PHONE.lstrip("+"),
    "Quartermaine",
    "Featherstonehaugh",
]


@pytest.fixture
def delivering_network(
    own_nats: NatsServer,
    tmp_path: Path,
    mailbox,  # noqa: F811
    gateway: Gateway,  # noqa: F811
) -> Iterator[tuple[Network, Path]]:
    _box, smtp_port = mailbox
    clock = tmp_path / "now.txt"
    clock.write_text("2026-03-01T12:00:00+00:00")
    notify_env = {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port),
        "SMS_GATEWAY_URL": gateway.url,
        "NOTIFY_CLOCK_FILE": str(clock),
        "DELIVERY_POLL_SECONDS": "0.1",
    }
    # Every service at DEBUG: the most a troubleshooting operator would turn on.
    debug = {"LOG_LEVEL": "DEBUG"}
    net = Network(
        own_nats,
        tmp_path,
        {"intake": debug, "pathway": debug, "referral": debug, "notify": {**notify_env, **debug}},
    )
    try:
        yield net.start(), clock
    finally:
        net.stop()


async def test_a_full_flow_with_fake_identities_leaves_none_in_spans_or_logs(
    delivering_network: tuple[Network, Path],
    mailbox: tuple[Mailbox, int],  # noqa: F811
    gateway: Gateway,  # noqa: F811
) -> None:
    network, clock = delivering_network
    box, _ = mailbox
    key = network.add_clinic("Privacy clinic")
    auth = {"Authorization": f"Bearer {key}"}
    intake, notify = network.url("intake"), network.url("notify")
    async with httpx.AsyncClient(timeout=10) as http:

        async def post(path: str, body: dict, **headers: str) -> dict:
            r = await http.post(f"{intake}{path}", json=body, headers={**auth, **headers})
            assert r.status_code == 201, r.text
            return r.json()

        patients = []
        for who, contact in (
            (NAME, {"email": EMAIL, "phone": PHONE, "channel": "email"}),
            (SMS_NAME, {"phone": SMS_PHONE, "channel": "sms"}),
        ):
            # A clinic that (wrongly) puts a name in its own reference, and in an idempotency key.
            patient = await eventually(
                lambda who=who: _try(
                    http,
                    f"{intake}/v1/patients",
                    auth,
                    {"external_id": who, "birth_year": 1984, "sex": "female", "timezone": "Europe/London"},
                ),
                what="intake to accept the clinic",
            )
            pid = patient["id"]
            patients.append(pid)

            async def contact_saved(pid: str = pid, contact: dict = contact) -> bool:
                r = await http.put(
                    f"{notify}/v1/patients/{pid}/contact",
                    json={**contact, "reminders": True, "adherence_reminders": "off"},
                    headers=auth,
                )
                return r.status_code in (200, 201)

            await eventually(contact_saved, timeout=30, what="notify to know the patient")

            await post(
                f"/v1/patients/{pid}/episodes",
                {"onset_date": "2026-01-05", "severity": "severe", "diagnosis": "mdd"},
            )
            await post(
                f"/v1/patients/{pid}/trials",
                {
                    "kind": "antidepressant",
                    "agent": "sertraline",
                    "dose_mg_per_day": 100,
                    "started_on": "2026-02-25",
                },
                **{"Idempotency-Key": f"{who}-trial"},
            )
            await post(
                f"/v1/patients/{pid}/assessments",
                {"instrument": "PHQ-9", "score": 19, "item9": 2, "taken_on": "2026-02-25"},
            )
            # Invalid input echoing the name back must not be logged either.
            await http.post(
                f"{intake}/v1/patients/{pid}/assessments",
                json={"instrument": who, "score": 1, "taken_on": "2026-02-25"},
                headers=auth,
            )

        async def scheduled(pid: str) -> list | None:
            r = await http.get(f"{notify}/v1/patients/{pid}/reminders", headers=auth)
            rows = r.json() if r.status_code == 200 else []
            return rows if len(rows) >= 3 else None

        for pid in patients:
            await eventually(lambda pid=pid: scheduled(pid), timeout=30, what="reminders to be scheduled")

        clock.write_text("2026-03-30T12:00:00+00:00")  # weeks 1 and 4 are due now
        await eventually(
            lambda: _true(len(box.messages) >= 2 and len(gateway.sms) >= 2),
            timeout=30,
            what="e-mails and SMS to go out",
        )

    async with httpx.AsyncClient() as http:
        metrics = (await http.get(f"{network.url('notify')}/metrics")).text
    sent = float(re.search(r'care_reminders_total\{outcome="sent"\} ([0-9.]+)', metrics).group(1))
    assert sent >= 4  # two e-mails and two SMS at least

    # Each delivery continues the trace of a clinic request that led to its reminder.
    spans = [
        json.loads(line)
        for svc in network.services.values()
        for line in svc.trace_file.read_text().splitlines()
        if line
    ]
    request_traces = {
        s["trace_id"] for s in spans if s["kind"] == "SERVER" and s["service"] in {"intake", "notify"}
    }
    deliveries = [s for s in spans if s["service"] == "notify" and s["name"].startswith("deliver ")]
    assert len(deliveries) >= 4
    assert all(d["trace_id"] in request_traces and d["parent_span_id"] for d in deliveries)

    messages = box.texts() + [str(m) for m in gateway.sms.values()]
    # Crisis resources: urgency is urgent; patients in London get the GB row (CLINICAL.md 8).
    assert any("Crisis resources (GB): Samaritans 116 123" in m for m in messages)
    assert not any("sertraline" in m.lower() for m in messages)

    # Everything exported and logged.
    await asyncio.sleep(0)  # spans are written synchronously as they end
    leaks = []
    for svc in network.services.values():
        for path, text in (
            (svc.trace_file, svc.trace_file.read_text()),
            (svc.log_path, svc.log_path.read_text(errors="replace")),
        ):
            for needle in NEEDLES:
                if needle in text:
                    leaks.append(f"{needle!r} in {path.name}")
    assert not leaks, leaks
    assert all(svc.trace_file.stat().st_size > 0 for svc in network.services.values())


async def _try(http: httpx.AsyncClient, url: str, auth: dict, body: dict) -> dict | None:
    r = await http.post(url, json=body, headers=auth)
    return r.json() if r.status_code == 201 else None


async def _true(value: bool) -> bool:
    return value
