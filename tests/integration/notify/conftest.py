"""Real servers for notify's tests: an aiosmtpd SMTP server, an SMS gateway over HTTP, a
nats-server of the test's own, and notify in process with a clock the test moves."""

from __future__ import annotations

import email
import email.policy
import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from aiosmtpd.controller import Controller

from care_shared.auth import generate_api_key, hash_key
from care_shared.clock import FixedClock
from care_shared.contracts import EventData
from care_shared.contracts.intake import ClinicRegistered
from care_shared.envelope import nats_subject, new_event_id, to_envelope
from care_shared.service import Runtime
from care_shared.testing.nats_server import NatsServer, free_port
from care_shared.testing.polling import eventually
from notify.bootstrap import create_app, make_runtime
from notify.channels import SmsGatewayChannel, SmtpChannel
from notify.delivery import DeliveryLoop
from notify.settings import NotifySettings

SOURCES = {"intake": "/intake", "pathway": "/pathway", "referral": "/referral"}


class Mailbox:
    """An SMTP server's handler. Like a relay that treats Message-ID as the message's identity,
    it keeps one copy per Message-ID; `submissions` counts every DATA it accepted."""

    def __init__(self) -> None:
        self.submissions: list[str] = []
        self.messages: dict[str, email.message.EmailMessage] = {}
        self.refuse = False
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.refuse:
            return "451 4.3.0 try again later"
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.submissions.append(msg["Message-ID"])
            self.messages.setdefault(msg["Message-ID"], msg)
        return "250 OK"

    def texts(self) -> list[str]:
        # SMTP carries CRLF line ends; the messages are composed with LF.
        return [m.get_content().replace("\r\n", "\n") for m in self.messages.values()]

    def text_of(self, reminder_id: str) -> str:
        """The text of the message sent for a reminder (its Message-ID carries the id)."""
        return self.messages[f"<{reminder_id}@notify.trd-care.example>"].get_content().replace("\r\n", "\n")


@dataclass
class Gateway:
    """A real HTTP SMS gateway: honours Idempotency-Key, answers GET /v1/messages/{key}."""

    port: int = field(default_factory=free_port)
    requests: int = 0
    sms: dict[str, dict] = field(default_factory=dict)
    refuse: bool = False
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Gateway:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                gateway.requests += 1
                if gateway.refuse:
                    return self._answer(503, {"error": "unavailable"})
                key = self.headers.get("Idempotency-Key")
                if not key:
                    return self._answer(400, {"error": "Idempotency-Key required"})
                if key in gateway.sms:
                    return self._answer(200, {"id": key, "duplicate": True})
                gateway.sms[key] = body
                return self._answer(201, {"id": key})

            def do_GET(self) -> None:
                key = self.path.rsplit("/", 1)[-1]
                if key in gateway.sms:
                    return self._answer(200, {"id": key})
                return self._answer(404, {"error": "no such message"})

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield box, controller.port
    controller.stop()


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    g = Gateway().start()
    yield g
    g.stop()


class EventSender:
    """Publishes other services' events onto JetStream as their relays would."""

    def __init__(self, js) -> None:
        self.js = js
        self.sequence = 0

    async def send(
        self,
        source: str,
        event: EventData,
        *,
        clinic_id: str,
        subject: str | None = None,
        sequence: int | None = None,
        event_type: str | None = None,
    ) -> str:
        """`event_type`: send the data under an older version's name (what a producer not yet
        upgraded, or a stored event, carries)."""
        self.sequence += 1
        subject = subject or event.patient_id
        event_id = new_event_id()
        envelope = to_envelope(
            event_id=event_id,
            source=SOURCES[source],
            type=event_type or event.event_type,
            subject=subject,
            time=datetime.now(UTC),
            data=event.to_data(),
            sequence=sequence if sequence is not None else self.sequence,
            traceparent=None,
            clinicid=clinic_id,
        )
        await self.js.publish(
            nats_subject(event_type or event.event_type, subject),
            envelope.model_dump_json(exclude_none=True).encode(),
            headers={"Nats-Msg-Id": event_id},
        )
        return event_id


@dataclass
class Notify:
    client: httpx.AsyncClient
    runtime: Runtime
    clock: FixedClock
    delivery: DeliveryLoop
    events: EventSender
    mailbox: Mailbox
    gateway: Gateway
    clinic_id: str
    key: str
    other_key: str
    nats: NatsServer | None = None

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}

    async def send(self, source: str, event: EventData, **kw) -> str:
        return await self.events.send(source, event, clinic_id=self.clinic_id, **kw)

    async def reminders(self, patient_id: str) -> list[dict]:
        r = await self.client.get(f"/v1/patients/{patient_id}/reminders", headers=self.auth())
        assert r.status_code == 200, r.text
        return r.json()

    async def seen(self, patient_id: str, event_id: str) -> bool:
        r = await self.client.get(f"/v1/patients/{patient_id}/seen", headers=self.auth())
        return r.status_code == 200 and any(e["event_id"] == event_id for e in r.json())

    async def processed(self, patient_id: str, event_id: str) -> None:
        await eventually(
            lambda: self.seen(patient_id, event_id), timeout=15, what="notify to take in the event"
        )

    async def put_contact(self, patient_id: str, **body) -> httpx.Response:
        return await self.client.put(f"/v1/patients/{patient_id}/contact", json=body, headers=self.auth())

    async def at(self, when: datetime) -> int:
        """Move the clock to `when` and run the delivery loop's pass there."""
        self.clock.at = when
        return await self.delivery.deliver_due()


async def register_clinic(events: EventSender, key: str) -> str:
    clinic_id = str(uuid.uuid4())
    await events.send(
        "intake",
        ClinicRegistered(clinic_id=clinic_id, name="Clinic", key_sha256=hash_key(key)),
        clinic_id=clinic_id,
        subject=clinic_id,
    )
    return clinic_id


@pytest.fixture
async def notify(own_nats: NatsServer, database_url: str, mailbox, gateway: Gateway) -> AsyncIterator[Notify]:
    box, smtp_port = mailbox
    clock = FixedClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    settings = NotifySettings(
        database_url=database_url,
        **own_nats.settings("notify"),
        delivery_enabled=False,  # tests drive the loop's passes themselves, at their clock
        delivery_max_attempts=3,
        delivery_backoff_seconds=[60, 300],
    )
    runtime = make_runtime(settings, clock=clock)
    channels = [
        SmtpChannel("127.0.0.1", smtp_port, "care-team@trd-care.example"),
        SmsGatewayChannel(gateway.url),
    ]
    app = create_app(runtime, channels=channels)
    async with app.router.lifespan_context(app):
        nc = await own_nats.connect()
        events = EventSender(nc.jetstream())
        key, other_key = generate_api_key(), generate_api_key()
        clinic_id = await register_clinic(events, key)
        await register_clinic(events, other_key)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://notify") as client:
            harness = Notify(
                client,
                runtime,
                clock,
                app.state.delivery,
                events,
                box,
                gateway,
                clinic_id,
                key,
                other_key,
                own_nats,
            )

            async def both_keys_known() -> bool:
                a = await client.get("/v1/patients/none/reminders", headers=harness.auth())
                b = await client.get("/v1/patients/none/reminders", headers=harness.auth(other_key))
                return a.status_code == 404 and b.status_code == 404

            await eventually(both_keys_known, timeout=15, what="notify to know the clinics")
            yield harness
        await nc.close()
