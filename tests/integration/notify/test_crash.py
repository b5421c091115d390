"""notify as a real process, SIGKILLed between a message leaving and its record, then
restarted: every due reminder reaches the SMTP server and the SMS gateway exactly once.

The process reads "now" from a file the test writes (NOTIFY_CLOCK_FILE), and kills itself
with SIGKILL right after a channel took a message (NOTIFY_DELIVERY_FAULT), the one moment a
crash could double a message. After restart:
- SMS: the attempt on disk without an outcome makes notify ask the gateway first
  (GET /v1/messages/{key}); it has it, so nothing is resent.
- e-mail: SMTP cannot be asked, so the message is resent with the same Message-ID, and the
  server keeps one copy per Message-ID (`Mailbox`); the test shows the resend as well.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from pathlib import Path

import httpx
import pytest

from care_shared.auth import generate_api_key
from care_shared.contracts.intake import PatientRegistered, TrialStarted
from care_shared.testing.nats_server import NatsServer
from care_shared.testing.polling import eventually
from care_shared.testing.processes import ServiceProcess
from tests.integration.notify.conftest import EventSender, Gateway, Mailbox, register_clinic

pytestmark = pytest.mark.e2e
PER_CHANNEL = 3


async def test_sigkill_between_send_and_record_delivers_every_due_reminder_exactly_once(
    own_nats: NatsServer, database_url: str, mailbox: tuple[Mailbox, int], gateway: Gateway, tmp_path: Path
) -> None:
    box, smtp_port = mailbox
    clock = tmp_path / "now.txt"
    clock.write_text("2026-03-01T12:00:00+00:00")
    env = {
        "DATABASE_URL": database_url,
        **own_nats.env("notify"),
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port),
        "SMS_GATEWAY_URL": gateway.url,
        "NOTIFY_CLOCK_FILE": str(clock),
        "DELIVERY_POLL_SECONDS": "0.1",
        "DELIVERY_LEASE_SECONDS": "1",
    }

    def process(fault: str | None = None) -> ServiceProcess:
        extra = {"NOTIFY_DELIVERY_FAULT": fault} if fault else {}
        return ServiceProcess("notify", {**env, **extra}, tmp_path).start()

    svc = process("kill_after_send:email")
    await asyncio.to_thread(svc.wait_ready)
    key = generate_api_key()
    auth = {"Authorization": f"Bearer {key}"}
    nc = await own_nats.connect()
    events = EventSender(nc.jetstream())
    clinic_id = await register_clinic(events, key)
    patients: dict[str, str] = {}
    async with httpx.AsyncClient(timeout=10) as http:
        for i in range(2 * PER_CHANNEL):
            channel = "email" if i < PER_CHANNEL else "sms"
            pid = str(uuid.uuid4())
            patients[pid] = channel
            registered = PatientRegistered(
                patient_id=pid,
                clinic_id=clinic_id,
                external_id=f"m{i}",
                birth_year=1980,
                sex="male",
                timezone="UTC",
            )
            await events.send("intake", registered, clinic_id=clinic_id)
            contact = (
                {"email": f"pat{i}@example.org", "channel": "email", "reminders": True}
                if channel == "email"
                else {"phone": f"+4477009001{i:02d}", "channel": "sms", "reminders": True}
            )

            async def put(pid: str = pid, contact: dict = contact) -> bool:
                return (
                    await http.put(f"{svc.url}/v1/patients/{pid}/contact", json=contact, headers=auth)
                ).status_code == 200

            await eventually(put, timeout=20, what="notify to know the patient")
            # E-mail patients started a day before SMS patients: their reviews fall due first.
            on = date(2026, 3, 2) if channel == "email" else date(2026, 3, 3)
            trial = TrialStarted(
                patient_id=pid,
                trial_id=str(uuid.uuid4()),
                episode_id="e",
                kind="psychotherapy",
                started_on=on,
            )
            await events.send("intake", trial, clinic_id=clinic_id)

        async def first_reviews(url: str) -> dict[str, dict] | None:
            found = {}
            for pid in patients:
                r = await http.get(f"{url}/v1/patients/{pid}/reminders", headers=auth)
                rows = [x for x in r.json() if x["kind"] == "first_review"] if r.status_code == 200 else []
                if not rows:
                    return None
                found[pid] = rows[0]
            return found

        scheduled = await eventually(
            lambda: first_reviews(svc.url), timeout=20, what="every first review scheduled"
        )
        # Week 2 for the e-mail patients: the process dies right after the first e-mail left.
        clock.write_text("2026-03-16T09:00:00+00:00")
        assert await asyncio.to_thread(svc.wait_exit, 30) == -9
        assert len(box.submissions) == 1

        # Restarted, set to die after the first SMS once those are due.
        svc = process("kill_after_send:sms")
        await asyncio.to_thread(svc.wait_ready)

        async def emails_sent() -> bool:
            rows = await first_reviews(svc.url)
            return bool(rows) and all(
                r["status"] == "sent" for p, r in rows.items() if patients[p] == "email"
            )

        await eventually(emails_sent, timeout=20, what="the e-mails to be recorded sent")
        clock.write_text("2026-03-17T09:00:00+00:00")
        assert await asyncio.to_thread(svc.wait_exit, 30) == -9
        assert len(gateway.sms) == 1

        svc = process()
        await asyncio.to_thread(svc.wait_ready)
        try:

            async def all_sent() -> dict[str, dict] | None:
                rows = await first_reviews(svc.url)
                return rows if rows and all(r["status"] == "sent" for r in rows.values()) else None

            final = await eventually(all_sent, timeout=20, what="every first review recorded sent")
        finally:
            svc.stop()
            await nc.close()

    email_ids = {scheduled[p]["id"] for p, c in patients.items() if c == "email"}
    sms_ids = {scheduled[p]["id"] for p, c in patients.items() if c == "sms"}
    # What the servers received: one message per due reminder, each exactly once.
    assert set(box.messages) == {f"<{rid}@notify.trd-care.example>" for rid in email_ids}
    assert len(box.messages) == PER_CHANNEL
    assert set(gateway.sms) == sms_ids
    assert gateway.requests == PER_CHANNEL  # the in-doubt SMS was found at the gateway, not resent
    # SMTP cannot be asked: the in-doubt e-mail was resent once, with the same Message-ID.
    assert len(box.submissions) == PER_CHANNEL + 1
    assert {r["channel"] for r in final.values()} == {"email", "sms"}
    # No contact details in the logs: ids only.
    log = (tmp_path / "notify-serve.log").read_text()
    assert "example.org" not in log and "+44770090" not in log
