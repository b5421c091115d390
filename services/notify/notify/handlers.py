"""notify's event handlers: keep clinic access, record what arrived (the seen log), keep the
facts the schedule needs, then replan the patient's reminders in the same transaction.

Order is not guaranteed: a trial may complete before notify hears it started, a birth year may
arrive after the trial. Each fact is stored so that any order gives the same facts (a
completion is never undone by a late start; an older assessment never overwrites a newer
urgency; a late, older appointment never moves a newer one), and the plan is a function of
the facts, so the reminders converge.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from care_shared.clock import Clock
from care_shared.consumer import PoisonEvent
from care_shared.contracts import EventData
from care_shared.contracts.intake import (
    AssessmentRecorded,
    PatientRegistered,
    SuicideRisk,
    TrialCompleted,
    TrialStarted,
)
from care_shared.contracts.pathway import AssessmentChanged, Urgency
from care_shared.contracts.referral import ReferralCancelled, ReferralCompleted, ReferralScheduled
from care_shared.envelope import Envelope
from care_shared.eventstore import EventStore
from care_shared.seen import record_seen
from care_shared.service import project_access
from notify.adapters.records import lock_patient, replan, upsert
from notify.adapters.tables import patient_facts, referral_facts, trial_facts
from notify.domain import urgency

SCHEDULE_INPUTS = (
    PatientRegistered,
    TrialStarted,
    TrialCompleted,
    AssessmentRecorded,
    AssessmentChanged,
    ReferralScheduled,
    ReferralCancelled,
    ReferralCompleted,
)


def recorder(consumer: str, store: EventStore, clock: Clock) -> Callable:
    async def handle(session: AsyncSession, envelope: Envelope, payload: EventData) -> None:
        await project_access(session, envelope, payload)
        patient_id = getattr(payload, "patient_id", None)
        if not patient_id:
            return
        await record_seen(
            session, consumer, envelope, patient_id, caused_by=getattr(payload, "as_of_event", None)
        )
        if isinstance(payload, SCHEDULE_INPUTS):
            await lock_patient(session, patient_id)
            now = clock.now()
            await keep_fact(session, envelope, payload, now)
            await replan(session, store, patient_id, now)

    return handle


def suicidality(e: AssessmentRecorded) -> bool:
    # CLINICAL.md section 5: PHQ-9 item 9 >= 1 or a clinician-flagged risk.
    return (e.item9 or 0) >= 1 or e.suicide_risk in (SuicideRisk.FLAGGED, SuicideRisk.ACTIVE_INTENT)


async def keep_fact(session: AsyncSession, envelope: Envelope, e: EventData, now: datetime) -> None:
    pid = e.patient_id
    match e:
        case PatientRegistered():
            await session.execute(
                update(patient_facts)
                .where(patient_facts.c.patient_id == pid)
                .values(birth_year=e.birth_year, timezone=e.timezone, country=e.country)
            )
        case TrialStarted():
            stmt = upsert(session)(trial_facts).values(
                trial_id=e.trial_id,
                patient_id=pid,
                started_on=e.started_on,
                completed=False,
                kind=e.kind.value,
            )
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=["trial_id"], set_={"started_on": e.started_on, "kind": e.kind.value}
                )
            )
        case TrialCompleted():
            stmt = upsert(session)(trial_facts).values(
                trial_id=e.trial_id, patient_id=pid, started_on=None, completed=True
            )
            await session.execute(
                stmt.on_conflict_do_update(index_elements=["trial_id"], set_={"completed": True})
            )
        case AssessmentRecorded() if suicidality(e):
            # Kept once seen (*convention*): it brings the first review forward, never back.
            await session.execute(
                update(patient_facts)
                .where(patient_facts.c.patient_id == pid)
                .values(suicidality_flagged=True)
            )
        case AssessmentChanged():
            row = (
                await session.execute(select(patient_facts).where(patient_facts.c.patient_id == pid))
            ).one()
            # Newer is later in pathway's stream for the patient (the envelope's sequence, from
            # pathway's own stream: the consumer checked its origin), never a larger id.
            if envelope.sequence is None:
                raise PoisonEvent(f"assessment-changed {envelope.id} has no stream position")
            before = urgency.UrgencyFacts(
                Urgency(row.urgency),
                row.urgency_as_of,
                row.urgency_position,
                row.crisis_since,
                row.crisis_raised_at,
            )
            after = urgency.take(
                before, urgency.UrgencyChange(e.assessment.urgency, e.as_of_event, envelope.sequence, now)
            )
            if after == before:
                return
            await session.execute(
                update(patient_facts)
                .where(patient_facts.c.patient_id == pid)
                .values(
                    urgency=after.urgency.value,
                    urgency_as_of=after.as_of_event,
                    urgency_position=after.position,
                    crisis_since=after.crisis_since,
                    crisis_raised_at=after.crisis_raised_at,
                )
            )
        case ReferralScheduled():
            order = [envelope.sequence or 0, envelope.time.isoformat()]
            row = (
                await session.execute(
                    select(referral_facts).where(referral_facts.c.referral_id == e.referral_id)
                )
            ).first()
            if row is None:
                await session.execute(
                    referral_facts.insert().values(
                        referral_id=e.referral_id,
                        patient_id=pid,
                        appointment_at=e.appointment_at,
                        cancelled=False,
                        completed=False,
                        last_event=order,
                    )
                )
            elif row.appointment_at is None or _older(row.last_event, order):
                await session.execute(
                    update(referral_facts)
                    .where(referral_facts.c.referral_id == e.referral_id)
                    .values(appointment_at=e.appointment_at, last_event=order)
                )
        case ReferralCancelled():
            # A cancellation ends the referral whenever it arrives; a new booking is a new referral.
            stmt = upsert(session)(referral_facts).values(
                referral_id=e.referral_id, patient_id=pid, cancelled=True, completed=False
            )
            await session.execute(
                stmt.on_conflict_do_update(index_elements=["referral_id"], set_={"cancelled": True})
            )
        case ReferralCompleted():
            # Completed ends it too (referral allows completing before the appointment); a
            # decline comes before any booking (referral re-routes it), so it ends nothing here.
            stmt = upsert(session)(referral_facts).values(
                referral_id=e.referral_id, patient_id=pid, cancelled=False, completed=True
            )
            await session.execute(
                stmt.on_conflict_do_update(index_elements=["referral_id"], set_={"completed": True})
            )


def _older(stored: list | None, incoming: list) -> bool:
    return stored is None or tuple(stored) < tuple(incoming)
