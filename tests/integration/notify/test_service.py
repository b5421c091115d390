"""notify in process on a real nats-server, SMTP server and SMS gateway, on SQLite and
PostgreSQL, with a clock the test moves: schedules from events in any order, contact and
consent over REST, quiet hours, opt-out, crisis resources, retries and failure."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from care_shared.contracts.intake import AssessmentRecorded, PatientRegistered, TrialCompleted, TrialStarted
from care_shared.contracts.pathway import AssessmentChanged, AssessmentSummary, ReferralAdvice
from care_shared.contracts.referral import ReferralCancelled, ReferralCompleted, ReferralScheduled
from care_shared.envelope import new_event_id
from care_shared.testing.polling import eventually
from notify.crisis_resources import crisis_table
from notify.delivery import DeliveryPolicy
from notify.messages import crisis_block
from tests.integration.notify.conftest import Notify
from tests.unit.notify.test_schedule import names_no_diagnosis_or_medicine

CRISIS = "Crisis resources ("  # how every message carrying them names the row it used


def crisis_row(name: str) -> str:
    """The crisis resources a message carries for a row of the table (CLINICAL.md 8)."""
    return crisis_block(crisis_table().row_for(country=None if name == "default" else name, timezone=None))


def ids() -> tuple[str, str]:
    return str(uuid.uuid4()), str(uuid.uuid4())


def registered(
    pid: str,
    clinic_id: str,
    *,
    birth_year: int = 1980,
    timezone: str = "Europe/London",
    country: str | None = None,
) -> PatientRegistered:
    return PatientRegistered(
        patient_id=pid,
        clinic_id=clinic_id,
        external_id="x",
        birth_year=birth_year,
        sex="female",
        timezone=timezone,
        country=country,
    )


def started(pid: str, tid: str, on: date = date(2026, 3, 2), kind: str = "antidepressant") -> TrialStarted:
    agents = [] if kind == "psychotherapy" else [{"agent": "sertraline", "dose_mg_per_day": 100}]
    return TrialStarted(
        patient_id=pid, trial_id=tid, episode_id="e1", kind=kind, agents=agents, started_on=on
    )


def urgency(pid: str, level: str) -> AssessmentChanged:
    return AssessmentChanged(
        patient_id=pid,
        as_of_event=new_event_id(),
        assessment=AssessmentSummary(status="trd", urgency=level, referral=ReferralAdvice(advised=True)),
    )


async def patient(n: Notify, **kw) -> str:
    pid = str(uuid.uuid4())
    await n.processed(pid, await n.send("intake", registered(pid, n.clinic_id, **kw)))
    return pid


async def kinds(n: Notify, pid: str, status: str = "scheduled") -> dict[str, str]:
    return {r["kind"]: r["due_at"] for r in await n.reminders(pid) if r["status"] == status}


async def test_contact_is_validated_naming_the_field_and_kept_to_the_patients_clinic(notify: Notify) -> None:
    pid = await patient(notify)
    r = await notify.put_contact(pid, email="nope", channel="email", reminders=True)
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["field"] == "email" and "nope" not in r.text  # never echoed
    r = await notify.put_contact(pid, email="pat@example.org", channel="sms", reminders=True)
    assert (r.status_code, r.json()["field"]) == (422, "channel")
    r = await notify.put_contact(pid, channel="pager", reminders=True)
    assert (r.status_code, r.json()["field"]) == (422, "channel")
    r = await notify.put_contact(
        pid, phone="+44 7700 900123", channel="sms", reminders=True, adherence_reminders="weekly"
    )
    assert r.status_code == 200 and r.json()["phone"] == "+447700900123"
    other = await notify.client.put(
        f"/v1/patients/{pid}/contact",
        json={"channel": "none", "reminders": False},
        headers=notify.auth(notify.other_key),
    )
    assert other.status_code == 404
    assert (
        await notify.client.get(f"/v1/patients/{pid}/reminders", headers=notify.auth(notify.other_key))
    ).status_code == 404
    assert (await notify.client.get(f"/v1/patients/{pid}/reminders")).status_code == 401


async def test_a_trial_schedules_reviews_and_its_completion_cancels_those_pending(notify: Notify) -> None:
    pid, tid = ids()
    pid = await patient(notify, birth_year=2005)  # aged 21 at the start: week 1
    await notify.put_contact(pid, email="pat@example.org", channel="email", reminders=True)
    await notify.processed(pid, await notify.send("intake", started(pid, tid)))
    assert await kinds(notify, pid) == {
        "first_review": "2026-03-09T09:00:00+00:00",
        "response_check": "2026-03-30T08:00:00+00:00",  # 09:00 BST
        "week_8_review": "2026-04-27T08:00:00+00:00",
    }
    # Week 1 passes: the first review goes out; then the trial completes.
    assert await notify.at(datetime(2026, 3, 9, 9, 0, tzinfo=UTC)) == 1
    await notify.processed(
        pid,
        await notify.send("intake", TrialCompleted(patient_id=pid, trial_id=tid, ended_on=date(2026, 3, 20))),
    )
    rows = {r["kind"]: r for r in await notify.reminders(pid)}
    assert rows["first_review"]["status"] == "sent" and rows["first_review"]["channel"] == "email"
    assert {(rows[k]["status"], rows[k]["reason"]) for k in ("response_check", "week_8_review")} == {
        ("cancelled", "trial_completed")
    }
    assert await notify.at(datetime(2026, 5, 1, 12, 0, tzinfo=UTC)) == 0
    assert len(notify.mailbox.messages) == 1


async def test_events_in_any_order_converge(notify: Notify) -> None:
    # The trial arrives before the patient's birth year and time zone: planned in UTC at week
    # 2, then moved once the patient (aged 19, Chicago) is known.
    pid, tid = ids()
    await notify.processed(pid, await notify.send("intake", started(pid, tid)))
    await notify.put_contact(pid, email="pat@example.org", channel="email", reminders=True)
    assert (await kinds(notify, pid))["first_review"] == "2026-03-16T09:00:00+00:00"
    await notify.processed(
        pid,
        await notify.send(
            "intake", registered(pid, notify.clinic_id, birth_year=2007, timezone="America/Chicago")
        ),
    )
    assert (await kinds(notify, pid))["first_review"] == "2026-03-09T14:00:00+00:00"  # week 1, 09:00 CDT
    # A completion that overtakes its start schedules nothing, whenever the start arrives.
    t2 = str(uuid.uuid4())
    await notify.processed(
        pid,
        await notify.send("intake", TrialCompleted(patient_id=pid, trial_id=t2, ended_on=date(2026, 3, 5))),
    )
    await notify.processed(pid, await notify.send("intake", started(pid, t2)))
    assert {r["trial_id"] for r in await notify.reminders(pid)} == {tid}
    # A duplicate delivery changes nothing.
    before = await notify.reminders(pid)
    await notify.processed(pid, await notify.send("intake", started(pid, tid)))
    assert await notify.reminders(pid) == before


async def test_quiet_hours_hold_a_reminder_until_08_local_and_sms_carries_the_gateway_key(
    notify: Notify,
) -> None:
    pid = await patient(notify, timezone="Asia/Tokyo")
    await notify.put_contact(pid, phone="+81312345678", channel="sms", reminders=True)
    rid = str(uuid.uuid4())
    # 48 hours before an appointment at 22:30 JST is 22:30 JST: quiet; it goes at 08:00 JST.
    appointment = datetime(2026, 3, 10, 13, 30, tzinfo=UTC)
    await notify.processed(
        pid,
        await notify.send(
            "referral", ReferralScheduled(referral_id=rid, patient_id=pid, appointment_at=appointment)
        ),
    )
    rows = {r["kind"]: r for r in await notify.reminders(pid)}
    assert rows["appointment_48h"]["deliver_at"] == "2026-03-08T23:00:00+00:00"
    assert rows["appointment_48h"]["channel"] == "sms"
    assert await notify.at(datetime(2026, 3, 8, 13, 30, tzinfo=UTC)) == 0  # 22:30 JST
    assert await notify.at(datetime(2026, 3, 8, 22, 59, tzinfo=UTC)) == 0  # 07:59 JST
    assert await notify.at(datetime(2026, 3, 8, 23, 0, tzinfo=UTC)) == 1  # 08:00 JST
    [(key, sms)] = notify.gateway.sms.items()
    assert key == rows["appointment_48h"]["id"] and sms["to"] == "+81312345678"
    assert "your care team" in sms["text"] and "22:30" in sms["text"] and CRISIS not in sms["text"]


async def test_a_reschedule_replaces_pending_appointment_reminders_and_a_cancellation_cancels_them(
    notify: Notify,
) -> None:
    pid = await patient(notify)
    await notify.put_contact(pid, email="pat@example.org", channel="email", reminders=True)
    rid = str(uuid.uuid4())
    first = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
    moved = datetime(2026, 3, 12, 15, 0, tzinfo=UTC)
    await notify.processed(
        pid,
        await notify.send(
            "referral", ReferralScheduled(referral_id=rid, patient_id=pid, appointment_at=first), sequence=3
        ),
    )
    await notify.processed(
        pid,
        await notify.send(
            "referral", ReferralScheduled(referral_id=rid, patient_id=pid, appointment_at=moved), sequence=5
        ),
    )
    # An older booking arriving late moves nothing back.
    await notify.processed(
        pid,
        await notify.send(
            "referral", ReferralScheduled(referral_id=rid, patient_id=pid, appointment_at=first), sequence=4
        ),
    )
    assert await kinds(notify, pid) == {
        "appointment_48h": "2026-03-10T15:00:00+00:00",
        "appointment_2h": "2026-03-12T13:00:00+00:00",
    }
    assert len(await notify.reminders(pid)) == 4  # the first time's two, cancelled: never two pending
    await notify.processed(
        pid, await notify.send("referral", ReferralCancelled(referral_id=rid, patient_id=pid), sequence=6)
    )
    assert sorted((r["status"], r["reason"]) for r in await notify.reminders(pid)) == [
        ("cancelled", "referral_cancelled"),
        ("cancelled", "referral_cancelled"),
        ("cancelled", "rescheduled"),
        ("cancelled", "rescheduled"),
    ]
    assert await notify.at(moved) == 0


async def test_a_reschedule_after_the_48h_reminder_went_sends_a_48h_reminder_for_the_new_time(
    notify: Notify,
) -> None:
    pid = await patient(notify)
    await notify.put_contact(pid, email="pat@example.org", channel="email", reminders=True)
    rid = str(uuid.uuid4())
    first = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
    moved = datetime(2026, 3, 13, 15, 0, tzinfo=UTC)

    def booked(at: datetime) -> ReferralScheduled:
        return ReferralScheduled(referral_id=rid, patient_id=pid, appointment_at=at)

    await notify.processed(pid, await notify.send("referral", booked(first), sequence=3))
    assert await notify.at(first - timedelta(hours=48)) == 1  # the 48 h reminder for the first time goes
    await notify.processed(pid, await notify.send("referral", booked(moved), sequence=5))
    assert await kinds(notify, pid) == {
        "appointment_48h": "2026-03-11T15:00:00+00:00",
        "appointment_2h": "2026-03-13T13:00:00+00:00",
    }
    # A redelivered or older booking changes nothing.
    before = await notify.reminders(pid)
    await notify.processed(pid, await notify.send("referral", booked(moved), sequence=5))
    await notify.processed(pid, await notify.send("referral", booked(first), sequence=4))
    assert await notify.reminders(pid) == before
    assert sum(r["status"] == "scheduled" for r in before) == 2
    assert await notify.at(moved - timedelta(hours=48)) == 1
    texts = notify.mailbox.texts()
    assert (
        len(texts) == 2 and "Tuesday 10 March at 14:00" in texts[0] and "Friday 13 March at 15:00" in texts[1]
    )


async def test_a_completed_referral_cancels_its_appointment_reminders(notify: Notify) -> None:
    pid = await patient(notify)
    await notify.put_contact(pid, email="pat@example.org", channel="email", reminders=True)
    rid = str(uuid.uuid4())
    appointment = datetime(2026, 3, 12, 15, 0, tzinfo=UTC)
    await notify.processed(
        pid,
        await notify.send(
            "referral",
            ReferralScheduled(referral_id=rid, patient_id=pid, appointment_at=appointment),
            sequence=3,
        ),
    )
    # Referral allows completing before the appointment.
    await notify.processed(
        pid, await notify.send("referral", ReferralCompleted(referral_id=rid, patient_id=pid), sequence=4)
    )
    assert {(r["kind"], r["status"], r["reason"]) for r in await notify.reminders(pid)} == {
        ("appointment_48h", "cancelled", "referral_completed"),
        ("appointment_2h", "cancelled", "referral_completed"),
    }
    assert await notify.at(appointment) == 0 and notify.mailbox.submissions == []


async def test_opt_out_cancels_pending_reminders_and_nothing_is_sent(notify: Notify) -> None:
    pid, tid = ids()
    pid = await patient(notify)
    await notify.processed(pid, await notify.send("intake", started(pid, tid)))
    assert await notify.reminders(pid) == []  # reminders are opt-in
    await notify.put_contact(
        pid, email="pat@example.org", channel="email", reminders=True, adherence_reminders="daily"
    )
    assert set(await kinds(notify, pid)) == {"first_review", "response_check", "week_8_review", "adherence"}
    r = await notify.put_contact(pid, email="pat@example.org", channel="email", reminders=False)
    assert r.status_code == 200
    assert {(x["status"], x["reason"]) for x in await notify.reminders(pid)} == {("cancelled", "opted_out")}
    assert await notify.at(datetime(2026, 5, 1, 12, 0, tzinfo=UTC)) == 0
    assert notify.mailbox.submissions == []


async def test_crisis_resources_are_in_every_message_while_urgent_whatever_the_preferences(
    notify: Notify,
) -> None:
    pid, tid = ids()
    pid = await patient(notify)
    await notify.put_contact(
        pid, email="pat@example.org", channel="email", reminders=True, adherence_reminders="daily"
    )
    await notify.processed(pid, await notify.send("intake", started(pid, tid)))
    await notify.processed(pid, await notify.send("pathway", urgency(pid, "urgent")))
    # Urgent: the first review comes forward to week 1 too.
    assert (await kinds(notify, pid))["first_review"] == "2026-03-09T09:00:00+00:00"
    # The rise itself sends the crisis-resources message at once.
    rise = 1
    assert await notify.at(datetime(2026, 3, 1, 12, 0, tzinfo=UTC)) == rise
    assert await notify.at(datetime(2026, 3, 3, 9, 0, tzinfo=UTC)) == 1  # the first adherence reminder
    assert len(notify.mailbox.texts()) == rise + 1
    text = notify.mailbox.texts()[-1]
    # A patient in London (no country given): the GB row, not the US lines sent to everyone before.
    assert crisis_row("GB") in text and "Samaritans 116 123" in text
    assert "988" not in text and "741741" not in text
    assert "sertraline" not in text.lower()
    # A newer assessment lowers the urgency; an older one arriving late does not raise it again.
    # (Older in pathway's stream: its position comes before the routine one's, whatever the ids.)
    notify.events.sequence += 1
    older, older_position = urgency(pid, "emergency"), notify.events.sequence
    await notify.processed(pid, await notify.send("pathway", urgency(pid, "routine")))
    await notify.processed(pid, await notify.send("pathway", older, sequence=older_position))
    assert await notify.at(datetime(2026, 3, 4, 9, 0, tzinfo=UTC)) == 1
    texts = notify.mailbox.texts()
    assert len(texts) == rise + 2 and CRISIS not in texts[-1]
    sent = [r for r in await notify.reminders(pid) if r["status"] == "sent" and r["kind"] == "adherence"]
    assert sorted(r["crisis_resources"] for r in sent) == [False, True]
    # Suicidality recorded at intake also brings the first review forward.
    p2, t2 = ids()
    p2 = await patient(notify)
    await notify.put_contact(p2, email="p2@example.org", channel="email", reminders=True)
    await notify.processed(p2, await notify.send("intake", started(p2, t2)))
    await notify.processed(
        p2,
        await notify.send(
            "intake",
            AssessmentRecorded(
                patient_id=p2,
                assessment_id="a1",
                instrument="PHQ-9",
                score=14,
                item9=1,
                taken_on=date(2026, 3, 1),
            ),
        ),
    )
    assert (await kinds(notify, p2))["first_review"] == "2026-03-09T09:00:00+00:00"


async def test_adherence_reminders_one_a_day_for_medication_trials_until_the_last_completes(
    notify: Notify,
) -> None:
    pid = await patient(notify)
    await notify.put_contact(
        pid, email="pat@example.org", channel="email", reminders=True, adherence_reminders="daily"
    )
    medicine, added, therapy = (str(uuid.uuid4()) for _ in range(3))
    await notify.processed(pid, await notify.send("intake", started(pid, medicine, date(2026, 3, 2))))
    await notify.processed(
        pid, await notify.send("intake", started(pid, added, date(2026, 3, 3), kind="augmentation"))
    )
    await notify.processed(
        pid, await notify.send("intake", started(pid, therapy, date(2026, 3, 2), kind="psychotherapy"))
    )

    def adherence(rows: list[dict], status: str = "scheduled") -> list[dict]:
        return [r for r in rows if r["kind"] == "adherence" and r["status"] == status]

    assert [r["due_at"] for r in adherence(await notify.reminders(pid))] == ["2026-03-03T09:00:00+00:00"]
    for day in (3, 4, 5):
        await notify.at(datetime(2026, 3, day, 9, 0, tzinfo=UTC))
    assert len(adherence(await notify.reminders(pid), "sent")) == 3  # one a day, not one per trial
    assert len(notify.mailbox.messages) == 3
    done = date(2026, 3, 5)
    await notify.processed(
        pid, await notify.send("intake", TrialCompleted(patient_id=pid, trial_id=medicine, ended_on=done))
    )
    assert [r["due_at"] for r in adherence(await notify.reminders(pid))] == ["2026-03-06T09:00:00+00:00"]
    # The last medication trial completes: adherence reminders end (psychotherapy runs on).
    await notify.processed(
        pid, await notify.send("intake", TrialCompleted(patient_id=pid, trial_id=added, ended_on=done))
    )
    rows = await notify.reminders(pid)
    assert adherence(rows) == [] and [r["reason"] for r in adherence(rows, "cancelled")] == [
        "trial_completed"
    ]
    assert await notify.at(datetime(2026, 3, 6, 9, 0, tzinfo=UTC)) == 0
    # Psychotherapy alone: no adherence reminders at all.
    p2 = await patient(notify)
    await notify.put_contact(
        p2, email="p2@example.org", channel="email", reminders=True, adherence_reminders="daily"
    )
    await notify.processed(
        p2, await notify.send("intake", started(p2, str(uuid.uuid4()), kind="psychotherapy"))
    )
    assert set(await kinds(notify, p2)) == {"first_review", "response_check", "week_8_review"}


async def test_a_retry_that_would_fall_in_quiet_hours_waits_until_08_local(notify: Notify) -> None:
    pid = await patient(notify)  # Europe/London: GMT in March until the 29th
    await notify.put_contact(pid, phone="+447700900123", channel="sms", reminders=True)
    rid = str(uuid.uuid4())
    await notify.processed(
        pid,
        await notify.send(
            "referral",
            ReferralScheduled(
                referral_id=rid, patient_id=pid, appointment_at=datetime(2026, 3, 12, 20, 11, tzinfo=UTC)
            ),
        ),
    )
    notify.delivery.policy = DeliveryPolicy(max_attempts=3, backoff_seconds=(3600.0,))
    notify.gateway.refuse = True
    assert await notify.at(datetime(2026, 3, 10, 20, 11, tzinfo=UTC)) == 1  # the 48 h reminder: try 1 fails
    notify.gateway.refuse = False
    assert await notify.at(datetime(2026, 3, 10, 21, 11, tzinfo=UTC)) == 0  # an hour later: quiet hours
    assert await notify.at(datetime(2026, 3, 11, 7, 59, tzinfo=UTC)) == 0
    assert notify.gateway.requests == 1
    assert await notify.at(datetime(2026, 3, 11, 8, 0, tzinfo=UTC)) == 1  # 08:00 next morning: try 2
    row = next(r for r in await notify.reminders(pid) if r["kind"] == "appointment_48h")
    assert (row["status"], row["attempts"], row["sent_at"]) == ("sent", 2, "2026-03-11T08:00:00+00:00")


async def test_a_reminder_past_due_when_notify_comes_back_at_night_goes_at_08_local(notify: Notify) -> None:
    pid, tid = ids()
    pid = await patient(notify, timezone="America/New_York")
    await notify.put_contact(pid, email="pat@example.org", channel="email", reminders=True)
    await notify.processed(pid, await notify.send("intake", started(pid, tid, date(2026, 2, 21))))
    assert (await kinds(notify, pid))["first_review"] == "2026-03-07T14:00:00+00:00"  # 09:00 EST
    # notify was down; it comes back at 03:00 EDT on 8 March, the night clocks went forward.
    await notify.at(datetime(2026, 3, 8, 7, 0, tzinfo=UTC))
    assert notify.mailbox.submissions == []
    row = next(r for r in await notify.reminders(pid) if r["kind"] == "first_review")
    assert (row["status"], row["deliver_at"]) == ("scheduled", "2026-03-08T12:00:00+00:00")  # 08:00 EDT
    # Another event for the patient meanwhile replans: it stays at 08:00.
    await notify.processed(pid, await notify.send("pathway", urgency(pid, "routine")))
    assert await notify.at(datetime(2026, 3, 8, 11, 59, tzinfo=UTC)) == 0
    assert await notify.at(datetime(2026, 3, 8, 12, 0, tzinfo=UTC)) == 1
    assert len(notify.mailbox.messages) == 1


async def test_a_booking_late_at_night_holds_a_48h_reminder_already_due_until_08(notify: Notify) -> None:
    pid = await patient(notify)  # Europe/London, GMT
    await notify.put_contact(pid, email="pat@example.org", channel="email", reminders=True)
    notify.clock.at = datetime(2026, 3, 10, 22, 30, tzinfo=UTC)
    rid = str(uuid.uuid4())
    appointment = datetime(2026, 3, 12, 20, 30, tzinfo=UTC)  # 48 h before is 20:30 today: two hours ago
    await notify.processed(
        pid,
        await notify.send(
            "referral", ReferralScheduled(referral_id=rid, patient_id=pid, appointment_at=appointment)
        ),
    )
    row = next(r for r in await notify.reminders(pid) if r["kind"] == "appointment_48h")
    assert (row["due_at"], row["deliver_at"]) == ("2026-03-10T20:30:00+00:00", "2026-03-11T08:00:00+00:00")
    assert await notify.at(datetime(2026, 3, 10, 22, 30, tzinfo=UTC)) == 0
    assert await notify.at(datetime(2026, 3, 11, 7, 59, tzinfo=UTC)) == 0
    assert await notify.at(datetime(2026, 3, 11, 8, 0, tzinfo=UTC)) == 1
    assert len(notify.mailbox.messages) == 1


async def test_an_opted_out_patient_whose_urgency_rises_gets_one_crisis_resources_message(
    notify: Notify,
) -> None:
    pid, tid = ids()
    pid = await patient(notify)
    await notify.put_contact(
        pid, email="pat@example.org", phone="+447700900123", channel="email", reminders=False
    )
    await notify.processed(pid, await notify.send("intake", started(pid, tid)))
    assert await notify.reminders(pid) == []  # opted out: no reminders
    notify.clock.at = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)  # quiet hours: safety does not wait
    await notify.processed(pid, await notify.send("pathway", urgency(pid, "emergency")))
    [row] = await notify.reminders(pid)
    assert (row["kind"], row["status"], row["channel"]) == ("crisis_resources", "scheduled", "email")
    assert await notify.at(notify.clock.at) == 1
    [text] = notify.mailbox.texts()
    assert crisis_row("GB") in text and "your care team" in text.lower()
    assert names_no_diagnosis_or_medicine(text) == []
    # Still raised: a second urgent assessment sends nothing more.
    await notify.processed(pid, await notify.send("pathway", urgency(pid, "urgent")))
    assert await notify.at(datetime(2026, 3, 2, 9, 0, tzinfo=UTC)) == 0
    assert len(notify.mailbox.submissions) == 1
    [row] = await notify.reminders(pid)
    assert (row["status"], row["channel"], row["crisis_resources"]) == ("sent", "email", True)
    # Down to routine and up again: a new rise, one more message; by SMS where only a phone is on file.
    await notify.put_contact(pid, phone="+447700900123", channel="none", reminders=True)
    await notify.processed(pid, await notify.send("pathway", urgency(pid, "routine")))
    await notify.processed(pid, await notify.send("pathway", urgency(pid, "urgent")))
    assert await notify.at(datetime(2026, 3, 2, 9, 0, tzinfo=UTC)) == 1
    [sms] = notify.gateway.sms.values()
    assert crisis_row("GB") in sms["text"] and sms["to"] == "+447700900123"
    # No contact on file: nothing to send, and no error.
    p2 = await patient(notify)
    await notify.processed(p2, await notify.send("pathway", urgency(p2, "emergency")))
    assert await notify.reminders(p2) == []


async def test_retries_with_backoff_then_a_failed_event_visible_over_rest(notify: Notify) -> None:
    pid, tid = ids()
    pid = await patient(notify)
    await notify.put_contact(pid, phone="+447700900123", channel="sms", reminders=True)
    await notify.processed(pid, await notify.send("intake", started(pid, tid)))
    notify.gateway.refuse = True
    due = datetime(2026, 3, 16, 9, 0, tzinfo=UTC)
    assert await notify.at(due) == 1  # try 1 fails
    row = next(r for r in await notify.reminders(pid) if r["kind"] == "first_review")
    assert (row["status"], row["attempts"], row["last_error"]) == ("scheduled", 1, "sms gateway: HTTP 503")
    assert await notify.at(due + timedelta(seconds=59)) == 0  # backoff: not before 60 s
    assert await notify.at(due + timedelta(seconds=60)) == 1  # try 2
    assert await notify.at(due + timedelta(seconds=60 + 299)) == 0
    assert await notify.at(due + timedelta(seconds=60 + 300)) == 1  # try 3, the last
    row = next(r for r in await notify.reminders(pid) if r["kind"] == "first_review")
    assert (row["status"], row["attempts"], row["channel"]) == ("failed", 3, "sms")
    assert row["failed_at"] and row["reason"] == "sms gateway: HTTP 503"
    assert notify.gateway.requests == 3 and notify.gateway.sms == {}
    metrics = (await notify.client.get("/metrics")).text
    assert 'care_reminders_total{outcome="failed"} 1.0' in metrics
    assert 'care_reminders_total{outcome="sent"} 0.0' in metrics


async def test_reminder_events_are_published_without_contact_details(notify: Notify) -> None:
    import json

    pid, tid = ids()
    pid = await patient(notify)
    await notify.put_contact(pid, email="secret-pat@example.org", channel="email", reminders=True)
    await notify.processed(pid, await notify.send("intake", started(pid, tid)))
    await notify.at(datetime(2026, 3, 16, 9, 0, tzinfo=UTC))
    nc = await notify.nats.connect()
    try:
        sub = await nc.jetstream().pull_subscribe(f"notify.*.{pid}", durable=None, stream="NOTIFY")

        async def published() -> list[dict] | None:
            try:
                msgs = await sub.fetch(50, timeout=0.5)
            except TimeoutError:  # nats-py raises its own or the built-in one
                return None
            found.extend(json.loads(m.data) for m in msgs)
            return found if any(e["type"].endswith("reminder-sent.v1") for e in found) else None

        found: list[dict] = []
        events = await eventually(published, timeout=15, what="reminder events on NOTIFY")
    finally:
        await nc.close()
    types = {e["type"] for e in events}
    assert {"care.notify.reminder-scheduled.v1", "care.notify.reminder-sent.v1"} <= types
    assert "secret-pat" not in json.dumps(events)


async def test_rebuild_from_the_reminders_events_matches_the_live_rows_and_names_a_drift(
    notify: Notify,
) -> None:
    from sqlalchemy import update

    from notify.rebuild import rebuild_and_compare
    from notify.tables import reminders

    pid, tid = ids()
    pid = await patient(notify, birth_year=1980)
    await notify.put_contact(pid, email="pat@example.org", channel="email", reminders=True)
    await notify.processed(pid, await notify.send("intake", started(pid, tid)))
    assert await notify.at(datetime(2026, 3, 16, 9, 0, tzinfo=UTC)) == 1  # the week-2 review goes
    await notify.processed(
        pid,
        await notify.send("intake", TrialCompleted(patient_id=pid, trial_id=tid, ended_on=date(2026, 3, 20))),
    )

    report = await rebuild_and_compare(notify.runtime.db)
    assert report.ok and report.compared == 3 and report.identical == 3, report.to_json()

    drifted = next(r["id"] for r in await notify.reminders(pid) if r["status"] == "cancelled")
    async with notify.runtime.db.transaction() as s:
        await s.execute(
            update(reminders).where(reminders.c.reminder_id == drifted).values(status="scheduled")
        )
    report = await rebuild_and_compare(notify.runtime.db)
    assert report.different == [drifted]


# --- crisis resources by country, journal prompts (trd-rules 2026.12, CLINICAL.md 5 and 8) ---

WHERE = [
    # (who, country, time zone, row)
    ("country US (zone London)", "US", "Europe/London", "US"),
    ("no country, Europe/London", None, "Europe/London", "GB"),
    ("no country, Europe/Dublin", None, "Europe/Dublin", "IE"),
    ("no country, America/Toronto", None, "America/Toronto", "CA"),
    ("no country, Asia/Tokyo: no row", None, "Asia/Tokyo", "default"),
]


@pytest.mark.parametrize(("who", "country", "zone", "expected"), WHERE, ids=[w[0] for w in WHERE])
async def test_the_crisis_message_carries_the_row_of_the_patients_country_and_names_it(
    notify: Notify, who: str, country: str | None, zone: str, expected: str
) -> None:
    pid = await patient(notify, timezone=zone, country=country)
    await notify.put_contact(pid, email="pat@example.org", channel="email", reminders=False)
    await notify.processed(pid, await notify.send("pathway", urgency(pid, "emergency")))
    assert await notify.at(notify.clock.at) == 1
    [text] = notify.mailbox.texts()
    assert crisis_row(expected) in text and f"Crisis resources ({expected}): " in text
    assert names_no_diagnosis_or_medicine(text) == []
    if expected not in ("US", "CA"):
        assert "988" not in text and "741741" not in text
    [sent] = await notify.reminders(pid)
    assert (sent["kind"], sent["crisis_resources"], sent["crisis_resources_row"]) == (
        "crisis_resources",
        True,
        expected,
    )
    assert sent["crisis_resources_version"] == "trd-rules 2026.12"


async def test_a_patient_registered_v1_without_country_gets_the_row_of_the_time_zone(notify: Notify) -> None:
    """Events stored or in flight from before trd-rules 2026.12 carry no country: v1 decodes
    into the v2 model, and the time zone decides."""
    pid = str(uuid.uuid4())
    v1 = registered(pid, notify.clinic_id, timezone="Europe/Dublin")
    await notify.processed(
        pid, await notify.send("intake", v1, event_type="care.intake.patient-registered.v1")
    )
    await notify.put_contact(pid, email="pat@example.org", channel="email", reminders=True)
    await notify.processed(pid, await notify.send("pathway", urgency(pid, "urgent")))
    assert await notify.at(notify.clock.at) == 1
    [text] = notify.mailbox.texts()
    assert crisis_row("IE") in text


async def test_the_default_row_adds_the_clinics_crisis_line_where_configured(notify: Notify) -> None:
    notify.delivery.crisis_line = "+81 3 1234 5678"  # CRISIS_LINE
    pid = await patient(notify, timezone="Asia/Tokyo")
    await notify.put_contact(pid, phone="+81312345678", channel="sms", reminders=True)
    await notify.processed(pid, await notify.send("pathway", urgency(pid, "urgent")))
    assert await notify.at(notify.clock.at) == 1
    [sms] = notify.gateway.sms.values()
    assert (
        "Crisis resources (default): If you are in danger now, call your local emergency number (112 in the EU); "
        "your care team's crisis line: +81 3 1234 5678"
    ) in sms["text"]


async def test_every_reminder_sent_while_urgent_carries_the_row_and_none_while_routine(
    notify: Notify,
) -> None:
    """Two patients in Dublin (IE row), aged 21 (first review at week 1 either way), the same
    reminders; one urgent throughout, one routine. Appointment, adherence, journal prompt and
    review reminders: each of the urgent patient's carries the IE row, none of the other's."""
    patients = {}
    for level in ("urgent", "routine"):
        pid, tid = ids()
        pid = await patient(notify, birth_year=2005, timezone="Europe/Dublin")
        await notify.put_contact(
            pid,
            email=f"{level}@example.org",
            channel="email",
            reminders=True,
            adherence_reminders="daily",
            journal_prompts=True,
        )
        await notify.processed(pid, await notify.send("intake", started(pid, tid)))
        booked = ReferralScheduled(
            referral_id=str(uuid.uuid4()),
            patient_id=pid,
            appointment_at=datetime(2026, 3, 4, 15, 0, tzinfo=UTC),
        )
        await notify.processed(pid, await notify.send("referral", booked))
        await notify.processed(pid, await notify.send("pathway", urgency(pid, level)))
        patients[level] = pid
    # Dublin keeps GMT in March until the 29th: local times are UTC times.
    await notify.at(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))  # the rise: the crisis-resources message
    for day in range(1, 10):
        for hour in (9, 13, 15, 19):
            if datetime(2026, 3, day, hour, tzinfo=UTC) > datetime(2026, 3, 1, 12, 0, tzinfo=UTC):
                await notify.at(datetime(2026, 3, day, hour, 0, tzinfo=UTC))
    for level, pid in patients.items():
        sent = [r for r in await notify.reminders(pid) if r["status"] == "sent"]
        assert {r["kind"] for r in sent} == {
            "first_review",
            "adherence",
            "journal_prompt",
            "appointment_48h",
            "appointment_2h",
            *(["crisis_resources"] if level == "urgent" else []),
        }
        for r in sent:
            text = notify.mailbox.text_of(r["id"])
            assert names_no_diagnosis_or_medicine(text) == [], r["kind"]
            if level == "urgent":
                assert crisis_row("IE") in text, r["kind"]
                assert (r["crisis_resources"], r["crisis_resources_row"]) == (True, "IE"), r["kind"]
            else:
                assert CRISIS not in text, r["kind"]
                assert (r["crisis_resources"], r["crisis_resources_row"]) == (False, None), r["kind"]


async def test_journal_prompts_daily_when_opted_in_none_when_not_and_held_for_quiet_hours(
    notify: Notify,
) -> None:
    def prompts(rows: list[dict], status: str) -> list[str]:
        return [r["deliver_at"] for r in rows if r["kind"] == "journal_prompt" and r["status"] == status]

    on, off = await patient(notify), await patient(notify)  # Europe/London, GMT in March
    r = await notify.put_contact(
        on, email="on@example.org", channel="email", reminders=True, journal_prompts=True
    )
    assert r.status_code == 200 and r.json()["journal_prompts"] is True
    await notify.put_contact(off, email="off@example.org", channel="email", reminders=True)
    got = await notify.client.get(f"/v1/patients/{off}/contact", headers=notify.auth())
    assert got.json()["journal_prompts"] is False  # opt-in: off unless asked for
    assert prompts(await notify.reminders(on), "scheduled") == ["2026-03-01T19:00:00+00:00"]
    assert await notify.reminders(off) == []
    # Daily at 19:00 local, one at a time.
    assert await notify.at(datetime(2026, 3, 1, 19, 0, tzinfo=UTC)) == 1
    assert await notify.at(datetime(2026, 3, 2, 19, 0, tzinfo=UTC)) == 1
    rows = await notify.reminders(on)
    assert prompts(rows, "sent") == ["2026-03-01T19:00:00+00:00", "2026-03-02T19:00:00+00:00"]
    assert prompts(rows, "scheduled") == ["2026-03-03T19:00:00+00:00"]
    # notify is away at 19:00 and back at 22:00: quiet hours: the prompt waits for 08:00.
    await notify.at(datetime(2026, 3, 3, 22, 0, tzinfo=UTC))
    assert len(notify.mailbox.submissions) == 2
    assert prompts(await notify.reminders(on), "scheduled") == ["2026-03-04T08:00:00+00:00"]
    assert await notify.at(datetime(2026, 3, 4, 7, 59, tzinfo=UTC)) == 0
    assert await notify.at(datetime(2026, 3, 4, 8, 0, tzinfo=UTC)) == 1
    assert prompts(await notify.reminders(on), "scheduled") == ["2026-03-04T19:00:00+00:00"]
    texts = notify.mailbox.texts()
    assert len(texts) == 3 and all(
        "mood journal" in t and names_no_diagnosis_or_medicine(t) == [] for t in texts
    )
    assert {m["To"] for m in notify.mailbox.messages.values()} == {"on@example.org"}
    assert await notify.reminders(off) == []
    # Opting out cancels the pending one.
    await notify.put_contact(
        on, email="on@example.org", channel="email", reminders=True, journal_prompts=False
    )
    assert [(r["status"], r["reason"]) for r in await notify.reminders(on) if r["status"] != "sent"] == [
        ("cancelled", "opted_out")
    ]
    assert await notify.at(datetime(2026, 3, 4, 19, 0, tzinfo=UTC)) == 0
