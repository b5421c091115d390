"""The forgeries that once worked, tried again by the strongest insider: an attacker holding a
*valid* credential of another service. Each is refused by NATS or, where the subject is one
that credential may use, dead-lettered by the consumers with the reason, and the real events
are processed (DESIGN.md 5b; issue "Trust boundaries on the bus")."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from care_shared.auth import generate_api_key, hash_key
from care_shared.envelope import new_event_id, to_envelope
from care_shared.testing.nats_server import NatsServer
from care_shared.testing.polling import eventually
from tests.e2e.conftest import Network
from tests.e2e.test_no_patient_data import delivering_network  # noqa: F401 - fixture
from tests.integration.notify.conftest import Mailbox, gateway, mailbox  # noqa: F401 - fixtures

pytestmark = pytest.mark.e2e

EMAIL = "forgery-target@example.org"
# Dead letters the second test expects: each forgery once per durable on the stream it was put in.
SQUATTED = (
    2 + 1 + 0
)  # on PATHWAY (referral-pathway, notify-pathway), REFERRAL (notify-referral), NOTIFY (none)
PINNED = 3 + 1  # on INTAKE (pathway-intake, referral-access, notify-intake), REFERRAL (notify-referral)


class Attacker:
    """A service's real credentials, used for what that service must not do."""

    def __init__(self, server: NatsServer, user: str) -> None:
        self.server, self.user = server, user

    async def publish(
        self,
        subject: str,
        *,
        type_: str,
        source: str,
        subject_id: str,
        data: dict,
        sequence: int | None = None,
        event_id: str | None = None,
    ) -> bool:
        """True if JetStream stored it; False if NATS refused (a refusal is a quiet timeout)."""
        env = to_envelope(
            event_id=event_id or new_event_id(),
            source=source,
            type=type_,
            subject=subject_id,
            time=datetime.now(UTC),
            data=data,
            sequence=sequence,
            traceparent=None,
            clinicid=None,
        )
        nc = await self.server.connect(self.user)
        try:
            await nc.jetstream(timeout=1).publish(
                subject, env.model_dump_json(exclude_none=True).encode(), headers={"Nats-Msg-Id": env.id}
            )
            return True
        except (TimeoutError, nats.errors.TimeoutError):
            return False
        finally:
            await nc.close()


async def dead_letters(server: NatsServer) -> list[tuple[str, str]]:
    nc = await server.connect()
    try:
        js = nc.jetstream()
        if (await js.stream_info("DLQ")).state.messages == 0:
            return []
        sub = await js.pull_subscribe(
            "dlq.>",
            durable=None,
            stream="DLQ",
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE),
        )
        found = []
        try:
            while True:
                found += await sub.fetch(100, timeout=0.5)
        except (TimeoutError, nats.errors.TimeoutError):
            pass
        return [(m.headers["Care-Dlq-Consumer"], m.headers["Care-Dlq-Reason"]) for m in found]
    finally:
        await nc.close()


async def _status(http: httpx.AsyncClient, url: str, key: str) -> int:
    return (await http.get(url, headers={"Authorization": f"Bearer {key}"})).status_code


async def test_forged_clinic_keys_are_refused_and_the_real_clinic_keeps_working(network: Network) -> None:
    clinic_key = network.add_clinic("Clinic A")
    async with httpx.AsyncClient(timeout=10) as http:
        patient = await eventually(
            lambda: _post(
                http,
                f"{network.url('intake')}/v1/patients",
                clinic_key,
                {"external_id": "a-1", "birth_year": 1980, "sex": "female", "timezone": "Europe/London"},
            ),
            what="intake to know the clinic",
        )
        pid = patient["id"]
        clinic_id = patient["clinic_id"]
        urls = {s: f"{network.url(s)}/v1/patients/{pid}/seen" for s in ("pathway", "referral", "notify")}
        for url in urls.values():
            await eventually(
                lambda url=url: _true(_status(http, url, clinic_key), 200),
                what="every service to know the clinic",
            )

        mallory = generate_api_key()
        registered = {"clinic_id": clinic_id, "name": "Clinic A", "key_sha256": hash_key(mallory)}
        rotated = {
            "clinic_id": clinic_id,
            "key_sha256": hash_key(mallory),
            "replaces_sha256": hash_key(clinic_key),
        }
        forgeries = []
        for user in ("pathway", "referral", "notify"):
            attacker = Attacker(network.nats, user)
            for name, data in (("clinic-registered", registered), ("clinic-key-rotated", rotated)):
                type_ = f"care.intake.{name}.v1"
                # On intake's own subjects: NATS refuses the publish.
                assert not await attacker.publish(
                    f"intake.{name}.{clinic_id}",
                    type_=type_,
                    source="/intake",
                    subject_id=clinic_id,
                    data=data,
                )
                # On its own subjects (which it may use), dressed as intake's, or as `/evil`.
                for source in ("/intake", "/evil"):
                    assert await attacker.publish(
                        f"{user}.{name}.{clinic_id}",
                        type_=type_,
                        source=source,
                        subject_id=clinic_id,
                        data=data,
                    )
                    forgeries.append(user)
        # Every consumer of those streams dead-letters each forgery with the reason.
        readers = {"pathway": 2, "referral": 1, "notify": 0}  # durables on PATHWAY, REFERRAL, NOTIFY
        expected = sum(readers[u] for u in forgeries)
        letters = await eventually(
            lambda: _at_least(dead_letters(network.nats), expected),
            timeout=30,
            what="the forgeries dead-lettered",
        )
        assert all(reason.startswith("refused:") for _, reason in letters), letters
        # The attacker's key opens nothing; the clinic's own key still works everywhere.
        for url in urls.values():
            assert await _status(http, url, mallory) == 401
            assert await _status(http, url, clinic_key) == 200
        metrics = (await http.get(f"{network.url('notify')}/metrics")).text
        assert 'care_events_refused_total{check="origin",consumer="notify-pathway"}' in metrics


async def test_squatted_positions_and_pinned_urgency_do_not_stop_a_real_emergency(
    delivering_network: tuple[Network, Path],  # noqa: F811
    mailbox: tuple[Mailbox, int],  # noqa: F811
) -> None:
    network, _clock = delivering_network
    box, _ = mailbox
    key = network.add_clinic("Clinic A")
    intake, pathway, referral, notify = (network.url(s) for s in ("intake", "pathway", "referral", "notify"))
    async with httpx.AsyncClient(timeout=10) as http:
        patient = await eventually(
            lambda: _post(
                http,
                f"{intake}/v1/patients",
                key,
                {"external_id": "a-2", "birth_year": 1980, "sex": "female", "timezone": "Europe/London"},
            ),
            what="intake to know the clinic",
        )
        pid = patient["id"]
        await _post(
            http,
            f"{intake}/v1/patients/{pid}/episodes",
            key,
            {"onset_date": "2026-01-05", "severity": "moderate", "diagnosis": "mdd"},
        )

        async def contact() -> bool:
            r = await http.put(
                f"{notify}/v1/patients/{pid}/contact",
                json={"email": EMAIL, "channel": "email", "reminders": True, "adherence_reminders": "off"},
                headers={"Authorization": f"Bearer {key}"},
            )
            return r.status_code in (200, 201)

        await eventually(contact, timeout=30, what="notify to know the patient")
        assessed = f"{pathway}/v1/patients/{pid}/assessment"
        await eventually(
            lambda: _true(_status(http, assessed, key), 200), timeout=30, what="pathway's first assessment"
        )
        history = (
            await http.get(f"{intake}/v1/patients/{pid}/events", headers={"Authorization": f"Bearer {key}"})
        ).json()
        next_sequence = max(e["sequence"] for e in history) + 1

        calm = {
            "patient_id": pid,
            "assessment_id": str(uuid.uuid4()),
            "instrument": "PHQ-9",
            "score": 2,
            "item9": 0,
            "taken_on": "2026-03-01",
        }
        pinned = {
            "patient_id": pid,
            "as_of_event": "ffffffff-ffff-7fff-bfff-ffffffffffff",
            "assessment": {
                "status": "in_remission",
                "urgency": "routine",
                "referral": {"advised": False, "capabilities": [], "reasons": []},
            },
        }
        # Sequence squatting: intake's subject is refused to every other service; on their own
        # subjects the forgery is dead-lettered, so it never takes the real event's place.
        for user in ("pathway", "referral", "notify"):
            attacker = Attacker(network.nats, user)
            assert not await attacker.publish(
                f"intake.assessment-recorded.{pid}",
                type_="care.intake.assessment-recorded.v2",
                source="/intake",
                subject_id=pid,
                data=calm,
                sequence=next_sequence,
            )
            assert await attacker.publish(
                f"{user}.assessment-recorded.{pid}",
                type_="care.intake.assessment-recorded.v2",
                source="/intake",
                subject_id=pid,
                data=calm,
                sequence=next_sequence,
            )
        # Pinned urgency: an assessment-changed "from the future", from intake's and referral's keys.
        for user in ("intake", "referral"):
            attacker = Attacker(network.nats, user)
            assert not await attacker.publish(
                f"pathway.assessment-changed.{pid}",
                type_="care.pathway.assessment-changed.v1",
                source="/pathway",
                subject_id=pid,
                data=pinned,
                sequence=10**6,
            )
            assert await attacker.publish(
                f"{user}.assessment-changed.{pid}",
                type_="care.pathway.assessment-changed.v1",
                source="/pathway",
                subject_id=pid,
                data=pinned,
                sequence=10**6,
            )

        # The clinic's real PHQ-9: total 27, item 9 = 3, and a clinician's active intent.
        real = {
            "instrument": "PHQ-9",
            "score": 27,
            "item9": 3,
            "taken_on": "2026-03-01",
            "suicide_risk": "active_intent",
        }
        await _post(http, f"{intake}/v1/patients/{pid}/assessments", key, real)

        async def emergency() -> dict | None:
            r = await http.get(assessed, headers={"Authorization": f"Bearer {key}"})
            body = r.json() if r.status_code == 200 else {}
            return body if body.get("urgency") == "emergency" else None

        assessment = await eventually(emergency, timeout=30, what="pathway to read the real emergency")
        assert assessment["referral"]["advised"]

        async def referred() -> list | None:
            r = await http.get(
                f"{referral}/v1/referrals",
                params={"patient_id": pid},
                headers={"Authorization": f"Bearer {key}"},
            )
            return r.json() or None if r.status_code == 200 else None

        assert await eventually(referred, timeout=30, what="referral to open a referral")

        async def crisis_sent() -> list | None:
            r = await http.get(
                f"{notify}/v1/patients/{pid}/reminders", headers={"Authorization": f"Bearer {key}"}
            )
            rows = [
                x
                for x in (r.json() if r.status_code == 200 else [])
                if x["kind"] == "crisis_resources" and x["status"] == "sent"
            ]
            return rows or None

        assert len(await eventually(crisis_sent, timeout=30, what="the crisis message")) == 1
        to_patient = [m for m in box.messages.values() if m["To"] == EMAIL]
        assert len(to_patient) == 1  # once, although forgeries tried to pin urgency

        letters = await eventually(
            lambda: _at_least(dead_letters(network.nats), SQUATTED + PINNED),
            timeout=30,
            what="the forgeries dead-lettered",
        )
        reasons = [r for _, r in letters]
        assert all(r.startswith("refused:") for r in reasons), reasons
        assert any("belongs to intake" in r for r in reasons) and any(
            "belongs to pathway" in r for r in reasons
        )


async def _post(http: httpx.AsyncClient, url: str, key: str, body: dict) -> dict | None:
    r = await http.post(url, json=body, headers={"Authorization": f"Bearer {key}"})
    return r.json() if r.status_code == 201 else None


async def _true(value, expected) -> bool:
    return (await value) == expected


async def _at_least(letters, n: int) -> list | None:
    found = await letters
    return found if len(found) >= n else None
