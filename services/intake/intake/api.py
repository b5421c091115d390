"""intake's REST API (DESIGN.md section 6): each POST is one event in the patient's stream."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import Field, WithJsonSchema, model_validator
from sqlalchemy import insert, select

from care_shared.auth import Clinic, record_patient_clinic
from care_shared.commands import run_command
from care_shared.contracts.intake import (
    PHQ9_ITEM_LOINC,
    AssessmentSource,
    Comorbidity,
    Diagnosis,
    DoseUnit,
    EctPlacement,
    Instrument,
    Outcome,
    Score,
    Severity,
    Sex,
    SideEffect,
    SuicideRisk,
    TrialKind,
    Trigger,
    WorkupCheck,
    WorkupResult,
)
from care_shared.envelope import new_id
from care_shared.problems import Conflict
from care_shared.requests import Strict
from care_shared.service import current_clinic, runtime_of
from intake import domain
from intake.records import PatientRecords, clinical_rules
from intake.tables import patients

router = APIRouter(prefix="/v1", tags=["patients"])

IDEMPOTENCY_NOTE = (
    "Send an `Idempotency-Key` header: a retry returns the first answer and stores nothing again."
)


class PatientIn(Strict):
    external_id: str = Field(min_length=1, max_length=64, description="The clinic's own reference")
    birth_year: int
    sex: Sex
    timezone: str = Field(description="IANA time zone, e.g. Europe/London")
    country: str | None = Field(
        default=None, pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2, e.g. GB (not UK), US, IE"
    )


class EpisodeIn(Strict):
    onset_date: date
    severity: Severity | None = None
    psychotic_features: bool = False
    diagnosis: Diagnosis = Diagnosis.MDD
    prior_episodes: int | None = Field(default=None, ge=0, le=100, description="Earlier depressive episodes")
    age_at_first_onset: int | None = Field(
        default=None, ge=0, le=120, description="Years, at the first episode"
    )


class EpisodePatch(Strict):
    diagnosis: Diagnosis | None = None
    severity: Severity | None = None
    psychotic_features: bool | None = None


AGENT_NOTE = "Generic or brand name; case, a trailing release form (XR, XL, ...) and salt words are ignored"
DOSE_NOTE = "Daily dose in `unit` (converted to mg in the event)"
UNIT_NOTE = "mg or microgram; none: the agent's table unit (microgram for liothyronine, else mg)"


class AgentDoseIn(Strict):
    agent: str = Field(min_length=1, max_length=80, description=AGENT_NOTE)
    dose_mg_per_day: float | None = Field(default=None, gt=0, le=1_000_000, description=DOSE_NOTE)
    unit: DoseUnit | None = Field(default=None, description=UNIT_NOTE)

    def entered(self) -> domain.DoseIn:
        return domain.DoseIn(self.agent, self.dose_mg_per_day, self.unit)


class TrialIn(Strict):
    kind: TrialKind
    agent: str | None = Field(default=None, min_length=1, max_length=80, description=AGENT_NOTE)
    agents: list[AgentDoseIn] | None = Field(default=None, max_length=6)
    dose_mg_per_day: float | None = Field(default=None, gt=0, le=1_000_000, description=DOSE_NOTE)
    unit: DoseUnit | None = Field(default=None, description=UNIT_NOTE)
    started_on: date
    baseline: Score | None = None

    @model_validator(mode="after")
    def _one_way_to_name_agents(self) -> TrialIn:
        if self.agent and self.agents:
            raise ValueError("give either agent (with dose_mg_per_day) or agents, not both")
        return self

    def agent_doses(self) -> list[domain.DoseIn]:
        if self.agents:
            return [a.entered() for a in self.agents]
        if self.agent:
            return [domain.DoseIn(self.agent, self.dose_mg_per_day, self.unit)]
        return []


class CompletionIn(Strict):
    ended_on: date
    max_dose_mg_per_day: float | None = Field(
        default=None, gt=0, le=1_000_000, description="A single-agent trial's maximum daily dose, in `unit`"
    )
    unit: DoseUnit | None = Field(default=None, description=UNIT_NOTE)
    max_doses: list[AgentDoseIn] | None = Field(
        default=None, max_length=6, description="Each agent's maximum daily dose (a combination's per agent)"
    )
    adherence_pct: float | None = Field(default=None, ge=0, le=100)
    sessions: int | None = Field(default=None, ge=0, le=1000)
    outcome: Outcome | None = None
    final: Score | None = None
    placement: EctPlacement | None = Field(default=None, description="ECT only")


PHQ9_ITEMS_SCHEMA = {
    "anyOf": [
        {
            "type": "array",
            "minItems": 9,
            "maxItems": 9,
            "items": {"type": "integer", "minimum": 0, "maximum": 3},
        },
        {"type": "null"},
    ],
    "description": "PHQ-9 only: the nine answers (0-3) in LOINC panel order ("
    + ", ".join(PHQ9_ITEM_LOINC)
    + "); score and item9 are derived, and must agree if sent",
}


class AssessmentIn(Strict):
    instrument: Instrument
    score: int | None = Field(default=None, description="The total; for a PHQ-9 with items, optional")
    item9: int | None = None
    items: Annotated[list[int | None] | None, WithJsonSchema(PHQ9_ITEMS_SCHEMA)] = Field(
        default=None, max_length=9
    )
    taken_on: date
    suicide_risk: SuicideRisk | None = None


class ComorbidityIn(Strict):
    condition: Comorbidity
    present: bool
    recorded_on: date


class WorkupIn(Strict):
    check: WorkupCheck
    result: WorkupResult
    done_on: date


class PreferenceIn(Strict):
    strategy: str = Field(
        min_length=1,
        max_length=80,
        description="A modality (psychotherapy, esketamine, ketamine, rtms, ect, vns, dbs), augmentation, "
        "combination, or an agent of the drug table (brand names resolved)",
    )
    declined: bool
    recorded_on: date


class JournalIn(Strict):
    entry_on: date
    mood: int = Field(ge=0, le=10, description="0 worst, 10 best")
    side_effects: list[SideEffect] = Field(default=[], max_length=len(SideEffect))
    triggers: list[Trigger] = Field(default=[], max_length=len(Trigger))


def _created(status: int, body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, status_code=status)


async def register(session, rt, clinic: Clinic, body: PatientIn) -> dict[str, Any]:
    """Register a patient in `session`'s transaction: the REST route and the FHIR import share it."""
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
            country=body.country,
        )
    stored = await PatientRecords(rt.store).append(session, clinic, patient_id, 0, event)
    await session.execute(
        insert(patients).values(
            patient_id=patient_id,
            clinic_id=clinic.clinic_id,
            external_id=body.external_id,
            registered_at=datetime.now(UTC),
        )
    )
    await record_patient_clinic(session, patient_id, clinic.clinic_id)
    return {"id": patient_id, **event.to_data(), "event_id": stored.event_id}


@router.post("/patients", status_code=201, summary="Register a patient", description=IDEMPOTENCY_NOTE)
async def register_patient(body: PatientIn, request: Request, clinic: Clinic = Depends(current_clinic)):
    rt = runtime_of(request)

    async def command(session):
        return 201, await register(session, rt, clinic, body)

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
        "country": patient.country,
        "current_episode_id": patient.current_episode_id,
        "episodes": [
            {
                "id": e.episode_id,
                "onset_date": e.onset_date,
                "diagnosis": e.diagnosis,
                "severity": e.severity,
                "psychotic_features": e.psychotic_features,
                "prior_episodes": e.prior_episodes,
                "age_at_first_onset": e.age_at_first_onset,
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
                **({"placement": t.placement} if t.placement else {}),
                "flags": ["unknown_agent"] if t.unknown_agents else [],
            }
            for t in patient.trials.values()
        ],
        "assessments": patient.assessments,
        "comorbidities": [
            {"condition": c, "present": present, "recorded_on": on}
            for c, (present, on) in sorted(patient.comorbidities.items())
        ],
        "workup_checks": patient.workup_checks,
        "preferences": patient.preferences,
        "journal_entries": patient.journal_entries,
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


@router.post(
    "/patients/{patient_id}/episodes",
    status_code=201,
    summary="Record the current depressive episode",
    description=IDEMPOTENCY_NOTE,
)
async def open_episode(
    patient_id: str, body: EpisodeIn, request: Request, clinic: Clinic = Depends(current_clinic)
):
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
            prior_episodes=body.prior_episodes,
            age_at_first_onset=body.age_at_first_onset,
        )
        return event, {"id": episode_id, **event.to_data()}

    return await _patient_command(request, clinic, patient_id, decide)


@router.patch(
    "/patients/{patient_id}/episodes/{episode_id}", summary="Revise diagnosis, severity or psychotic features"
)
async def revise_episode(
    patient_id: str,
    episode_id: str,
    body: EpisodePatch,
    request: Request,
    clinic: Clinic = Depends(current_clinic),
):
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


@router.post(
    "/patients/{patient_id}/trials",
    status_code=201,
    summary="Start a treatment trial",
    description=IDEMPOTENCY_NOTE,
)
async def start_trial(
    patient_id: str, body: TrialIn, request: Request, clinic: Clinic = Depends(current_clinic)
):
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
            single=not body.agents,
        )
        flags = ["unknown_agent"] if event.unknown_agents else []
        return event, {"id": trial_id, **event.to_data(), "flags": flags}

    return await _patient_command(request, clinic, patient_id, decide)


@router.post(
    "/patients/{patient_id}/trials/{trial_id}/completion",
    status_code=201,
    summary="Complete a trial (emits trial-completed)",
    description=IDEMPOTENCY_NOTE,
)
async def complete_trial(
    patient_id: str,
    trial_id: str,
    body: CompletionIn,
    request: Request,
    clinic: Clinic = Depends(current_clinic),
):
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
            unit=body.unit,
            max_doses=[a.entered() for a in body.max_doses] if body.max_doses else None,
            placement=body.placement,
        )
        return event, {"id": trial_id, "status": "completed", **event.to_data()}

    return await _patient_command(request, clinic, patient_id, decide)


@router.post(
    "/patients/{patient_id}/assessments",
    status_code=201,
    summary="Record a symptom assessment",
    description=IDEMPOTENCY_NOTE,
)
async def record_assessment(
    patient_id: str, body: AssessmentIn, request: Request, clinic: Clinic = Depends(current_clinic)
):
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
            items=body.items,
            source=AssessmentSource.CLINICIAN,  # over REST the clinic enters it
        )
        return event, {"id": assessment_id, **event.to_data()}

    return await _patient_command(request, clinic, patient_id, decide)


@router.post(
    "/patients/{patient_id}/comorbidities",
    status_code=201,
    summary="Record a comorbid condition (present or not)",
    description=IDEMPOTENCY_NOTE,
)
async def record_comorbidity(
    patient_id: str, body: ComorbidityIn, request: Request, clinic: Clinic = Depends(current_clinic)
):
    def decide(patient, today):
        record_id = new_id()
        event = domain.record_comorbidity(
            patient,
            record_id=record_id,
            condition=body.condition,
            present=body.present,
            recorded_on=body.recorded_on,
            today=today,
        )
        return event, {"id": record_id, **event.to_data()}

    return await _patient_command(request, clinic, patient_id, decide)


@router.post(
    "/patients/{patient_id}/workup",
    status_code=201,
    summary="Record a pseudo-resistance workup check",
    description=IDEMPOTENCY_NOTE,
)
async def record_workup(
    patient_id: str, body: WorkupIn, request: Request, clinic: Clinic = Depends(current_clinic)
):
    def decide(patient, today):
        record_id = new_id()
        event = domain.record_workup_check(
            patient,
            record_id=record_id,
            check=body.check,
            result=body.result,
            done_on=body.done_on,
            today=today,
        )
        return event, {"id": record_id, **event.to_data()}

    return await _patient_command(request, clinic, patient_id, decide)


@router.post(
    "/patients/{patient_id}/preferences",
    status_code=201,
    summary="Record a treatment preference (a declined strategy)",
    description=IDEMPOTENCY_NOTE,
)
async def record_preference(
    patient_id: str, body: PreferenceIn, request: Request, clinic: Clinic = Depends(current_clinic)
):
    def decide(patient, today):
        record_id = new_id()
        event = domain.record_preference(
            patient,
            record_id=record_id,
            strategy=body.strategy,
            declined=body.declined,
            recorded_on=body.recorded_on,
            today=today,
        )
        return event, {"id": record_id, **event.to_data()}

    return await _patient_command(request, clinic, patient_id, decide)


@router.post(
    "/patients/{patient_id}/journal",
    status_code=201,
    summary="Record a mood-journal entry",
    description=IDEMPOTENCY_NOTE,
)
async def record_journal_entry(
    patient_id: str, body: JournalIn, request: Request, clinic: Clinic = Depends(current_clinic)
):
    def decide(patient, today):
        entry_id = new_id()
        event = domain.record_journal_entry(
            patient,
            entry_id=entry_id,
            entry_on=body.entry_on,
            mood=body.mood,
            side_effects=body.side_effects,
            triggers=body.triggers,
            today=today,
            source=AssessmentSource.CLINICIAN,
        )
        return event, {"id": entry_id, **event.to_data()}

    return await _patient_command(request, clinic, patient_id, decide)
