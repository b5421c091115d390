"""The reminder schedule (CLINICAL.md section 8), pure: what a patient's facts ask for, and
how to bring the reminders that exist in line with it. No I/O; `now` is passed in.

Events reach notify in any order and more than once, so nothing here reacts to "an event";
it reads the facts gathered so far and says which reminders should exist. Whatever the order
the facts arrived in, the same facts give the same plan: that is how handlers converge.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from care_shared.contracts.notify import ReminderKind
from care_shared.contracts.pathway import Urgency
from notify.contact import AdherenceFrequency, ContactPreferences
from notify.quiet_hours import QuietHours

QUIET_HOURS = QuietHours()

# *convention*: a review or adherence reminder is due at 09:00 on the patient's wall clock.
REMINDER_TIME = time(9, 0)
# NICE NG222 1.4.11: review at week 2, or week 1 when aged 18-25 or at risk of suicide.
FIRST_REVIEW_WEEK = 2
EARLY_FIRST_REVIEW_WEEK = 1
YOUNG_ADULT_AGES = range(18, 26)
RESPONSE_CHECK_WEEK = 4  # with a PHQ-9
LATE_REVIEW_WEEK = 8
APPOINTMENT_LEADS = {ReminderKind.APPOINTMENT_48H: timedelta(hours=48), ReminderKind.APPOINTMENT_2H: timedelta(hours=2)}
# *convention*: a reminder that would first be scheduled more than a day after its time is
# stale (a review reminder for months ago helps nobody); one already scheduled still goes.
STALE_AFTER = timedelta(days=1)
# Where the patient's time zone is not known yet (intake's patient-registered not arrived):
# plan in UTC; the reminders move when it arrives.
DEFAULT_TIMEZONE = "UTC"

_NAMESPACE = uuid.UUID("5b0e3c1e-7d4a-4c55-9a55-2f0a4c1d6e01")


def reminder_id(key: str) -> str:
    """A reminder's id follows from what it is for, so a redelivered event finds the same
    reminder instead of making a second one. Opaque: it doubles as the idempotency key."""
    return str(uuid.uuid5(_NAMESPACE, key))


@dataclass
class TrialFacts:
    trial_id: str
    started_on: date | None = None  # None: completed seen before started
    completed: bool = False


@dataclass
class ReferralFacts:
    referral_id: str
    appointment_at: datetime | None = None
    cancelled: bool = False


@dataclass
class PatientFacts:
    """What notify knows of a patient from intake, pathway and referral events."""

    patient_id: str
    birth_year: int | None = None
    timezone: str | None = None
    urgency: Urgency = Urgency.ROUTINE
    suicidality_flagged: bool = False
    trials: dict[str, TrialFacts] = field(default_factory=dict)
    referrals: dict[str, ReferralFacts] = field(default_factory=dict)

    @property
    def zone(self) -> str:
        return self.timezone or DEFAULT_TIMEZONE

    @property
    def crisis_resources(self) -> bool:
        """CLINICAL.md section 5: every message carries crisis resources while urgency is
        urgent or emergency, whatever the preferences say."""
        return self.urgency in (Urgency.URGENT, Urgency.EMERGENCY)

    def early_first_review(self, trial: TrialFacts) -> bool:
        young = (
            self.birth_year is not None
            and trial.started_on is not None
            # Age from years only: intake keeps the birth year, not the date (*convention*).
            and trial.started_on.year - self.birth_year in YOUNG_ADULT_AGES
        )
        return young or self.suicidality_flagged or self.crisis_resources


@dataclass(frozen=True)
class PlannedReminder:
    key: str
    kind: ReminderKind
    due_at: datetime
    deliver_at: datetime
    trial_id: str | None = None
    referral_id: str | None = None

    @property
    def reminder_id(self) -> str:
        return reminder_id(self.key)


@dataclass(frozen=True)
class ExistingReminder:
    reminder_id: str
    kind: ReminderKind
    status: str  # scheduled | sent | failed | cancelled
    due_at: datetime
    deliver_at: datetime
    trial_id: str | None = None
    referral_id: str | None = None


def local_time_on(day: date, at: time, timezone: str) -> datetime:
    return datetime.combine(day, at, tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def _planned(key: str, kind: ReminderKind, due: datetime, timezone: str, **ids: str) -> PlannedReminder:
    return PlannedReminder(key, kind, due, QUIET_HOURS.deliver_at(due, timezone), **ids)


def trial_reviews(facts: PatientFacts, trial: TrialFacts) -> list[PlannedReminder]:
    assert trial.started_on is not None
    first = EARLY_FIRST_REVIEW_WEEK if facts.early_first_review(trial) else FIRST_REVIEW_WEEK
    weeks = {
        ReminderKind.FIRST_REVIEW: first,
        ReminderKind.RESPONSE_CHECK: RESPONSE_CHECK_WEEK,
        ReminderKind.WEEK_8_REVIEW: LATE_REVIEW_WEEK,
    }
    return [
        _planned(
            f"{trial.trial_id}/{kind.value}",
            kind,
            local_time_on(trial.started_on + timedelta(weeks=week), REMINDER_TIME, facts.zone),
            facts.zone,
            trial_id=trial.trial_id,
        )
        for kind, week in weeks.items()
    ]


def next_adherence(
    facts: PatientFacts, trial: TrialFacts, frequency: AdherenceFrequency, after: datetime
) -> PlannedReminder:
    """The first adherence reminder of the trial due after `after`: daily from the day after
    the start, or weekly on the weekday it started, at 09:00 local time. One is pending at a
    time; the next is planned once it has gone."""
    assert trial.started_on is not None
    step = 1 if frequency is AdherenceFrequency.DAILY else 7
    local_after = after.astimezone(ZoneInfo(facts.zone)).date()
    n = max(1, (local_after - trial.started_on).days // step)
    while True:
        due = local_time_on(trial.started_on + timedelta(days=n * step), REMINDER_TIME, facts.zone)
        if due > after:
            return _planned(
                f"{trial.trial_id}/adherence/{frequency.value}/{n}",
                ReminderKind.ADHERENCE,
                due,
                facts.zone,
                trial_id=trial.trial_id,
            )
        n += 1


def appointment_reminders(facts: PatientFacts, referral: ReferralFacts) -> list[PlannedReminder]:
    assert referral.appointment_at is not None
    planned = []
    for kind, lead in APPOINTMENT_LEADS.items():
        reminder = _planned(
            f"{referral.referral_id}/{kind.value}",
            kind,
            referral.appointment_at - lead,
            facts.zone,
            referral_id=referral.referral_id,
        )
        # Quiet hours may push a 2-hour reminder past an early appointment: then it is no use.
        if reminder.deliver_at < referral.appointment_at:
            planned.append(reminder)
    return planned


def plan(
    facts: PatientFacts,
    consent: ContactPreferences | None,
    now: datetime,
    *,
    adherence_done_until: dict[str, datetime] | None = None,
) -> list[PlannedReminder]:
    """Every reminder the patient's facts and consent ask for. Reminders are opt-in: no
    contact, reminders off or channel none plans nothing. `adherence_done_until` gives, per
    trial, the due time of its last adherence reminder already sent or failed."""
    if consent is None or not consent.wants_reminders:
        return []
    done = adherence_done_until or {}
    planned: list[PlannedReminder] = []
    for trial in facts.trials.values():
        if trial.started_on is None or trial.completed:
            continue
        planned += trial_reviews(facts, trial)
        if consent.wants_adherence:
            after = max(now - STALE_AFTER, done.get(trial.trial_id, now - STALE_AFTER))
            planned.append(next_adherence(facts, trial, consent.adherence, after))
    for referral in facts.referrals.values():
        if referral.appointment_at is not None and not referral.cancelled:
            planned += appointment_reminders(facts, referral)
    return planned


# --- bringing what exists in line with the plan -----------------------------------------


@dataclass(frozen=True)
class Schedule:
    reminder: PlannedReminder


@dataclass(frozen=True)
class Move:
    reminder_id: str
    due_at: datetime
    deliver_at: datetime


@dataclass(frozen=True)
class Cancel:
    reminder_id: str
    reason: str


Decision = Schedule | Move | Cancel


def withdrawal_reason(facts: PatientFacts, consent: ContactPreferences | None, existing: ExistingReminder) -> str:
    if consent is None or not consent.wants_reminders:
        return "opted_out"
    if existing.trial_id:
        trial = facts.trials.get(existing.trial_id)
        if trial and trial.completed:
            return "trial_completed"
        if existing.kind is ReminderKind.ADHERENCE and not consent.wants_adherence:
            return "opted_out"
    if existing.referral_id:
        referral = facts.referrals.get(existing.referral_id)
        if referral and referral.cancelled:
            return "referral_cancelled"
    return "superseded"


def reconcile(
    planned: list[PlannedReminder],
    existing: list[ExistingReminder],
    now: datetime,
    facts: PatientFacts,
    consent: ContactPreferences | None,
) -> list[Decision]:
    """Schedule what is planned and missing (unless already stale), move what is planned for
    another time, cancel what is pending and no longer planned. Sent and failed reminders are
    history: never touched."""
    by_id = {e.reminder_id: e for e in existing}
    wanted = {p.reminder_id: p for p in planned}
    decisions: list[Decision] = []
    for rid, p in wanted.items():
        e = by_id.get(rid)
        if e is None or e.status == "cancelled":
            if p.deliver_at >= now - STALE_AFTER:
                decisions.append(Schedule(p))
        elif e.status == "scheduled" and (e.due_at != p.due_at or e.deliver_at != p.deliver_at):
            decisions.append(Move(rid, p.due_at, p.deliver_at))
    for rid, e in by_id.items():
        if e.status == "scheduled" and rid not in wanted:
            decisions.append(Cancel(rid, withdrawal_reason(facts, consent, e)))
    return decisions
