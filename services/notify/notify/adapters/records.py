"""Loading and storing what notify knows: patient facts, contact and consent, reminders.
`replan` is the one load-decide-append step every change goes through: an event from another
service, a contact update, a reminder sent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from care_shared.auth import patient_clinics
from care_shared.contracts import EventData, decode
from care_shared.contracts.intake import TrialKind
from care_shared.contracts.notify import ReminderKind, ReminderMoved, ReminderScheduled
from care_shared.contracts.pathway import Urgency
from care_shared.eventstore import EventStore, NewEvent
from care_shared.sql import upsert, utc
from notify.adapters.tables import contacts, patient_facts, referral_facts, reminders, trial_facts
from notify.domain import reminder as rem
from notify.domain import schedule
from notify.domain.contact import AdherenceFrequency, ContactChannel, ContactPreferences


def reminder_stream(reminder_id: str) -> str:
    return f"reminder-{reminder_id}"


async def lock_patient(session: AsyncSession, patient_id: str) -> None:
    """Every change to a patient's facts or reminders holds this row's lock (PostgreSQL), so
    two consumers working on one patient decide one after the other. SQLite has one writer."""
    await session.execute(
        upsert(session)(patient_facts)
        .values(patient_id=patient_id, urgency=Urgency.ROUTINE.value, suicidality_flagged=False)
        .on_conflict_do_nothing()
    )
    if session.bind.dialect.name == "postgresql":
        await session.execute(
            select(patient_facts.c.patient_id)
            .where(patient_facts.c.patient_id == patient_id)
            .with_for_update()
        )


async def load_facts(session: AsyncSession, patient_id: str) -> schedule.PatientFacts:
    row = (
        await session.execute(select(patient_facts).where(patient_facts.c.patient_id == patient_id))
    ).first()
    facts = schedule.PatientFacts(patient_id)
    if row:
        facts.birth_year, facts.timezone, facts.country = row.birth_year, row.timezone, row.country
        facts.urgency, facts.suicidality_flagged = Urgency(row.urgency), row.suicidality_flagged
        facts.crisis_since, facts.crisis_raised_at = row.crisis_since, utc(row.crisis_raised_at)
    for t in await session.execute(select(trial_facts).where(trial_facts.c.patient_id == patient_id)):
        kind = TrialKind(t.kind) if t.kind else None
        facts.trials[t.trial_id] = schedule.TrialFacts(t.trial_id, t.started_on, t.completed, kind)
    for r in await session.execute(select(referral_facts).where(referral_facts.c.patient_id == patient_id)):
        facts.referrals[r.referral_id] = schedule.ReferralFacts(
            r.referral_id, utc(r.appointment_at), r.cancelled, r.completed
        )
    return facts


async def load_contact(session: AsyncSession, patient_id: str) -> ContactPreferences | None:
    row = (await session.execute(select(contacts).where(contacts.c.patient_id == patient_id))).first()
    if row is None:
        return None
    return ContactPreferences(
        row.email,
        row.phone,
        ContactChannel(row.channel),
        row.reminders,
        AdherenceFrequency(row.adherence),
        row.journal_prompts,
        utc(row.journal_since),
    )


async def save_contact(
    session: AsyncSession, patient_id: str, prefs: ContactPreferences, at: datetime
) -> None:
    """`journal_since` is when the patient opted in to journal prompts: kept while they stay
    on, set when they are turned on, cleared when off."""
    before = await load_contact(session, patient_id)
    since = None
    if prefs.journal_prompts:
        since = before.journal_since if before and before.journal_prompts and before.journal_since else at
    values = {
        "email": prefs.email,
        "phone": prefs.phone,
        "channel": prefs.channel.value,
        "reminders": prefs.reminders,
        "adherence": prefs.adherence.value,
        "journal_prompts": prefs.journal_prompts,
        "journal_since": since,
        "updated_at": at,
    }
    stmt = upsert(session)(contacts).values(patient_id=patient_id, **values)
    await session.execute(stmt.on_conflict_do_update(index_elements=["patient_id"], set_=values))


async def existing_reminders(session: AsyncSession, patient_id: str) -> list[schedule.ExistingReminder]:
    rows = await session.execute(select(reminders).where(reminders.c.patient_id == patient_id))
    return [
        schedule.ExistingReminder(
            r.reminder_id,
            ReminderKind(r.kind),
            r.status,
            utc(r.due_at),
            utc(r.deliver_at),
            r.trial_id,
            r.referral_id,
        )
        for r in rows
    ]


async def done_until(session: AsyncSession, patient_id: str, kind: ReminderKind) -> datetime | None:
    """The due time of the patient's last reminder of a series (adherence, journal prompt)
    sent or failed."""
    due = await session.scalar(
        select(func.max(reminders.c.due_at)).where(
            reminders.c.patient_id == patient_id,
            reminders.c.kind == kind.value,
            reminders.c.status.in_([rem.SENT, rem.FAILED]),
        )
    )
    return utc(due)


# The reminder columns its events decide; the rest is the delivery queue's working state.
FROM_EVENTS = (
    "patient_id",
    "kind",
    "status",
    "due_at",
    "deliver_at",
    "trial_id",
    "referral_id",
    "channel",
    "sent_at",
    "failed_at",
    "reason",
    "crisis_resources",
)


def reminder_row(after: rem.Reminder) -> dict[str, Any]:
    """What a reminder's events decide of its row (the rest is the delivery queue's working
    state): the same live and on a rebuild."""
    return {
        "patient_id": after.patient_id,
        "kind": after.kind.value,
        "status": after.status,
        "due_at": after.due_at,
        "deliver_at": after.deliver_at,
        "trial_id": after.trial_id,
        "referral_id": after.referral_id,
        "channel": after.channel.value if after.channel else None,
        "sent_at": after.sent_at,
        "failed_at": after.failed_at,
        "reason": after.reason,
        "crisis_resources": after.crisis_resources,
    }


class ReminderRecords:
    """A reminder's events in its own stream (`reminder-<id>`), and its row in the read model
    written in the same transaction."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def load(self, session: AsyncSession, reminder_id: str) -> tuple[rem.Reminder | None, int]:
        stored = await self.store.read_stream(session, reminder_stream(reminder_id))
        history = [decode(e.type, e.data) for e in stored]
        return rem.fold(history), (stored[-1].version if stored else 0)

    async def append(
        self,
        session: AsyncSession,
        current: rem.Reminder | None,
        version: int,
        event: EventData,
        *,
        queue: dict | None = None,
        traceparent: str | None = None,
    ) -> rem.Reminder:
        """`traceparent`: the trace to carry on where the event has no cause of its own (the
        delivery loop holding a reminder over quiet hours keeps the trace it came from)."""
        reminder_id, patient_id = event.reminder_id, event.patient_id
        clinic_id = (
            await session.execute(
                select(patient_clinics.c.clinic_id).where(patient_clinics.c.patient_id == patient_id)
            )
        ).scalar_one_or_none()
        meta = {"clinicid": clinic_id} if clinic_id else {}
        if traceparent:
            meta["traceparent"] = traceparent
        await self.store.append(
            session,
            reminder_stream(reminder_id),
            version,
            [NewEvent(event.event_type, patient_id, event.to_data(), meta=meta)],
        )
        after, _ = await self.load(session, reminder_id)  # the stream is the truth: fold it
        assert after is not None
        row = {**reminder_row(after), "version": version + 1, **(queue or {})}
        if isinstance(event, ReminderScheduled | ReminderMoved):
            row.setdefault("next_attempt_at", after.deliver_at)
        if isinstance(event, ReminderScheduled):
            row.update(attempts=0, last_error=None, lease_until=None)
        if current is None:
            row.setdefault("attempts", 0)
            await session.execute(insert(reminders).values(reminder_id=reminder_id, **row))
        else:
            await session.execute(
                update(reminders).where(reminders.c.reminder_id == reminder_id).values(**row)
            )
        return after


async def replan(
    session: AsyncSession, store: EventStore, patient_id: str, now: datetime
) -> list[schedule.Decision]:
    """Load the patient's facts, consent and reminders; let the schedule decide; append."""
    await lock_patient(session, patient_id)
    facts = await load_facts(session, patient_id)
    consent = await load_contact(session, patient_id)
    planned = schedule.plan(
        facts,
        consent,
        now,
        adherence_done_until=await done_until(session, patient_id, ReminderKind.ADHERENCE),
        journal_done_until=await done_until(session, patient_id, ReminderKind.JOURNAL_PROMPT),
    )
    decisions = schedule.reconcile(
        planned, await existing_reminders(session, patient_id), now, facts, consent
    )
    records = ReminderRecords(store)
    for d in decisions:
        if isinstance(d, schedule.Schedule):
            p = d.reminder
            current, version = await records.load(session, p.reminder_id)
            event = rem.schedule(
                current,
                ReminderScheduled(
                    reminder_id=p.reminder_id,
                    patient_id=patient_id,
                    kind=p.kind,
                    due_at=p.due_at,
                    deliver_at=p.deliver_at,
                    trial_id=p.trial_id,
                    referral_id=p.referral_id,
                ),
            )
            await records.append(session, current, version, event)
        else:
            current, version = await records.load(session, d.reminder_id)
            assert current is not None
            event = (
                rem.move(current, d.due_at, d.deliver_at)
                if isinstance(d, schedule.Move)
                else rem.cancel(current, d.reason)
            )
            await records.append(session, current, version, event)
    return decisions


def due_filter(now: datetime, wall: datetime):
    return and_(
        reminders.c.status == rem.SCHEDULED,
        reminders.c.next_attempt_at <= now,
        (reminders.c.lease_until.is_(None)) | (reminders.c.lease_until < wall),
    )
