"""A steady flow of clinic traffic through intake's REST API, as a careful client sends it:
an Idempotency-Key on every POST, and the same request with the same key again after a
connection error, a timeout, a 5xx or a 409 (until a deadline). Some successful POSTs are
sent a second time on purpose: the answer must be the first one, with the same event id.

Every answer the client accepted is remembered with its event id: the invariants compare
those ids with intake's store and JetStream."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta

import httpx

REQUEST_TIMEOUT = 5.0
RETRY_DEADLINE = 120.0
RETRYABLE = {409, 429, 500, 502, 503, 504}


class TrafficError(AssertionError):
    """The service answered something a correct client cannot retry its way out of."""


@dataclass
class Accepted:
    key: str
    path: str
    status: int
    event_id: str | None
    patient_id: str


@dataclass
class TrafficStats:
    posts: int = 0  # POSTs accepted (one per Idempotency-Key)
    attempts: int = 0  # HTTP attempts, retries included
    retries: int = 0
    retry_reasons: dict[str, int] = field(default_factory=dict)
    resent_on_purpose: int = 0
    resend_mismatches: list[str] = field(default_factory=list)
    contacts_put: int = 0
    contact_attempts: int = 0
    errors: list[str] = field(default_factory=list)

    def retried(self, reason: str) -> None:
        self.retries += 1
        self.retry_reasons[reason] = self.retry_reasons.get(reason, 0) + 1


class Clinic:
    """One partner clinic's client."""

    def __init__(
        self,
        intake_url: str,
        notify_url: str,
        clinic_id: str,
        key: str,
        stats: TrafficStats,
        rng: random.Random,
    ) -> None:
        self.intake_url, self.notify_url = intake_url, notify_url
        self.clinic_id = clinic_id
        self.key = key
        self.stats = stats
        self.rng = rng
        self.accepted: dict[str, Accepted] = {}  # by Idempotency-Key
        self.patients: list[str] = []
        self.contacts: dict[str, str] = {}  # patient id -> channel
        self.addresses: dict[str, str] = {}  # patient id -> the e-mail address or phone given
        # Patients whose first review is at week 2 for certain: not aged 18-25, no suicidality.
        self.week_2_first: set[str] = set()
        self.http = httpx.AsyncClient(timeout=REQUEST_TIMEOUT, headers={"Authorization": f"Bearer {key}"})

    async def close(self) -> None:
        await self.http.aclose()

    async def post(self, path: str, body: dict, patient_id: str = "") -> dict:
        key = str(uuid.uuid4())
        answer = await self._send(path, body, key)
        event_id = answer.get("event_id")
        self.accepted[key] = Accepted(
            key, path, answer["_status"], event_id, patient_id or answer.get("id", "")
        )
        self.stats.posts += 1
        if self.rng.random() < 0.15:  # the client's retry after a lost answer, on purpose
            again = await self._send(path, body, key)
            self.stats.resent_on_purpose += 1
            if again.get("event_id") != event_id or again["_status"] != answer["_status"]:
                self.stats.resend_mismatches.append(
                    f"{path} key={key}: first {answer['_status']} event {event_id}, again {again['_status']} event {again.get('event_id')}"
                )
        return answer

    async def _send(self, path: str, body: dict, key: str) -> dict:
        deadline = time.monotonic() + RETRY_DEADLINE
        delay = 0.1
        while True:
            self.stats.attempts += 1
            try:
                r = await self.http.post(
                    f"{self.intake_url}{path}", json=body, headers={"Idempotency-Key": key}
                )
            except httpx.TimeoutException:
                reason = "timeout"
            except httpx.TransportError as exc:
                reason = type(exc).__name__
            else:
                if r.status_code in (200, 201):
                    return {**r.json(), "_status": r.status_code}
                if r.status_code not in RETRYABLE:
                    raise TrafficError(f"POST {path} -> {r.status_code}: {r.text[:500]}")
                reason = f"HTTP {r.status_code}"
            if time.monotonic() > deadline:
                raise TrafficError(f"POST {path} still failing after {RETRY_DEADLINE}s ({reason})")
            self.stats.retried(reason)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def put_contact(self, patient_id: str, channel: str, n: int) -> None:
        """notify learns of the patient from intake's event: 404 until then."""
        body = (
            {"email": f"fault-{n}@example.org", "channel": "email", "reminders": True}
            if channel == "email"
            else {"phone": f"+4477009{n:05d}", "channel": "sms", "reminders": True}
        )
        deadline = time.monotonic() + RETRY_DEADLINE
        while True:
            self.stats.contact_attempts += 1
            try:
                r = await self.http.put(f"{self.notify_url}/v1/patients/{patient_id}/contact", json=body)
                if r.status_code == 200:
                    self.contacts[patient_id] = channel
                    self.addresses[patient_id] = body.get("email") or body["phone"]
                    self.stats.contacts_put += 1
                    return
                if r.status_code not in (404, *RETRYABLE):
                    raise TrafficError(f"PUT contact -> {r.status_code}: {r.text[:300]}")
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TrafficError(f"notify never accepted the contact of {patient_id}")
            await asyncio.sleep(0.3)


def today_utc() -> date:
    from datetime import UTC, datetime

    return datetime.now(UTC).date()


async def patient_flow(clinic: Clinic, n: int, contact_tasks: list[asyncio.Task]) -> None:
    """One patient's care: registration, an episode, and either two failed adequate trials
    (TRD: pathway advises a referral) and a third trial running, or one trial running; with
    assessments between. The running trial started yesterday, so its review reminders fall
    due when notify's clock is moved on."""
    rng = clinic.rng
    yesterday = today_utc() - timedelta(days=1)
    birth_year = rng.choice([1950, 1962, 1975, 1988, 2003, 2005])
    patient = await clinic.post(
        "/v1/patients",
        {
            "external_id": f"fault-{n}-{uuid.uuid4().hex[:8]}",
            "birth_year": birth_year,
            "sex": rng.choice(["female", "male"]),
            "timezone": rng.choice(["UTC", "Europe/London"]),
        },
    )
    pid = patient["id"]
    clinic.patients.append(pid)
    risk = "flagged" if rng.random() < 0.1 else "none"
    if not 18 <= today_utc().year - birth_year <= 25 and risk == "none":  # CLINICAL.md 8
        clinic.week_2_first.add(pid)
    if n % 3 == 0:  # one in three patients gives contact details: e-mail and SMS alternately
        channel = "email" if n % 2 == 0 else "sms"
        contact_tasks.append(asyncio.create_task(clinic.put_contact(pid, channel, n)))
    base = f"/v1/patients/{pid}"
    await clinic.post(
        f"{base}/episodes",
        {"onset_date": "2025-10-01", "severity": rng.choice(["moderate", "severe"]), "diagnosis": "mdd"},
        pid,
    )
    if rng.random() < 0.6:
        history = [
            ("sertraline", 100, "2026-01-05", "2026-02-20"),
            ("venlafaxine", 150, "2026-02-25", "2026-04-30"),
        ]
        for agent, dose, start, end in history:
            trial = await clinic.post(
                f"{base}/trials",
                {"kind": "antidepressant", "agent": agent, "dose_mg_per_day": dose, "started_on": start},
                pid,
            )
            await clinic.post(
                f"{base}/assessments",
                {"instrument": "PHQ-9", "score": rng.randint(14, 24), "taken_on": start},
                pid,
            )
            await clinic.post(
                f"{base}/trials/{trial['id']}/completion",
                {"ended_on": end, "adherence_pct": 90, "outcome": "no_response", "max_dose_mg_per_day": dose},
                pid,
            )
    await clinic.post(
        f"{base}/trials",
        {
            "kind": "antidepressant",
            "agent": "mirtazapine",
            "dose_mg_per_day": 30,
            "started_on": yesterday.isoformat(),
        },
        pid,
    )
    await clinic.post(
        f"{base}/assessments",
        {
            "instrument": "PHQ-9",
            "score": rng.randint(10, 22),
            "taken_on": yesterday.isoformat(),
            "suicide_risk": risk,
        },
        pid,
    )


async def clinic_worker(
    clinic: Clinic, stop: asyncio.Event, numbers, contact_tasks: list[asyncio.Task]
) -> None:
    while not stop.is_set():
        try:
            await patient_flow(clinic, next(numbers), contact_tasks)
        except TrafficError as exc:
            clinic.stats.errors.append(str(exc))
            if len(clinic.stats.errors) > 20:
                return
