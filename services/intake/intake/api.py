"""intake's REST API (DESIGN.md section 6): each POST is one event in the patient's stream."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import insert, select

from care_shared.auth import Clinic, record_patient_clinic
from care_shared.contracts.intake import (
    AgentDose,
    Diagnosis,
    Instrument,
    Outcome,
    Score,
    Severity,
    Sex,
    SuicideRisk,
    TrialKind,
)
from care_shared.envelope import new_id
from care_shared.idempotency import run_command
from care_shared.problems import Conflict
from care_shared.service import current_clinic, runtime_of
from intake import domain
from intake.records import PatientRecords, clinical_rules
from intake.tables import patients

router = APIRouter(prefix="/v1", tags=["patients"])

IDEMPOTENCY_NOTE = "Send an `Idempotency-Key` header: a retry returns the first answer and stores nothing again."


class Strict(BaseModel):
    # NaN and Infinity (1e400 parses as Infinity) are no dose, score or percentage: a 422
    # naming the field, never a stored Infinity that JSON cannot carry.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class PatientIn(Strict):
    external_id: str = Field(min_length=1, max_length=64, description="The clinic's own reference")
    birth_year: int
    sex: Sex
    timezone: str = Field(description="IANA time zone, e.g. Europe/London")


class EpisodeIn(Strict):
    onset_date: date
    severity: Severity | None = None
    psychotic_features: bool = False
    diagnosis: Diagnosis = Diagnosis.MDD


class EpisodePatch(Strict):
    diagnosis: Diagnosis | None = None
    severity: Severity | None = None
    psychotic_features: bool | None = None


class TrialIn(Strict):
    kind: TrialKind
    agent: str | None = Field(default=None, min_length=1, max_length=80)
    agents: list[AgentDose] | None = Field(default=None, max_length=6)
    dose_mg_per_day: float | None = Field(default=None, gt=0)
    started_on: date
    baseline: Score | None = None

    @model_validator(mode="after")
    def _one_way_to_name_agents(self) -> TrialIn:
        if self.agent and self.agents:
            raise ValueError("give either agent (with dose_mg_per_day) or agents, not both")
        return self

    def agent_doses(self) -> list[AgentDose]:
        if self.agents:
            return self.agents
        if self.agent:
            return [AgentDose(agent=self.agent, dose_mg_per_day=self.dose_mg_per_day)]
        return []


class CompletionIn(Strict):
    ended_on: date
    max_dose_mg_per_day: float | None = Field(default=None, gt=0)
    adherence_pct: float | None = Field(default=None, ge=0, le=100)
    sessions: int | None = Field(default=None, ge=0, le=1000)
    outcome: Outcome | None = None
    final: Score | None = None


class AssessmentIn(Strict):
    instrument: Instrument
    score: int
    item9: int | None = None
    taken_on: date
    suicide_risk: SuicideRisk | None = None


def _created(status: int, body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, status_code=status)


@router.post("/patients", status_code=201, summary="Register a patient", description=IDEMPOTENCY_NOTE)
async def register_patient(body: PatientIn, request: Request, clinic: Clinic = Depends(current_clinic)):
    rt = runtime_of(request)
    records = PatientRecords(rt.store)

    async def command(session):
        existing = (
            await session.execute(
                select(patients.c.patient_id).where(
                    patients.c.clinic_id == clinic.clinic_id, patients.c.external_id == body.external_id
                )
            )
        ).scalar_one_or_none()
        if existing:
            raise Conflict(
                "this clinic already registered a patient with that external_id",
                field="external_id",
                patient_id=existing,
            )
        patient_id = new_id()
        with clinical_rules():
            event = domain.register_patient(
                patient_id=patient_id,
                clinic_id=clinic.clinic_id,
                external_id=body.external_id,
                birth_year=body.birth_year,
                sex=body.sex,
                timezone=body.timezone,
                today=rt.clock.now().date(),
            )
        stored = await records.append(session, clinic, patient_id, 0, event)
        await session.execute(
            insert(patients).values(
                patient_id=patient_id,
                clinic_id=clinic.clinic_id,
                external_id=body.external_id,
                registered_at=datetime.now(UTC),
            )
        )
        await record_patient_clinic(session, patient_id, clinic.clinic_id)
        return 201, {"id": patient_id, **event.to_data(), "event_id": stored.event_id}

    status, out = await run_command(rt.db, request, clinic.clinic_id, command)
    if "id" in out:
        request.state.audit_patient_ids = [out["id"]]  # the access audit names the new patient
    return _created(status, out)


@router.get("/patients/{patient_id}", summary="The patient's record as it stands")
async def get_patient(patient_id: str, request: Request, clinic: Clinic = Depends(current_clinic)):
    rt = runtime_of(request)
    async with rt.db.read() as session:
        patient, version = await PatientRecords(rt.store).load(session, clinic, patient_id)
    return {
        "id": patient.patient_id,
        "external_id": patient.external_id,
        "birth_year": patient.birth_year,
        "sex": patient.sex,
        "timezone": patient.timezone,
        "current_episode_id": patient.current_episode_id,
        "episodes": [
            {
                "id": e.episode_id,
                "onset_date": e.onset_date,
                "diagnosis": e.diagnosis,
                "severity": e.severity,
                "psychotic_features": e.psychotic_features,
            }
            for e in patient.episodes.values()
        ],
        "trials": [
            {
                "id": t.trial_id,
                "episode_id": t.episode_id,
                "kind": t.kind,
                "agents": [a.model_dump(exclude_none=True) for a in t.agents],
                "started_on": t.started_on,
                "ended_on": t.ended_on,
                "outcome": t.outcome,
                "flags": ["unknown_agent"] if t.unknown_agents else [],
            }
            for t in patient.trials.values()
        ],
        "assessments": patient.assessments,
        "version": version,
    }


@router.get("/patients/{patient_id}/events", summary="The patient's history, in order")
async def patient_events(patient_id: str, request: Request, clinic: Clinic = Depends(current_clinic)):
    rt = runtime_of(request)
    async with rt.db.read() as session:
        history = await PatientRecords(rt.store).history(session, clinic, patient_id)
    return [
        {"id": e.event_id, "type": e.type, "sequence": e.version, "time": e.recorded_at, "data": e.data}
        for e in history
    ]


async def _patient_command(request: Request, clinic: Clinic, patient_id: str, decide) -> JSONResponse:
    """Load the patient, let the domain decide, append the event; 201 with the new ids."""
    rt = runtime_of(request)
    records = PatientRecords(rt.store)

    async def command(session):
        patient, version = await records.load(session, clinic, patient_id)
        today = domain.today_for(patient.timezone, rt.clock.now())
        with clinical_rules():
            event, body = decide(patient, today)
        if event is None:
            return 200, body
        stored = await records.append(session, clinic, patient_id, version, event)
        return 201, {**body, "event_id": stored.event_id}

    return _created(*await run_command(rt.db, request, clinic.clinic_id, command))


@router.post("/patients/{patient_id}/episodes", status_code=201, summary="Record the current depressive episode", description=IDEMPOTENCY_NOTE)
async def open_episode(patient_id: str, body: EpisodeIn, request: Request, clinic: Clinic = Depends(current_clinic)):
    def decide(patient, today):
        episode_id = new_id()
        event = domain.open_episode(
            patient,
            episode_id=episode_id,
            onset_date=body.onset_date,
            severity=body.severity,
            psychotic_features=body.psychotic_features,
            diagnosis=body.diagnosis,
            today=today,
        )
        return event, {"id": episode_id, **event.to_data()}

    return await _patient_command(request, clinic, patient_id, decide)


@router.patch("/patients/{patient_id}/episodes/{episode_id}", summary="Revise diagnosis, severity or psychotic features")
async def revise_episode(patient_id: str, episode_id: str, body: EpisodePatch, request: Request, clinic: Clinic = Depends(current_clinic)):
    def decide(patient, today):
        event = domain.revise_episode(
            patient,
            episode_id,
            diagnosis=body.diagnosis,
            severity=body.severity,
            psychotic_features=body.psychotic_features,
        )
        changed = event.to_data()
        if set(changed) <= {"patient_id", "episode_id"}:
            return None, {"id": episode_id, "changed": False}  # nothing new: store nothing
        return event, {"id": episode_id, "changed": True, **changed}

    response = await _patient_command(request, clinic, patient_id, decide)
    response.status_code = 200
    return response


@router.post("/patients/{patient_id}/trials", status_code=201, summary="Start a treatment trial", description=IDEMPOTENCY_NOTE)
async def start_trial(patient_id: str, body: TrialIn, request: Request, clinic: Clinic = Depends(current_clinic)):
    def decide(patient, today):
        trial_id = new_id()
        event = domain.start_trial(
            patient,
            trial_id=trial_id,
            kind=body.kind,
            agents=body.agent_doses(),
            started_on=body.started_on,
            baseline=body.baseline,
            today=today,
        )
        flags = ["unknown_agent"] if event.unknown_agents else []
        return event, {"id": trial_id, **event.to_data(), "flags": flags}

    return await _patient_command(request, clinic, patient_id, decide)


@router.post("/patients/{patient_id}/trials/{trial_id}/completion", status_code=201, summary="Complete a trial (emits trial-completed)", description=IDEMPOTENCY_NOTE)
async def complete_trial(patient_id: str, trial_id: str, body: CompletionIn, request: Request, clinic: Clinic = Depends(current_clinic)):
    def decide(patient, today):
        event = domain.complete_trial(
            patient,
            trial_id,
            ended_on=body.ended_on,
            max_dose_mg_per_day=body.max_dose_mg_per_day,
            adherence_pct=body.adherence_pct,
            sessions=body.sessions,
            outcome=body.outcome,
            final=body.final,
            today=today,
        )
        return event, {"id": trial_id, "status": "completed", **event.to_data()}

    return await _patient_command(request, clinic, patient_id, decide)


@router.post("/patients/{patient_id}/assessments", status_code=201, summary="Record a symptom assessment", description=IDEMPOTENCY_NOTE)
async def record_assessment(patient_id: str, body: AssessmentIn, request: Request, clinic: Clinic = Depends(current_clinic)):
    def decide(patient, today):
        assessment_id = new_id()
        event = domain.record_assessment(
            patient,
            assessment_id=assessment_id,
            instrument=body.instrument,
            score=body.score,
            item9=body.item9,
            taken_on=body.taken_on,
            suicide_risk=body.suicide_risk,
            today=today,
        )
        return event, {"id": assessment_id, **event.to_data()}

    return await _patient_command(request, clinic, patient_id, decide)
