"""The reminder schedule, quiet hours and messages as plain tables (CLINICAL.md section 8),
readable beside the rules. Pure: no servers."""

from __future__ import annotations

import random
import re
from datetime import UTC, date, datetime, timedelta

import pytest

from care_shared import drugs
from care_shared.contracts.intake import TrialKind
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
from notify.crisis_resources import DEFAULT_ROW, CrisisResources, country_of_zone, crisis_table
from notify.messages import compose, crisis_block, crisis_message
from notify.quiet_hours import QuietHours
from notify.schedule import (
    Cancel,
    ExistingReminder,
    Move,
    PatientFacts,
    ReferralFacts,
    Schedule,
    TrialFacts,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
EMAIL = ContactPreferences("p@example.org", None, ContactChannel.EMAIL, True)
STARTED = date(2026, 3, 2)  # a Monday


def facts(**kw) -> PatientFacts:
    f = PatientFacts("p1", **{"birth_year": 1980, "timezone": "Europe/London", **kw})
    f.trials.setdefault("t1", TrialFacts("t1", STARTED, kind=TrialKind.ANTIDEPRESSANT))
    return f


def reviews(f: PatientFacts, consent=EMAIL) -> dict[K, date]:
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
    [d2] = [
        p
        for p in schedule.plan(facts(), daily, d.due_at, adherence_done_until=d.due_at)
        if p.kind is K.ADHERENCE
    ]
    assert d2.due_at == d.due_at + timedelta(days=1)
    assert all(p.kind is not K.ADHERENCE for p in schedule.plan(facts(), EMAIL, now))


DAILY = ContactPreferences("p@example.org", None, ContactChannel.EMAIL, True, AdherenceFrequency.DAILY)


def adherence(
    f: PatientFacts, now: datetime = NOW, done: datetime | None = None
) -> list[schedule.PlannedReminder]:
    return [p for p in schedule.plan(f, DAILY, now, adherence_done_until=done) if p.kind is K.ADHERENCE]


@pytest.mark.parametrize("kind", list(TrialKind))
def test_adherence_reminders_are_for_medication_trials_only(kind: TrialKind) -> None:
    """CLINICAL.md section 8: medication adherence reminders; section 1: the medication kinds."""
    f = facts()
    f.trials["t1"].kind = kind
    medication = kind in (TrialKind.ANTIDEPRESSANT, TrialKind.AUGMENTATION, TrialKind.COMBINATION)
    assert len(adherence(f)) == (1 if medication else 0)
    assert {p.kind for p in schedule.plan(f, DAILY, NOW)} >= {
        K.FIRST_REVIEW,
        K.RESPONSE_CHECK,
        K.WEEK_8_REVIEW,
    }


def test_a_trial_recorded_before_kinds_were_kept_keeps_its_adherence_reminders() -> None:
    """Rows from before migration 0003 have a start but no kind: they had adherence reminders,
    and an upgrade must not stop them in silence."""
    f = facts()
    f.trials["t1"].kind = None
    assert len(adherence(f)) == 1


def test_two_medication_trials_give_one_adherence_reminder_a_day_until_the_last_completes() -> None:
    f = facts()
    f.trials["t2"] = TrialFacts("t2", STARTED + timedelta(days=3), kind=TrialKind.AUGMENTATION)
    f.trials["t3"] = TrialFacts("t3", STARTED, kind=TrialKind.PSYCHOTHERAPY)
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    days = []
    done = None
    for _ in range(3):  # each day's goes, then the next is planned: one a day
        [a] = adherence(f, now, done)
        days.append(a.due_at)
        done = now = a.due_at
    assert days == [datetime(2026, 3, 10 + i, 9, 0, tzinfo=UTC) for i in range(3)]
    # The first trial completes: the series goes on for the second, the same day.
    f.trials["t1"].completed = True
    [a] = adherence(f, now, done)
    assert a.due_at == days[-1] + timedelta(days=1)
    # The last medication trial completes: the pending one is cancelled (psychotherapy runs on).
    have = [existing(a)]
    f.trials["t2"].completed = True
    assert adherence(f, now, done) == []
    decisions = schedule.reconcile(
        schedule.plan(f, DAILY, now, adherence_done_until=done), have, now, f, DAILY
    )
    assert [d for d in decisions if isinstance(d, Cancel)] == [Cancel(a.reminder_id, "trial_completed")]


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


def test_a_completed_referral_cancels_its_pending_appointment_reminders() -> None:
    f = facts()
    f.trials.clear()
    f.referrals["r1"] = ReferralFacts("r1", datetime(2026, 3, 20, 14, 0, tzinfo=UTC))
    have = [existing(p) for p in schedule.plan(f, EMAIL, NOW)]
    f.referrals["r1"].completed = True  # referral allows completing before the appointment
    assert schedule.plan(f, EMAIL, NOW) == []
    cancels = schedule.reconcile([], have, NOW, f, EMAIL)
    assert {(type(c), c.reason) for c in cancels} == {(Cancel, "referral_completed")} and len(cancels) == 2


def test_a_reschedule_after_the_48h_reminder_went_plans_fresh_reminders_for_the_new_time() -> None:
    f = facts()
    f.trials.clear()
    first, moved = datetime(2026, 3, 10, 14, 0, tzinfo=UTC), datetime(2026, 3, 12, 15, 0, tzinfo=UTC)
    f.referrals["r1"] = ReferralFacts("r1", first)
    old = {p.kind: p for p in schedule.plan(f, EMAIL, NOW)}
    have = [existing(old[K.APPOINTMENT_48H], "sent"), existing(old[K.APPOINTMENT_2H])]
    now = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)  # the 48 h reminder went yesterday
    f.referrals["r1"].appointment_at = moved
    decisions = schedule.reconcile(schedule.plan(f, EMAIL, now), have, now, f, EMAIL)
    scheduled = {d.reminder.kind: d.reminder.due_at for d in decisions if isinstance(d, Schedule)}
    assert scheduled == {
        K.APPOINTMENT_48H: moved - timedelta(hours=48),
        K.APPOINTMENT_2H: moved - timedelta(hours=2),
    }
    # The pending 2 h reminder for the old time is cancelled, not left beside the new one.
    assert [d for d in decisions if isinstance(d, Cancel)] == [
        Cancel(old[K.APPOINTMENT_2H].reminder_id, "rescheduled")
    ]
    # The same facts again (a redelivered booking): nothing more to do.
    have = [*have[:1], *(existing(d.reminder) for d in decisions if isinstance(d, Schedule))]
    assert schedule.reconcile(schedule.plan(f, EMAIL, now), have, now, f, EMAIL) == []


# --- quiet hours ---------------------------------------------------------------------------

QUIET = [
    # (zone, due (UTC), goes out (UTC), why)
    (
        "Europe/London",
        datetime(2026, 1, 10, 20, 59, tzinfo=UTC),
        datetime(2026, 1, 10, 20, 59, tzinfo=UTC),
        "20:59 GMT: before quiet hours",
    ),
    (
        "Europe/London",
        datetime(2026, 1, 10, 21, 0, tzinfo=UTC),
        datetime(2026, 1, 11, 8, 0, tzinfo=UTC),
        "21:00 GMT: next morning",
    ),
    (
        "Europe/London",
        datetime(2026, 1, 10, 7, 59, tzinfo=UTC),
        datetime(2026, 1, 10, 8, 0, tzinfo=UTC),
        "07:59 GMT: same morning",
    ),
    (
        "Europe/London",
        datetime(2026, 1, 10, 8, 0, tzinfo=UTC),
        datetime(2026, 1, 10, 8, 0, tzinfo=UTC),
        "08:00 is allowed",
    ),
    (
        "America/New_York",
        datetime(2026, 1, 10, 3, 0, tzinfo=UTC),
        datetime(2026, 1, 10, 13, 0, tzinfo=UTC),
        "22:00 EST: 08:00 EST",
    ),
    (
        "Asia/Tokyo",
        datetime(2026, 1, 10, 13, 0, tzinfo=UTC),
        datetime(2026, 1, 10, 23, 0, tzinfo=UTC),
        "22:00 JST: 08:00 JST",
    ),
    (
        "Australia/Adelaide",
        datetime(2026, 1, 10, 12, 0, tzinfo=UTC),
        datetime(2026, 1, 10, 21, 30, tzinfo=UTC),
        "22:30 ACDT: 08:00 ACDT",
    ),
    # DST: clocks go forward in London at 01:00 UTC on 29 March 2026. Due 22:00 GMT on the
    # 28th; 08:00 next morning is BST, 07:00 UTC.
    (
        "Europe/London",
        datetime(2026, 3, 28, 22, 0, tzinfo=UTC),
        datetime(2026, 3, 29, 7, 0, tzinfo=UTC),
        "spring forward",
    ),
    # Clocks go back in New York on 1 November 2026: 23:00 EDT (03:00 UTC) to 08:00 EST (13:00 UTC).
    (
        "America/New_York",
        datetime(2026, 11, 1, 3, 0, tzinfo=UTC),
        datetime(2026, 11, 1, 13, 0, tzinfo=UTC),
        "fall back",
    ),
]


@pytest.mark.parametrize(("zone", "due", "goes", "why"), QUIET, ids=[q[3] for q in QUIET])
def test_quiet_hours_21_to_08_in_the_patients_time_zone(
    zone: str, due: datetime, goes: datetime, why: str
) -> None:
    assert QuietHours().deliver_at(due, zone) == goes


SEND_AT = [
    # (planned, now, goes, why) in Europe/London (GMT in January)
    (
        datetime(2026, 1, 12, 9, 0, tzinfo=UTC),
        datetime(2026, 1, 10, 23, 0, tzinfo=UTC),
        datetime(2026, 1, 12, 9, 0, tzinfo=UTC),
        "ahead: stands",
    ),
    (
        datetime(2026, 1, 10, 20, 30, tzinfo=UTC),
        datetime(2026, 1, 10, 20, 45, tzinfo=UTC),
        datetime(2026, 1, 10, 20, 30, tzinfo=UTC),
        "passed, now not quiet: goes now",
    ),
    (
        datetime(2026, 1, 10, 20, 30, tzinfo=UTC),
        datetime(2026, 1, 10, 22, 30, tzinfo=UTC),
        datetime(2026, 1, 11, 8, 0, tzinfo=UTC),
        "passed, now 22:30: 08:00",
    ),
    (
        datetime(2026, 1, 9, 9, 0, tzinfo=UTC),
        datetime(2026, 1, 11, 3, 0, tzinfo=UTC),
        datetime(2026, 1, 11, 8, 0, tzinfo=UTC),
        "backlog at 03:00: 08:00 that day",
    ),
]


@pytest.mark.parametrize(("planned", "now", "goes", "why"), SEND_AT, ids=[x[3] for x in SEND_AT])
def test_a_time_already_passed_goes_now_except_in_quiet_hours(
    planned: datetime, now: datetime, goes: datetime, why: str
) -> None:
    assert QuietHours().send_at(planned, now, "Europe/London") == goes


def test_a_reminder_planned_late_at_night_waits_for_08_and_a_later_replan_leaves_it_there() -> None:
    """A booking at 22:30 for an appointment two days later at 20:30: the 48 h reminder is
    already two hours past, and it is quiet hours."""
    f = facts()
    f.trials.clear()
    booked = datetime(2026, 3, 10, 22, 30, tzinfo=UTC)  # GMT
    f.referrals["r1"] = ReferralFacts("r1", datetime(2026, 3, 12, 20, 30, tzinfo=UTC))
    decisions = schedule.reconcile(schedule.plan(f, EMAIL, booked), [], booked, f, EMAIL)
    goes = {d.reminder.kind: d.reminder.deliver_at for d in decisions if isinstance(d, Schedule)}
    assert goes[K.APPOINTMENT_48H] == datetime(2026, 3, 11, 8, 0, tzinfo=UTC)
    have = [existing(d.reminder) for d in decisions if isinstance(d, Schedule)]
    # Replans later that night, and after 08:00, do not pull it back to 20:30.
    for later in (booked + timedelta(hours=3), datetime(2026, 3, 11, 9, 0, tzinfo=UTC)):
        assert schedule.reconcile(schedule.plan(f, EMAIL, later), have, later, f, EMAIL) == []


def test_a_reminder_moved_to_a_past_time_at_night_waits_for_08() -> None:
    f = facts(birth_year=None)
    have = {p.kind: existing(p) for p in schedule.plan(f, EMAIL, NOW)}
    night = datetime(2026, 3, 9, 23, 0, tzinfo=UTC)  # GMT
    f.birth_year = 2006  # known late: aged 20, the first review moves to week 1, 09:00 today
    [move] = schedule.reconcile(schedule.plan(f, EMAIL, night), list(have.values()), night, f, EMAIL)
    first = have[K.FIRST_REVIEW].reminder_id
    assert move == Move(
        first, datetime(2026, 3, 9, 9, 0, tzinfo=UTC), datetime(2026, 3, 10, 8, 0, tzinfo=UTC)
    )


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


def existing(p: schedule.PlannedReminder, status: str = "scheduled", **kw) -> ExistingReminder:
    return ExistingReminder(
        p.reminder_id,
        p.kind,
        status,
        kw.get("due_at", p.due_at),
        kw.get("deliver_at", p.deliver_at),
        p.trial_id,
        p.referral_id,
    )


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
        lambda f: f.referrals.setdefault("r1", ReferralFacts("r1")).__setattr__(
            "appointment_at", NOW + timedelta(days=9, hours=6)
        ),
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
                    have[d.reminder_id] = ExistingReminder(
                        old.reminder_id,
                        old.kind,
                        "cancelled",
                        old.due_at,
                        old.deliver_at,
                        old.trial_id,
                        old.referral_id,
                    )
        outcomes.add(
            frozenset(
                (r.reminder_id, r.status, r.deliver_at) for r in have.values() if r.status == "scheduled"
            )
        )
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
    prefs = contact_preferences(
        email=None, phone="+1 (415) 555-0123", channel=ContactChannel.SMS, reminders=True, adherence=None
    )
    assert prefs.phone == "+14155550123" and prefs.adherence is AdherenceFrequency.OFF


# --- crisis resources ------------------------------------------------------------------------

PHONE = "+447700900123"
CRISIS_CHANNELS = [
    # (who, consent, where crisis resources go): CLINICAL.md sections 5 and 8
    (
        "reminders by SMS",
        ContactPreferences("p@example.org", PHONE, ContactChannel.SMS, True),
        ContactChannel.SMS,
    ),
    (
        "reminders off, both on file",
        ContactPreferences("p@example.org", PHONE, ContactChannel.EMAIL, False),
        ContactChannel.EMAIL,
    ),
    (
        "channel none, phone only",
        ContactPreferences(None, PHONE, ContactChannel.NONE, True),
        ContactChannel.SMS,
    ),
    ("no address on file", ContactPreferences(None, None, ContactChannel.NONE, False), None),
]


@pytest.mark.parametrize(("who", "consent", "channel"), CRISIS_CHANNELS, ids=[c[0] for c in CRISIS_CHANNELS])
def test_crisis_resources_go_to_the_preferred_channel_else_any_address_on_file(
    who: str, consent: ContactPreferences, channel
) -> None:
    assert consent.crisis_channel is channel


@pytest.mark.parametrize(
    ("who", "consent", "channel"),
    [*CRISIS_CHANNELS, ("no contact", None, None)],
    ids=[*(c[0] for c in CRISIS_CHANNELS), "no contact"],
)
def test_a_rise_of_urgency_plans_one_crisis_resources_message_whatever_the_preferences(
    who: str, consent, channel
) -> None:
    night = datetime(2026, 3, 10, 23, 0, tzinfo=UTC)  # quiet hours in London: it goes all the same
    f = facts(urgency=Urgency.EMERGENCY, crisis_since="assessment-1", crisis_raised_at=night)
    decisions = schedule.reconcile(schedule.plan(f, consent, night), [], night, f, consent)
    crisis = [
        d.reminder for d in decisions if isinstance(d, Schedule) and d.reminder.kind is K.CRISIS_RESOURCES
    ]
    assert [(p.due_at, p.deliver_at) for p in crisis] == ([] if channel is None else [(night, night)])


def test_one_crisis_resources_message_per_rise_of_urgency() -> None:
    off = ContactPreferences("p@example.org", None, ContactChannel.EMAIL, False)
    f = facts(urgency=Urgency.URGENT, crisis_since="assessment-1", crisis_raised_at=NOW)
    [first] = schedule.plan(f, off, NOW)
    # A second urgent (or emergency) assessment while still raised keeps the rise: the same message, sent already.
    f.urgency = Urgency.EMERGENCY
    assert schedule.reconcile(schedule.plan(f, off, NOW), [existing(first, "sent")], NOW, f, off) == []
    # Urgency goes down before a pending one went: it is withdrawn.
    f.urgency, f.crisis_since, f.crisis_raised_at = Urgency.ROUTINE, None, None
    assert schedule.reconcile(schedule.plan(f, off, NOW), [existing(first)], NOW, f, off) == [
        Cancel(first.reminder_id, "urgency_lowered")
    ]
    # Raised again: a new message.
    f.urgency, f.crisis_since, f.crisis_raised_at = Urgency.URGENT, "assessment-3", NOW + timedelta(days=2)
    [second] = schedule.plan(f, off, NOW + timedelta(days=2))
    assert second.reminder_id != first.reminder_id


# --- messages ----------------------------------------------------------------------------------

DIAGNOSIS_WORDS = [
    "depress",
    "mdd",
    "bipolar",
    "trd",
    "treatment-resistant",
    "antidepressant",
    "phq",
    "psych",
    "suicid",
    "ect",
    "ketamine",
]
MEDICINES = sorted({name.lower() for name in drugs.all_drugs()})
MESSAGES = [
    *(
        (f"{kind.value}{' while urgent' if crisis else ''}", kind, crisis)
        for kind in K
        for crisis in (False, True)
    ),
    ("crisis resources on a rise of urgency", None, True),
]
# The crisis line's own name: the one place a message may say "suicide".
LIFELINE = "988 Suicide and Crisis Lifeline"


def named_in(text: str, word: str, *, stem: bool = False) -> bool:
    """A drug name as a word anywhere (after a space, a bracket, a line break, in any case); a
    diagnosis stem at the start of any word."""
    end = "" if stem else r"\b"
    return re.search(rf"\b{re.escape(word)}{end}", text, re.IGNORECASE) is not None


def names_no_diagnosis_or_medicine(text: str) -> list[str]:
    """The diagnosis stems and drug names the text contains (none, for a message)."""
    scanned = text.replace(LIFELINE, "")
    found = [m for m in MEDICINES if named_in(scanned, m)]
    return found + [w for w in DIAGNOSIS_WORDS if named_in(scanned, w, stem=True)]


def test_the_scan_finds_a_name_next_to_punctuation_and_in_any_case() -> None:
    assert named_in("your medicine (Sertraline).", "sertraline") and named_in("plan:\nLITHIUM", "lithium")
    assert named_in("Depression care", "depress", stem=True) and not named_in("unselected", "ect", stem=True)
    assert names_no_diagnosis_or_medicine("thinking about suicide? call 988 Suicide and Crisis Lifeline") == [
        "suicid"
    ]


ROWS = sorted(crisis_table().rows)


@pytest.mark.parametrize("row", ROWS)
@pytest.mark.parametrize(("name", "kind", "crisis"), MESSAGES, ids=[m[0] for m in MESSAGES])
def test_messages_name_no_diagnosis_or_medicine_and_carry_crisis_resources_when_urgent(
    name: str, kind: K | None, crisis: bool, row: str
) -> None:
    resources = crisis_table().row_for(country=None if row == DEFAULT_ROW else row, timezone=None)
    assert resources.row == row
    carries = crisis or kind is None or kind is K.CRISIS_RESOURCES
    m = (
        crisis_message(resources)
        if kind is None
        else compose(
            kind, crisis=resources if carries else None, appointment_at=NOW, timezone="Europe/London"
        )
    )
    text = f"{m.subject}\n{m.text}"
    assert "your care team" in text.lower()
    assert MEDICINES, "the drug table is the list of names a message must not contain"
    assert names_no_diagnosis_or_medicine(text) == []
    # Section 8: while urgent, the row of the patient's country, naming the row used.
    assert (crisis_block(resources) in m.text) is carries
    assert (f"Crisis resources ({row}): {resources.resources}" in m.text) is carries
    assert ("Crisis resources (" in m.text) is carries


# --- crisis resources by country (CLINICAL.md 8) ---------------------------------------------

# The handbook's table, word for word (trd-rules 2026.12): the shipped data must say the same.
HANDBOOK_ROWS = {
    "US": "988 Suicide and Crisis Lifeline (call or text 988); Crisis Text Line: text HOME to 741741; 911",
    "CA": "988 (call or text); 911",
    "GB": "Samaritans 116 123 (free, 24 h); NHS 111, option 2 for mental health (NHS 24 on 111 in Scotland); 999",
    "IE": "Samaritans 116 123; 112 or 999",
    "default": "If you are in danger now, call your local emergency number (112 in the EU)",
}


def test_the_crisis_resources_table_is_the_handbooks_word_for_word_and_names_its_rule_set() -> None:
    table = crisis_table()
    assert table.rules_version == "trd-rules 2026.12"
    assert table.rows == HANDBOOK_ROWS
    assert table.crisis_line_rows == {DEFAULT_ROW}


WHERE = [
    # (who, country, time zone, row): the patient's country, else the zone's, else the default
    ("country US", "US", None, "US"),
    ("country US, zone London", "US", "Europe/London", "US"),
    ("country without a row, zone London", "FR", "Europe/London", DEFAULT_ROW),
    ("Europe/London", None, "Europe/London", "GB"),
    ("Europe/Dublin", None, "Europe/Dublin", "IE"),
    ("America/Toronto", None, "America/Toronto", "CA"),
    ("America/Vancouver", None, "America/Vancouver", "CA"),
    ("America/New_York", None, "America/New_York", "US"),
    ("Pacific/Honolulu", None, "Pacific/Honolulu", "US"),
    ("Asia/Tokyo: a country without a row", None, "Asia/Tokyo", DEFAULT_ROW),
    ("Europe/Berlin", None, "Europe/Berlin", DEFAULT_ROW),
    ("a link name: US/Eastern", None, "US/Eastern", "US"),
    ("a link name: Eire", None, "Eire", "IE"),
    ("a link name: Europe/Belfast", None, "Europe/Belfast", "GB"),
    ("Europe/Jersey: JE in zone.tab, not GB", None, "Europe/Jersey", DEFAULT_ROW),
    ("UTC: no country", None, "UTC", DEFAULT_ROW),
    ("time zone not known yet", None, None, DEFAULT_ROW),
]


@pytest.mark.parametrize(("who", "country", "zone", "row"), WHERE, ids=[w[0] for w in WHERE])
def test_the_row_is_the_patients_country_else_the_time_zones_else_the_default(
    who: str, country: str | None, zone: str | None, row: str
) -> None:
    resources = crisis_table().row_for(country=country, timezone=zone)
    assert (resources.row, resources.resources, resources.rules_version) == (
        row,
        HANDBOOK_ROWS[row],
        "trd-rules 2026.12",
    )


def test_zone_tab_comes_from_the_tzdata_package() -> None:
    from importlib.resources import files

    assert files("tzdata").joinpath("zoneinfo", "zone.tab").is_file()
    assert [
        country_of_zone(z) for z in ("Europe/London", "Europe/Dublin", "America/Toronto", "Asia/Tokyo")
    ] == [
        "GB",
        "IE",
        "CA",
        "JP",
    ]


def test_the_default_row_adds_the_clinics_crisis_line_where_configured() -> None:
    table = crisis_table()
    line = "+44 20 7946 0000"
    assert table.row_for(country=None, timezone="Asia/Tokyo", crisis_line=line) == CrisisResources(
        DEFAULT_ROW, "trd-rules 2026.12", f"{HANDBOOK_ROWS['default']}; your care team's crisis line: {line}"
    )
    # A country with a row of its own keeps its row as the handbook gives it.
    assert table.row_for(country="GB", timezone=None, crisis_line=line).resources == HANDBOOK_ROWS["GB"]


def test_no_message_says_988_to_everyone() -> None:
    """The old text sent 988 and 741741 to every patient, whatever their country."""
    for row in ("GB", "IE", DEFAULT_ROW):
        resources = crisis_table().row_for(country=None if row == DEFAULT_ROW else row, timezone=None)
        text = crisis_message(resources).text
        assert "988" not in text and "741741" not in text


# --- mood-journal prompts (CLINICAL.md 8) -----------------------------------------------------

JOURNAL = ContactPreferences(
    "p@example.org", None, ContactChannel.EMAIL, True, journal_prompts=True, journal_since=NOW
)


def prompts(
    f: PatientFacts, consent: ContactPreferences = JOURNAL, now: datetime = NOW, done: datetime | None = None
) -> list[schedule.PlannedReminder]:
    return [p for p in schedule.plan(f, consent, now, journal_done_until=done) if p.kind is K.JOURNAL_PROMPT]


def test_journal_prompts_daily_at_19_local_one_at_a_time_when_opted_in() -> None:
    f = facts()
    f.trials.clear()  # journal prompts need no trial
    [first] = prompts(f)
    assert first.due_at == datetime(2026, 3, 1, 19, 0, tzinfo=UTC)  # 19:00 GMT, the day of opting in
    # Once it went, the next day's; one pending at a time, keyed on its day.
    [second] = prompts(f, now=first.due_at, done=first.due_at)
    assert second.due_at == first.due_at + timedelta(days=1) and second.key.endswith("/2026-03-02")
    # In the patient's own time zone, across the clocks going forward (London, 29 March).
    [late_march] = prompts(
        f, now=datetime(2026, 3, 30, 12, 0, tzinfo=UTC), done=datetime(2026, 3, 29, 18, 0, tzinfo=UTC)
    )
    assert late_march.due_at == datetime(2026, 3, 30, 18, 0, tzinfo=UTC)  # 19:00 BST
    tokyo = facts(timezone="Asia/Tokyo")
    assert prompts(tokyo)[0].due_at == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # 19:00 JST


def test_the_first_journal_prompt_is_the_first_due_after_opting_in() -> None:
    f = facts()
    evening = datetime(2026, 3, 1, 20, 0, tzinfo=UTC)  # opted in after today's 19:00
    consent = ContactPreferences(
        "p@example.org", None, ContactChannel.EMAIL, True, journal_prompts=True, journal_since=evening
    )
    [p] = prompts(f, consent, now=evening)
    assert p.due_at == datetime(2026, 3, 2, 19, 0, tzinfo=UTC)
    # Replans later, before it goes, plan the same one: it is not pushed on.
    assert prompts(f, consent, now=datetime(2026, 3, 2, 19, 30, tzinfo=UTC)) == [p]


@pytest.mark.parametrize(
    "consent",
    [
        ContactPreferences("p@example.org", None, ContactChannel.EMAIL, True),
        ContactPreferences("p@example.org", None, ContactChannel.EMAIL, False, journal_prompts=True),
        ContactPreferences("p@example.org", None, ContactChannel.NONE, True, journal_prompts=True),
    ],
    ids=["not opted in", "reminders off", "channel none"],
)
def test_no_journal_prompts_unless_opted_in(consent: ContactPreferences) -> None:
    assert prompts(facts(), consent) == []


def test_a_journal_prompt_due_in_quiet_hours_waits_for_08_and_opting_out_cancels_it() -> None:
    f = facts()
    [p] = prompts(f)
    night = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)  # the 19:00 prompt not gone, and it is night
    assert schedule.send_at(p, night, f.zone) == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    assert schedule.keeps_quiet_hours(K.JOURNAL_PROMPT)
    off = ContactPreferences("p@example.org", None, ContactChannel.EMAIL, True, journal_prompts=False)
    decisions = schedule.reconcile(schedule.plan(f, off, NOW), [existing(p)], NOW, f, off)
    assert [d for d in decisions if isinstance(d, Cancel)] == [Cancel(p.reminder_id, "opted_out")]
