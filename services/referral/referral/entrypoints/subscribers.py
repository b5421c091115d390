"""referral's subscribers: clinic access from intake, and pathway's referral advice (handled
by referral.handlers.take_advice)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from care_shared.clock import Clock
from care_shared.contracts import EventData
from care_shared.contracts.pathway import AssessmentChanged
from care_shared.envelope import Envelope
from care_shared.eventstore import EventStore
from care_shared.seen import record_seen
from care_shared.service import project_access
from referral import handlers
from referral.adapters.records import Referrals

PATHWAY_CONSUMER = "referral-pathway"


async def on_intake_event(session: AsyncSession, envelope: Envelope, payload: EventData) -> None:
    """Only access matters here: clinic keys and which clinic owns which patient."""
    await project_access(session, envelope, payload)


def pathway_handler(store: EventStore, clock: Clock) -> Callable:
    referrals = Referrals(store)

    async def on_pathway_event(session: AsyncSession, envelope: Envelope, payload: EventData) -> None:
        await project_access(session, envelope, payload)
        if isinstance(payload, AssessmentChanged):
            await record_seen(
                session, PATHWAY_CONSUMER, envelope, payload.patient_id, caused_by=payload.as_of_event
            )
            # Ordered by pathway's stream position (origin checked by the consumer), not by ids.
            await handlers.take_advice(
                session, referrals, envelope.clinicid, payload, clock.now(), envelope.sequence
            )

    return on_pathway_event
