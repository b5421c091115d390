"""Loading a patient's record from its stream and appending what a command decided."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.ext.asyncio import AsyncSession

from care_shared.auth import Clinic, ensure_patient_of
from care_shared.contracts import EventData, decode
from care_shared.eventstore import EventStore, NewEvent, StoredEvent
from care_shared.problems import Conflict, InvalidField, NotFound
from intake import domain


def patient_stream(patient_id: str) -> str:
    return f"patient-{patient_id}"


def clinic_stream(clinic_id: str) -> str:
    return f"clinic-{clinic_id}"


class PatientRecords:
    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def history(self, session: AsyncSession, clinic: Clinic, patient_id: str) -> list[StoredEvent]:
        await ensure_patient_of(session, clinic, patient_id)
        return await self.store.read_stream(session, patient_stream(patient_id))

    async def load(
        self, session: AsyncSession, clinic: Clinic, patient_id: str
    ) -> tuple[domain.Patient, int]:
        stored = await self.history(session, clinic, patient_id)
        patient = domain.fold([decode(e.type, e.data) for e in stored])
        if patient is None:
            raise NotFound("no such patient", field="patient_id")
        return patient, stored[-1].version

    async def append(
        self, session: AsyncSession, clinic: Clinic, patient_id: str, version: int, event: EventData
    ) -> StoredEvent:
        [stored] = await self.store.append(
            session,
            patient_stream(patient_id),
            version,
            [
                NewEvent(
                    type=event.event_type,
                    subject=patient_id,
                    data=event.to_data(),
                    meta={"clinicid": clinic.clinic_id},
                )
            ],
        )
        return stored


@contextmanager
def clinical_rules() -> Iterator[None]:
    """Translate the domain's refusals into the problems a clinic sees."""
    try:
        yield
    except domain.Rejected as exc:
        raise InvalidField(exc.reason, field=exc.field, **exc.extra) from None
    except domain.UnknownTrial:
        raise NotFound("no such trial for this patient", field="trial_id") from None
    except domain.UnknownEpisode:
        raise NotFound("no such episode for this patient", field="episode_id") from None
    except domain.TrialAlreadyCompleted:
        raise Conflict("this trial is already completed", field="trial_id") from None
    except domain.NoEpisode:
        raise Conflict(
            "record the patient's episode first (trials, workup and preferences belong to it)",
            field="episode",
        ) from None
