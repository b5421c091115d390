"""The reminder schedule (CLINICAL.md section 8), pure: what a patient's facts ask for, and
how to bring the reminders that exist in line with it. No I/O; `now` is passed in.

Events reach notify in any order and more than once, so nothing here reacts to "an event";
it reads the facts gathered so far and says which reminders should exist. Whatever the order
the facts arrived in, the same facts give the same plan: that is how handlers converge.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from care_shared.contracts.intake import TrialKind
from care_shared.contracts.notify import ReminderKind
from care_shared.contracts.pathway import Urgency
from notify.domain.contact import AdherenceFrequency, ContactPreferences
from notify.domain.quiet_hours import QuietHours
from notify.domain.urgency import RAISED_URGENCY

QUIET_HOURS = QuietHours()

# *convention*: a review or adherence reminder is due at 09:00 on the patient's wall clock.
REMINDER_TIME = time(9, 0)
# *convention*: the daily mood-journal prompt (CLINICAL.md 8) at 19:00 local: late enough to
# look back on the day (one entry per date, section 6), before quiet hours at 21:00.
JOURNAL_PROMPT_TIME = time(19, 0)
# NICE NG222 1.4.11: review at week 2, or week 1 when aged 18-25 or at risk of suicide.
FIRST_REVIEW_WEEK = 2
EARLY_FIRST_REVIEW_WEEK = 1
YOUNG_ADULT_AGES = range(18, 26)
RESPONSE_CHECK_WEEK = 4  # with a PHQ-9
LATE_REVIEW_WEEK = 8
APPOINTMENT_LEADS = {
    ReminderKind.APPOINTMENT_48H: timedelta(hours=48),
    ReminderKind.APPOINTMENT_2H: timedelta(hours=2),
}
# *convention*: a reminder that would first be scheduled more than a day after its time is
# stale (a review reminder for months ago helps nobody); one already scheduled still goes.
STALE_AFTER = timedelta(days=1)
# Where the patient's time zone is not known yet (intake's patient-registered not arrived):
# plan in UTC; the reminders move when it arrives.
DEFAULT_TIMEZONE = "UTC"
# CLINICAL.md section 8 "medication adherence reminders": the trials of a medicine the patient
# takes at home (section 1's medication kinds). Esketamine and ketamine are given at the clinic,
# under supervision; psychotherapy, ECT, rTMS, VNS and DBS are no medicine to keep to.
MEDICATION_TRIALS = frozenset({TrialKind.ANTIDEPRESSANT, TrialKind.AUGMENTATION, TrialKind.COMBINATION})
# Reminders that come one at a time in a series: the next is planned once one has gone.
SERIES = frozenset({ReminderKind.ADHERENCE, ReminderKind.JOURNAL_PROMPT})


def keeps_quiet_hours(kind: ReminderKind) -> bool:
    """*convention*: every reminder waits out quiet hours (section 8) except the crisis-resources
    message: crisis resources are a safety rule that preferences cannot turn off (sections 5
    and 8), and help that is available now must not wait for the morning."""
    return kind is not ReminderKind.CRISIS_RESOURCES


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
    kind: TrialKind | None = None  # None: its start not seen yet

    @property
    def running(self) -> bool:
        return self.started_on is not None and not self.completed

    @property
    def medication(self) -> bool:
        # A started trial without a kind was recorded before kinds were kept (migration 0003):
        # it had adherence reminders then, so it keeps them rather than losing them silently.
        return self.kind in MEDICATION_TRIALS or (self.kind is None and self.started_on is not None)


@dataclass
class ReferralFacts:
    referral_id: str
    appointment_at: datetime | None = None
    cancelled: bool = False
    completed: bool = False  # seen: the appointment took place, or the referral closed early

    @property
    def open(self) -> bool:
        return not (self.cancelled or self.completed)


@dataclass
class PatientFacts:
    """What notify knows of a patient from intake, pathway and referral events."""

    patient_id: str
    birth_year: int | None = None
    timezone: str | None = None
    country: str | None = None  # ISO 3166-1 alpha-2, when intake was given one
    urgency: Urgency = Urgency.ROUTINE
    suicidality_flagged: bool = False
    # The latest rise of urgency to urgent or emergency: the assessment that raised it
    # (pathway's as_of_event) and notify's time then. None while urgency is routine.
    crisis_since: str | None = None
    crisis_raised_at: datetime | None = None
    trials: dict[str, TrialFacts] = field(default_factory=dict)
    referrals: dict[str, ReferralFacts] = field(default_factory=dict)

    @property
    def zone(self) -> str:
        return self.timezone or DEFAULT_TIMEZONE

    @property
    def crisis_resources(self) -> bool:
        """CLINICAL.md section 5: every message carries crisis resources while urgency is
        urgent or emergency, whatever the preferences say."""
        return self.urgency in RAISED_URGENCY

    @property
    def adherence_series_start(self) -> date | None:
        """One adherence series per patient while any medication trial runs (two trials
        would otherwise send two identical messages), counted from the earliest running
        one's start; None when none runs."""
        return min((t.started_on for t in self.trials.values() if t.running and t.medication), default=None)

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
    facts: PatientFacts, start: date, frequency: AdherenceFrequency, after: datetime
) -> PlannedReminder:
    """The patient's first adherence reminder due after `after`: daily from the day after
    the series' start, or weekly on the weekday it started, at 09:00 local time. One is
    pending at a time; the next is planned once it has gone. Keyed on its day, so one day
    never has two."""
    step = 1 if frequency is AdherenceFrequency.DAILY else 7
    local_after = after.astimezone(ZoneInfo(facts.zone)).date()
    n = max(1, (local_after - start).days // step)
    while True:
        day = start + timedelta(days=n * step)
        due = local_time_on(day, REMINDER_TIME, facts.zone)
        if due > after:
            return _planned(
                f"{facts.patient_id}/adherence/{day.isoformat()}", ReminderKind.ADHERENCE, due, facts.zone
            )
        n += 1


def next_journal_prompt(facts: PatientFacts, after: datetime) -> PlannedReminder:
    """The patient's first mood-journal prompt due after `after`: daily at 19:00 local time
    (CLINICAL.md 8). One is pending at a time, keyed on its day, like adherence reminders."""
    day = after.astimezone(ZoneInfo(facts.zone)).date()
    while True:
        due = local_time_on(day, JOURNAL_PROMPT_TIME, facts.zone)
        if due > after:
            return _planned(
                f"{facts.patient_id}/journal_prompt/{day.isoformat()}",
                ReminderKind.JOURNAL_PROMPT,
                due,
                facts.zone,
            )
        day += timedelta(days=1)


def appointment_reminders(facts: PatientFacts, referral: ReferralFacts) -> list[PlannedReminder]:
    assert referral.appointment_at is not None
    # Keyed on the appointment's time too: a reschedule after the 48 h reminder went gets
    # fresh reminders for the new time (the pending ones for the old time are cancelled).
    appointment = referral.appointment_at.astimezone(UTC).isoformat()
    planned = []
    for kind, lead in APPOINTMENT_LEADS.items():
        reminder = _planned(
            f"{referral.referral_id}/{kind.value}/{appointment}",
            kind,
            referral.appointment_at - lead,
            facts.zone,
            referral_id=referral.referral_id,
        )
        # Quiet hours may push a 2-hour reminder past an early appointment: then it is no use.
        if reminder.deliver_at < referral.appointment_at:
            planned.append(reminder)
    return planned


def crisis_resources_message(
    facts: PatientFacts, consent: ContactPreferences | None
) -> list[PlannedReminder]:
    """CLINICAL.md sections 5 and 8: when urgency rises to urgent or emergency, one message
    with the crisis resources, whatever the preferences (reminders off or channel none: to
    any address on file). Keyed on the assessment that raised it: once per rise."""
    if facts.crisis_since is None:
        return []
    if consent is None or consent.crisis_channel is None:
        return []  # no address on file: nothing to send
    assert facts.crisis_raised_at is not None
    at = facts.crisis_raised_at
    return [
        PlannedReminder(
            f"{facts.patient_id}/crisis_resources/{facts.crisis_since}", ReminderKind.CRISIS_RESOURCES, at, at
        )
    ]


def plan(
    facts: PatientFacts,
    consent: ContactPreferences | None,
    now: datetime,
    *,
    adherence_done_until: datetime | None = None,
    journal_done_until: datetime | None = None,
) -> list[PlannedReminder]:
    """Every reminder the patient's facts and consent ask for. Reminders are opt-in: no
    contact, reminders off or channel none plans nothing but the crisis-resources message.
    `adherence_done_until` and `journal_done_until` are the due times of the patient's last
    adherence reminder and journal prompt already sent or failed."""
    planned = crisis_resources_message(facts, consent)
    if consent is None or not consent.wants_reminders:
        return planned
    for trial in facts.trials.values():
        if trial.running:
            planned += trial_reviews(facts, trial)
    start = facts.adherence_series_start
    if consent.wants_adherence and start is not None:
        after = max(now - STALE_AFTER, adherence_done_until or now - STALE_AFTER)
        planned.append(next_adherence(facts, start, consent.adherence, after))
    if consent.wants_journal_prompts:
        # Never one due before the patient opted in, nor one already stale.
        after = max(t for t in (now - STALE_AFTER, journal_done_until, consent.journal_since) if t)
        planned.append(next_journal_prompt(facts, after))
    for referral in facts.referrals.values():
        if referral.appointment_at is not None and referral.open:
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


def withdrawal_reason(
    facts: PatientFacts, consent: ContactPreferences | None, existing: ExistingReminder
) -> str:
    if existing.kind is ReminderKind.CRISIS_RESOURCES:
        if facts.crisis_since is None:
            return "urgency_lowered"
        return "no_contact" if consent is None or consent.crisis_channel is None else "superseded"
    if consent is None or not consent.wants_reminders:
        return "opted_out"
    if existing.kind is ReminderKind.ADHERENCE:
        if not consent.wants_adherence:
            return "opted_out"
        return "trial_completed" if facts.adherence_series_start is None else "superseded"
    if existing.kind is ReminderKind.JOURNAL_PROMPT:
        return "superseded" if consent.wants_journal_prompts else "opted_out"
    if existing.trial_id:
        trial = facts.trials.get(existing.trial_id)
        if trial and trial.completed:
            return "trial_completed"
    if existing.referral_id:
        referral = facts.referrals.get(existing.referral_id)
        if referral and referral.cancelled:
            return "referral_cancelled"
        if referral and referral.completed:
            return "referral_completed"
        lead = APPOINTMENT_LEADS.get(existing.kind)
        if (
            referral
            and referral.appointment_at
            and lead
            and existing.due_at != referral.appointment_at - lead
        ):
            return "rescheduled"
    return "superseded"


def send_at(p: PlannedReminder, now: datetime, timezone: str) -> datetime:
    """When a planned reminder goes, seen at `now`: a time that has passed while it is quiet
    hours waits for 08:00 (CLINICAL.md section 8). The delivery loop checks again when it
    sends, for what passes the time here (a backlog, a retry)."""
    if not keeps_quiet_hours(p.kind):
        return p.deliver_at
    return QUIET_HOURS.send_at(p.deliver_at, now, timezone)


def _off_plan(e: ExistingReminder, due_at: datetime, deliver_at: datetime, now: datetime) -> bool:
    if e.due_at != due_at:
        return True
    # Both times passed: it is due either way (the delivery loop may have held it over
    # quiet hours): pulling it back would only undo that.
    return e.deliver_at != deliver_at and not (e.deliver_at <= now and deliver_at <= now)


def reconcile(
    planned: list[PlannedReminder],
    existing: list[ExistingReminder],
    now: datetime,
    facts: PatientFacts,
    consent: ContactPreferences | None,
) -> list[Decision]:
    """Schedule what is planned and missing (unless already stale), move what is planned for
    another time, cancel what is pending and no longer planned. Sent and failed reminders are
    history: never touched. A time already passed is kept out of quiet hours from `now`."""
    by_id = {e.reminder_id: e for e in existing}
    wanted = {p.reminder_id: p for p in planned}
    decisions: list[Decision] = []
    for rid, p in wanted.items():
        e = by_id.get(rid)
        deliver_at = send_at(p, now, facts.zone)
        if e is None or e.status == "cancelled":
            # Crisis resources are never stale: they go while the urgency stays raised.
            if p.deliver_at >= now - STALE_AFTER or p.kind is ReminderKind.CRISIS_RESOURCES:
                decisions.append(Schedule(replace(p, deliver_at=deliver_at)))
        elif e.status == "scheduled" and _off_plan(e, p.due_at, deliver_at, now):
            decisions.append(Move(rid, p.due_at, deliver_at))
    for rid, e in by_id.items():
        if e.status == "scheduled" and rid not in wanted:
            decisions.append(Cancel(rid, withdrawal_reason(facts, consent, e)))
    return decisions
