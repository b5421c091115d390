"""referral's event handlers. Routing and the coordinators' queue land with issue 4; for
now the service keeps clinic access from intake and records the assessments it receives."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from care_shared.contracts import EventData
from care_shared.contracts.pathway import AssessmentChanged
from care_shared.envelope import Envelope
from care_shared.seen import record_seen
from care_shared.service import project_access

PATHWAY_CONSUMER = "referral-pathway"


async def on_intake_event(session: AsyncSession, envelope: Envelope, payload: EventData) -> None:
    """Only access matters here: clinic keys and which clinic owns which patient."""
    await project_access(session, envelope, payload)


async def on_pathway_event(session: AsyncSession, envelope: Envelope, payload: EventData) -> None:
    await project_access(session, envelope, payload)
    if isinstance(payload, AssessmentChanged):
        await record_seen(session, PATHWAY_CONSUMER, envelope, payload.patient_id, caused_by=payload.as_of_event)
