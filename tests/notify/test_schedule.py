"""The reminder schedule, quiet hours and messages as plain tables (CLINICAL.md section 8),
readable beside the rules. Pure: no servers."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest

from care_shared import drugs
from care_shared.contracts.notify import ReminderKind as K
from care_shared.contracts.pathway import Urgency
from notify import schedule
from notify.contact import (
    AdherenceFrequency,
    ContactChannel,
    ContactPreferences,
    Rejected,
    contact_preferences,
)
from notify.messages import CRISIS_RESOURCES, compose
from notify.quiet_hours import QuietHours
from notify.schedule import Cancel, ExistingReminder, Move, PatientFacts, ReferralFacts, Schedule, TrialFacts

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
EMAIL = ContactPreferences("p@example.org", None, ContactChannel.EMAIL, True)
STARTED = date(2026, 3, 2)  # a Monday


def facts(**kw) -> PatientFacts:  # noqa: ANN003
    f = PatientFacts("p1", **{"birth_year": 1980, "timezone": "Europe/London", **kw})
    f.trials.setdefault("t1", TrialFacts("t1", STARTED))
    return f


def reviews(f: PatientFacts, consent=EMAIL) -> dict[K, date]:  # noqa: ANN001
    return {p.kind: p.due_at.date() for p in schedule.plan(f, consent, NOW) if p.trial_id}


# --- which weeks ---------------------------------------------------------------------------

PATIENTS = [
    # (who, facts, first review week)
    ("aged 46, no risk", dict(birth_year=1980), 2),
    ("aged 18 (lower edge)", dict(birth_year=2008), 1),
    ("aged 25 (upper edge)", dict(birth_year=2001), 1),
    ("aged 26", dict(birth_year=2000), 2),
    ("aged 17", dict(birth_year=2009), 2),
    ("aged 46, suicidality flagged", dict(birth_year=1980, suicidality_flagged=True), 1),
    ("aged 46, pathway urgency urgent", dict(birth_year=1980, urgency=Urgency.URGENT), 1),
    ("birth year not known yet", dict(birth_year=None), 2),
]


@pytest.mark.parametrize(("who", "kw", "first_week"), PATIENTS, ids=[p[0] for p in PATIENTS])
def test_a_trial_start_schedules_reviews_at_weeks_first_4_and_8(who: str, kw: dict, first_week: int) -> None:
    assert reviews(facts(**kw)) == {
        K.FIRST_REVIEW: STARTED + timedelta(weeks=first_week),
        K.RESPONSE_CHECK: STARTED + timedelta(weeks=4),
        K.WEEK_8_REVIEW: STARTED + timedelta(weeks=8),
    }


def test_reviews_are_at_nine_in_the_patients_own_time_zone() -> None:
    planned = schedule.plan(facts(timezone="America/New_York"), EMAIL, NOW)
    first = next(p for p in planned if p.kind is K.FIRST_REVIEW)
    assert first.due_at == datetime(2026, 3, 16, 13, 0, tzinfo=UTC)  # 09:00 EDT (DST began 8 March)


def test_completed_trials_and_unstarted_trials_plan_nothing() -> None:
    f = facts()
    f.trials["t1"].completed = True
    f.trials["t2"] = TrialFacts("t2", None, completed=True)  # completed seen before started
    assert schedule.plan(f, EMAIL, NOW) == []


@pytest.mark.parametrize(
    "consent",
    [
        None,
        ContactPreferences("p@example.org", None, ContactChannel.EMAIL, False),
        ContactPreferences("p@example.org", None, ContactChannel.NONE, True),
    ],
    ids=["no contact", "reminders off", "channel none"],
)
def test_reminders_are_opt_in(consent: ContactPreferences | None) -> None:
    assert schedule.plan(facts(), consent, NOW) == []


def test_adherence_reminders_daily_or_weekly_one_at_a_time_while_the_trial_runs() -> None:
    daily = ContactPreferences("p@example.org", None, ContactChannel.EMAIL, True, AdherenceFrequency.DAILY)
    weekly = ContactPreferences("p@example.org", None, ContactChannel.EMAIL, True, AdherenceFrequency.WEEKLY)
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)  # a Tuesday, after 09:00 in London
    [d] = [p for p in schedule.plan(facts(), daily, now) if p.kind is K.ADHERENCE]
    [w] = [p for p in schedule.plan(facts(), weekly, now) if p.kind is K.ADHERENCE]
    # Today's, three hours ago and not gone yet, still goes (up to a day late); then daily.
    assert d.due_at == datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    assert w.due_at == datetime(2026, 3, 16, 9, 0, tzinfo=UTC)  # the start's weekday
    # Once that one went, the next follows.
    [d2] = [p for p in schedule.plan(facts(), daily, d.due_at, adherence_done_until={"t1": d.due_at}) if p.kind is K.ADHERENCE]
    assert d2.due_at == d.due_at + timedelta(days=1)
    assert all(p.kind is not K.ADHERENCE for p in schedule.plan(facts(), EMAIL, now))


def test_a_referral_appointment_gets_reminders_48_and_2_hours_before() -> None:
    f = facts()
    f.trials.clear()
    f.referrals["r1"] = ReferralFacts("r1", datetime(2026, 3, 20, 14, 0, tzinfo=UTC))
    assert {p.kind: p.deliver_at for p in schedule.plan(f, EMAIL, NOW)} == {
        K.APPOINTMENT_48H: datetime(2026, 3, 18, 14, 0, tzinfo=UTC),
        K.APPOINTMENT_2H: datetime(2026, 3, 20, 12, 0, tzinfo=UTC),
    }
    # 07:30 appointment: 2 h before is 05:30, in quiet hours; 08:00 would be too late.
    f.referrals["r1"] = ReferralFacts("r1", datetime(2026, 3, 20, 7, 30, tzinfo=UTC))
    assert [p.kind for p in schedule.plan(f, EMAIL, NOW)] == [K.APPOINTMENT_48H]
    f.referrals["r1"].cancelled = True
    assert schedule.plan(f, EMAIL, NOW) == []


# --- quiet hours ---------------------------------------------------------------------------

QUIET = [
    # (zone, due (UTC), goes out (UTC), why)
    ("Europe/London", datetime(2026, 1, 10, 20, 59, tzinfo=UTC), datetime(2026, 1, 10, 20, 59, tzinfo=UTC), "20:59 GMT: before quiet hours"),
    ("Europe/London", datetime(2026, 1, 10, 21, 0, tzinfo=UTC), datetime(2026, 1, 11, 8, 0, tzinfo=UTC), "21:00 GMT: next morning"),
    ("Europe/London", datetime(2026, 1, 10, 7, 59, tzinfo=UTC), datetime(2026, 1, 10, 8, 0, tzinfo=UTC), "07:59 GMT: same morning"),
    ("Europe/London", datetime(2026, 1, 10, 8, 0, tzinfo=UTC), datetime(2026, 1, 10, 8, 0, tzinfo=UTC), "08:00 is allowed"),
    ("America/New_York", datetime(2026, 1, 10, 3, 0, tzinfo=UTC), datetime(2026, 1, 10, 13, 0, tzinfo=UTC), "22:00 EST: 08:00 EST"),
    ("Asia/Tokyo", datetime(2026, 1, 10, 13, 0, tzinfo=UTC), datetime(2026, 1, 10, 23, 0, tzinfo=UTC), "22:00 JST: 08:00 JST"),
    ("Australia/Adelaide", datetime(2026, 1, 10, 12, 0, tzinfo=UTC), datetime(2026, 1, 10, 21, 30, tzinfo=UTC), "22:30 ACDT: 08:00 ACDT"),
    # DST: clocks go forward in London at 01:00 UTC on 29 March 2026. Due 22:00 GMT on the
    # 28th; 08:00 next morning is BST, 07:00 UTC.
    ("Europe/London", datetime(2026, 3, 28, 22, 0, tzinfo=UTC), datetime(2026, 3, 29, 7, 0, tzinfo=UTC), "spring forward"),
    # Clocks go back in New York on 1 November 2026: 23:00 EDT (03:00 UTC) to 08:00 EST (13:00 UTC).
    ("America/New_York", datetime(2026, 11, 1, 3, 0, tzinfo=UTC), datetime(2026, 11, 1, 13, 0, tzinfo=UTC), "fall back"),
]


@pytest.mark.parametrize(("zone", "due", "goes", "why"), QUIET, ids=[q[3] for q in QUIET])
def test_quiet_hours_21_to_08_in_the_patients_time_zone(zone: str, due: datetime, goes: datetime, why: str) -> None:
    assert QuietHours().deliver_at(due, zone) == goes


def test_a_reminder_due_in_quiet_hours_is_planned_for_08_local() -> None:
    f = facts(timezone="Asia/Tokyo")
    f.trials.clear()
    f.referrals["r1"] = ReferralFacts("r1", datetime(2026, 3, 20, 1, 0, tzinfo=UTC))  # 10:00 JST
    two_hours = next(p for p in schedule.plan(f, EMAIL, NOW) if p.kind is K.APPOINTMENT_2H)
    assert two_hours.due_at == datetime(2026, 3, 19, 23, 0, tzinfo=UTC)  # 08:00 JST: allowed
    f.referrals["r1"] = ReferralFacts("r1", datetime(2026, 3, 20, 0, 30, tzinfo=UTC))  # 09:30 JST
    two_hours = next(p for p in schedule.plan(f, EMAIL, NOW) if p.kind is K.APPOINTMENT_2H)
    assert two_hours.due_at == datetime(2026, 3, 19, 22, 30, tzinfo=UTC)  # 07:30 JST: quiet
    assert two_hours.deliver_at == datetime(2026, 3, 19, 23, 0, tzinfo=UTC)


# --- reconciling what exists with the plan ---------------------------------------------------


def existing(p: schedule.PlannedReminder, status: str = "scheduled", **kw) -> ExistingReminder:  # noqa: ANN003
    return ExistingReminder(p.reminder_id, p.kind, status, kw.get("due_at", p.due_at), kw.get("deliver_at", p.deliver_at), p.trial_id, p.referral_id)


def test_reconcile_schedules_moves_and_cancels_with_reasons() -> None:
    f = facts(birth_year=None)
    planned = schedule.plan(f, EMAIL, NOW)
    assert {type(d) for d in schedule.reconcile(planned, [], NOW, f, EMAIL)} == {Schedule}
    have = [existing(p) for p in planned]
    assert schedule.reconcile(planned, have, NOW, f, EMAIL) == []  # nothing new: nothing to do
    # The birth year arrives: aged 20, the first review moves to week 1.
    f.birth_year = 2006
    [move] = schedule.reconcile(schedule.plan(f, EMAIL, NOW), have, NOW, f, EMAIL)
    assert isinstance(move, Move) and move.due_at.date() == STARTED + timedelta(weeks=1)
    f.trials["t1"].completed = True
    cancels = schedule.reconcile(schedule.plan(f, EMAIL, NOW), have, NOW, f, EMAIL)
    assert {(type(c), c.reason) for c in cancels} == {(Cancel, "trial_completed")}
    # Sent reminders are history: a completion never touches them.
    sent = [existing(p, "sent") for p in planned]
    assert schedule.reconcile([], sent, NOW, f, EMAIL) == []
    off = ContactPreferences("p@example.org", None, ContactChannel.EMAIL, False)
    assert {c.reason for c in schedule.reconcile([], have, NOW, facts(), off)} == {"opted_out"}


def test_stale_reminders_are_not_scheduled_late() -> None:
    f = facts()
    late = NOW + timedelta(weeks=3)  # week 2 passed a week ago
    kinds = {d.reminder.kind for d in schedule.reconcile(schedule.plan(f, EMAIL, late), [], late, f, EMAIL)}
    assert kinds == {K.RESPONSE_CHECK, K.WEEK_8_REVIEW}


def test_facts_in_any_order_give_the_same_reminders() -> None:
    """Events arrive in any order: the facts they leave are order-free, and so is the plan."""
    steps = [
        lambda f: setattr(f, "birth_year", 2004),
        lambda f: setattr(f, "timezone", "America/Chicago"),
        lambda f: f.trials.setdefault("t1", TrialFacts("t1")).__setattr__("started_on", STARTED),
        lambda f: f.trials.setdefault("t2", TrialFacts("t2")).__setattr__("started_on", STARTED),
        lambda f: f.trials.setdefault("t2", TrialFacts("t2")).__setattr__("completed", True),
        lambda f: f.referrals.setdefault("r1", ReferralFacts("r1")).__setattr__("appointment_at", NOW + timedelta(days=9, hours=6)),
    ]
    outcomes = set()
    rng = random.Random(7)
    for _ in range(30):
        order = steps[:]
        rng.shuffle(order)
        f = PatientFacts("p1")
        have: dict[str, ExistingReminder] = {}
        for step in order:
            step(f)
            planned = {p.reminder_id: p for p in schedule.plan(f, EMAIL, NOW)}
            for d in schedule.reconcile(list(planned.values()), list(have.values()), NOW, f, EMAIL):
                if isinstance(d, Schedule):
                    have[d.reminder.reminder_id] = existing(d.reminder)
                elif isinstance(d, Move):
                    have[d.reminder_id] = existing(planned[d.reminder_id])
                else:
                    old = have[d.reminder_id]
                    have[d.reminder_id] = ExistingReminder(old.reminder_id, old.kind, "cancelled", old.due_at, old.deliver_at, old.trial_id, old.referral_id)
        outcomes.add(frozenset((r.reminder_id, r.status, r.deliver_at) for r in have.values() if r.status == "scheduled"))
    assert len(outcomes) == 1
    [final] = outcomes
    assert len(final) == 5  # trial t1's three reviews and the appointment's two


# --- contact and consent ------------------------------------------------------------------------

CONTACTS = [
    (dict(email="not-an-address", channel=ContactChannel.EMAIL), "email"),
    (dict(email="a b@example.org", channel=ContactChannel.EMAIL), "email"),
    (dict(phone="555-0123", channel=ContactChannel.SMS), "phone"),
    (dict(phone="+1415555012345678", channel=ContactChannel.SMS), "phone"),
    (dict(channel=ContactChannel.EMAIL, phone="+14155550123"), "channel"),
    (dict(channel=ContactChannel.SMS, email="p@example.org"), "channel"),
]


@pytest.mark.parametrize(("kw", "field"), CONTACTS)
def test_contact_details_are_checked_and_the_field_named(kw: dict, field: str) -> None:
    with pytest.raises(Rejected) as exc:
        contact_preferences(**{"email": None, "phone": None, "reminders": True, "adherence": None, **kw})
    assert exc.value.field == field


def test_phone_numbers_are_normalised_to_e164() -> None:
    prefs = contact_preferences(email=None, phone="+1 (415) 555-0123", channel=ContactChannel.SMS, reminders=True, adherence=None)
    assert prefs.phone == "+14155550123" and prefs.adherence is AdherenceFrequency.OFF


# --- messages ----------------------------------------------------------------------------------

DIAGNOSIS_WORDS = ["depress", "mdd", "bipolar", "trd", "treatment-resistant", "antidepressant", "phq", "psych", "suicid", "ect", "ketamine"]


@pytest.mark.parametrize("kind", list(K))
@pytest.mark.parametrize("crisis", [False, True])
def test_messages_name_no_diagnosis_or_medicine_and_carry_crisis_resources_when_urgent(kind: K, crisis: bool) -> None:
    m = compose(kind, crisis=crisis, appointment_at=NOW, timezone="Europe/London")
    words = (m.subject + " " + m.text).lower()
    assert "your care team" in words
    medicines = {name.lower() for name in drugs.all_drugs()}
    assert medicines, "the drug table is the list of names a message must not contain"
    for word in [*DIAGNOSIS_WORDS, *medicines]:
        if word == "suicid" and crisis:
            continue  # the crisis line's own name
        assert f" {word}" not in f" {words}", word
    assert (CRISIS_RESOURCES in m.text) is crisis
    if crisis:
        assert "988" in m.text and "HOME to 741741" in m.text
