"""pathway's event handler: load the patient's projection, take the event in, and when the
assessment changed in what is acted on (`same_assessment`), append `assessment-changed`
(published through the outbox)."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from care_shared.consumer import PoisonEvent, PositionTaken
from care_shared.contracts import EventData
from care_shared.contracts.pathway import AssessmentChanged
from care_shared.envelope import Envelope
from care_shared.eventstore import ConcurrencyError, EventStore, NewEvent
from care_shared.seen import position_holder, record_seen
from care_shared.service import project_access
from pathway.engine import PatientFacts
from pathway.projection import PatientProjection, same_assessment
from pathway.tables import patient_assessments

CONSUMER = "pathway-intake"


def assessment_stream(patient_id: str) -> str:
    return f"assessment-{patient_id}"


class ProjectionChanged(ConcurrencyError):
    """Another replica updated this patient first: take the event in again from a fresh read."""


async def load_projection(
    session: AsyncSession, patient_id: str
) -> tuple[PatientProjection, dict | None, int | None]:
    query = sa.select(patient_assessments).where(patient_assessments.c.patient_id == patient_id)
    if session.bind.dialect.name == "postgresql":
        # Replicas handling two events of one patient take turns instead of colliding.
        query = query.with_for_update()
    row = (await session.execute(query)).first()
    if row is None:
        return PatientProjection.new(patient_id), None, None
    return (
        PatientProjection(PatientFacts.from_json(row.facts), dict(row.pending)),
        row.assessment,
        row.row_version,
    )


async def save_projection(
    session: AsyncSession,
    projection: PatientProjection,
    assessment: dict | None,
    clinic_id: str | None,
    row_version: int | None,
) -> None:
    values = {
        "clinic_id": clinic_id,
        "applied_through": projection.facts.applied_through,
        "facts": projection.facts.to_json(),
        "pending": projection.pending,
        "assessment": assessment,
        "updated_at": datetime.now(UTC),
    }
    pid = projection.facts.patient_id
    if row_version is None:
        await session.execute(sa.insert(patient_assessments).values(patient_id=pid, row_version=1, **values))
        return
    result = await session.execute(
        sa.update(patient_assessments)
        .where(patient_assessments.c.patient_id == pid, patient_assessments.c.row_version == row_version)
        .values(row_version=row_version + 1, **values)
    )
    if result.rowcount != 1:
        raise ProjectionChanged(f"patient-assessment-{pid}", row_version)


class IntakeEventHandler:
    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def __call__(self, session: AsyncSession, envelope: Envelope, payload: EventData) -> None:
        await project_access(session, envelope, payload)
        patient_id = getattr(payload, "patient_id", None)
        if patient_id is None:
            return  # clinic events: access only
        if envelope.sequence is None:
            raise PoisonEvent(f"intake event {envelope.id} has no stream sequence")
        # The patient's facts are ordered by intake's stream version: a second event claiming
        # a version already taken is refused loudly (never dropped as a "duplicate").
        if held := await position_holder(session, CONSUMER, patient_id, envelope):
            raise PositionTaken(envelope.sequence, held, envelope.id)
        await record_seen(session, CONSUMER, envelope, patient_id)

        projection, previous, row_version = await load_projection(session, patient_id)
        if not projection.add(envelope.sequence, envelope.id, envelope.type, envelope.data):
            await save_projection(session, projection, previous, envelope.clinicid, row_version)
            return
        assessment = projection.assessment()
        await save_projection(session, projection, assessment, envelope.clinicid, row_version)
        if same_assessment(previous, assessment):
            return
        data = {"patient_id": patient_id, "as_of_event": assessment["as_of_event"], "assessment": assessment}
        AssessmentChanged.model_validate(data)  # what we publish must meet our own contract
        stream = assessment_stream(patient_id)
        await self.store.append(
            session,
            stream,
            await self.store.current_version(session, stream),
            [
                NewEvent(
                    type=AssessmentChanged.event_type,
                    subject=patient_id,
                    data=data,
                    meta={"clinicid": envelope.clinicid, "causationid": envelope.id},
                )
            ],
        )
