"""pathway's event handlers: load, decide, append.

The clinical engine (CLINICAL.md) lands with issue 3. Until then the assessment is what the
service can honestly say: which intake facts it has taken in, as of which event. It is
stored and published as `assessment-changed`, so the referral and notify services already
receive pathway's events through the real outbox and consumers.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from care_shared.contracts import EventData
from care_shared.contracts.pathway import AssessmentChanged
from care_shared.envelope import Envelope
from care_shared.eventstore import EventStore, NewEvent
from care_shared.seen import record_seen
from care_shared.service import project_access

CONSUMER = "pathway-intake"


def assessment_stream(patient_id: str) -> str:
    return f"assessment-{patient_id}"


class IntakeEventHandler:
    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def __call__(self, session: AsyncSession, envelope: Envelope, payload: EventData) -> None:
        await project_access(session, envelope, payload)
        patient_id = getattr(payload, "patient_id", None)
        if patient_id is None:
            return  # clinic events: access only
        await record_seen(session, CONSUMER, envelope, patient_id)
        stream = assessment_stream(patient_id)
        previous = await self.store.read_stream(session, stream)
        facts = len(previous) + 1
        changed = AssessmentChanged(
            patient_id=patient_id,
            as_of_event=envelope.id,
            assessment={"engine": "pending", "facts_received": facts, "last_fact": envelope.type},
        )
        await self.store.append(
            session,
            stream,
            len(previous),
            [
                NewEvent(
                    type=changed.event_type,
                    subject=patient_id,
                    data=changed.to_data(),
                    meta={"clinicid": envelope.clinicid, "causationid": envelope.id},
                )
            ],
        )
