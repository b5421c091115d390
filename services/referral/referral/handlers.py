"""referral's handlers: every load-decide-append, for the coordinators' commands and for the
events referral consumes, as plain functions named for what they handle. Routes and
subscribers (referral.entrypoints) parse, call one of these, and present; the rules are the
domain's (referral.domain), the storage the adapters' (referral.adapters)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from opentelemetry.instrumentation.utils import suppress_instrumentation
from sqlalchemy.ext.asyncio import AsyncSession

from care_shared.contracts import EventData
from care_shared.contracts.pathway import AssessmentChanged
from care_shared.contracts.referral import ReferralOpened
from care_shared.eventstore import ConcurrencyError
from referral import domain
from referral.adapters.records import (
    Referrals,
    clinic_loads,
    directory,
    latest_referral_for_need,
    patient_region,
    record_need,
    waiting_since,
)

log = logging.getLogger(__name__)

Decide = Callable[[AsyncSession, domain.Referral, datetime], Awaitable[list[EventData]]]


async def work_task(
    session: AsyncSession,
    referrals: Referrals,
    task_id: str,
    now: datetime,
    decide: Decide,
    on_patient: Callable[[str], None] = lambda _: None,
) -> domain.Referral:
    """A coordinator's command on a task: load the referral, let the domain decide, append at
    the version it was decided on (a refusal is a problem+json as it is)."""
    referral, owner = await referrals.load_or_404(session, task_id)
    on_patient(referral.patient_id)
    decided = await decide(session, referral, now)
    return await referrals.append(session, referral, owner, decided)


async def take_advice(
    session: AsyncSession,
    referrals: Referrals,
    referring_clinic_id: str | None,
    changed: AssessmentChanged,
    now: datetime,
    position: int | None = None,
) -> None:
    """Pathway's assessment changed: update the patient's open referral for the need it
    advises, or open the next one (the domain decides which). Redelivered and reordered
    events converge: a referral's id is derived from patient, need and its number, the
    (patient, need, number) key is unique, and advice older than what the last referral
    already reflects changes nothing."""
    advice = changed.assessment.referral
    if not advice.advised:
        return
    wanted = domain.Advice(
        urgency=changed.assessment.urgency,
        capabilities=tuple(advice.capabilities),
        reasons=tuple(advice.reasons),
        as_of_event=changed.as_of_event,
        as_of_position=position,
    )
    need = domain.need_of(wanted.capabilities)
    last = await latest_referral_for_need(session, changed.patient_id, need)
    referral, owner = await referrals.load(session, last.referral_id) if last else (None, None)
    last_sequence = last.sequence if last else 0
    decided = domain.take_advice(
        referral,
        last_sequence=last_sequence,
        patient_id=changed.patient_id,
        advice=wanted,
        region=await patient_region(session, referring_clinic_id),
        now=now,
        clinics=await directory(session),
        loads=await clinic_loads(session, now),
    )
    if not decided:
        return
    if isinstance(decided[0], ReferralOpened):
        await record_need(session, changed.patient_id, need, last_sequence + 1, decided[0].referral_id)
        referral, owner = None, referring_clinic_id
    await referrals.append(session, referral, owner, decided)


async def escalate_due(db, referrals: Referrals, now: datetime) -> list[str]:
    """Escalate every task due now; returns the referral ids escalated by this call."""
    # The sweep's look at the queue would be a stray root trace every few seconds; an
    # escalation itself is traced through the event it appends.
    with suppress_instrumentation():
        async with db.read() as session:
            # Only a narrowing: nothing is due before it has waited the shortest limit since
            # it was queued or its lease ended. The domain has the word on each one.
            ids = await waiting_since(session, now - min(domain.ESCALATE_AFTER.values()))
            candidates = await referrals.load_many(session, ids)
    due = [rid for rid, (r, _) in candidates.items() if domain.escalation_due(r, now)]
    escalated = []
    for referral_id in sorted(due):
        try:
            async with db.transaction() as session:
                referral, owner = await referrals.load(session, referral_id)
                decided = domain.escalate(referral, now) if referral else []
                if decided:
                    await referrals.append(session, referral, owner, decided)
                    escalated.append(referral_id)
        except ConcurrencyError:
            continue  # someone acted on it meanwhile: the next sweep looks again
    if escalated:
        log.info("tasks escalated", extra={"count": len(escalated)})
    return escalated


def __getattr__(name: str):
    # referral.handlers was the subscribers' module: its names work here for one release.
    if name in {"PATHWAY_CONSUMER", "on_intake_event", "pathway_handler"}:
        from referral.entrypoints import subscribers

        return getattr(subscribers, name)
    raise AttributeError(name)
