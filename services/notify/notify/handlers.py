"""notify's event handlers. Reminder schedules land with issue 5; for now the service keeps
clinic access and records what it receives from intake, pathway and referral."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from care_shared.contracts import EventData
from care_shared.envelope import Envelope
from care_shared.seen import record_seen
from care_shared.service import project_access


def recorder(consumer: str):  # noqa: ANN201
    async def handle(session: AsyncSession, envelope: Envelope, payload: EventData) -> None:
        await project_access(session, envelope, payload)
        patient_id = getattr(payload, "patient_id", None)
        if patient_id:
            await record_seen(session, consumer, envelope, patient_id, caused_by=getattr(payload, "as_of_event", None))

    return handle
