"""Events intake publishes on `intake.>`: the clinical facts a partner clinic records.

They carry ids and clinical facts, never names, e-mail addresses or phone numbers.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from care_shared.contracts import EventData, event


class Instrument(StrEnum):
    PHQ9 = "PHQ-9"
    MADRS = "MADRS"
    HAMD17 = "HAM-D-17"


# Total score ranges of each instrument.
SCORE_RANGE: dict[Instrument, tuple[int, int]] = {
    Instrument.PHQ9: (0, 27),
    Instrument.MADRS: (0, 60),
    Instrument.HAMD17: (0, 52),
}


class Severity(StrEnum):
    SUBSYNDROMAL = "subsyndromal"
    MILD = "mild"
    MODERATE = "moderate"
    SEVERE = "severe"


class Diagnosis(StrEnum):
    MDD = "mdd"
    BIPOLAR = "bipolar"
    OTHER = "other"


class TrialKind(StrEnum):
    ANTIDEPRESSANT = "antidepressant"
    AUGMENTATION = "augmentation"
    COMBINATION = "combination"
    PSYCHOTHERAPY = "psychotherapy"
    ESKETAMINE = "esketamine"
    KETAMINE = "ketamine"
    ECT = "ect"
    RTMS = "rtms"
    VNS = "vns"
    DBS = "dbs"


class Outcome(StrEnum):
    REMISSION = "remission"
    RESPONSE = "response"
    PARTIAL_RESPONSE = "partial_response"
    NO_RESPONSE = "no_response"
    INTOLERANCE = "intolerance"


class SuicideRisk(StrEnum):
    NONE = "none"
    FLAGGED = "flagged"
    ACTIVE_INTENT = "active_intent"


class Sex(StrEnum):
    FEMALE = "female"
    MALE = "male"
    INTERSEX = "intersex"
    UNKNOWN = "unknown"


class Score(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    instrument: Instrument
    score: int


class AgentDose(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    agent: str = Field(min_length=1, max_length=80)
    dose_mg_per_day: float | None = Field(default=None, gt=0)


@event
class ClinicRegistered(EventData):
    """A partner clinic joined; `key_sha256` lets every service check its API key."""

    event_type = "care.intake.clinic-registered.v1"
    clinic_id: str
    name: str
    key_sha256: str


@event
class ClinicKeyRotated(EventData):
    """The clinic's key was replaced: `replaces_sha256` stops working, `key_sha256` starts."""

    event_type = "care.intake.clinic-key-rotated.v1"
    clinic_id: str
    key_sha256: str
    replaces_sha256: str


@event
class ClinicKeyRevoked(EventData):
    """An operator revoked the clinic's key (`carectl clinic revoke`): it stops working in
    every service, and nothing that arrives later brings it back."""

    event_type = "care.intake.clinic-key-revoked.v1"
    clinic_id: str
    key_sha256: str


@event
class PatientRegistered(EventData):
    event_type = "care.intake.patient-registered.v1"
    patient_id: str
    clinic_id: str
    external_id: str  # the clinic's own pseudonymous reference; never logged
    birth_year: int
    sex: Sex
    timezone: str


@event
class EpisodeOpened(EventData):
    event_type = "care.intake.episode-opened.v1"
    patient_id: str
    episode_id: str
    onset_date: date
    severity: Severity | None = None
    psychotic_features: bool = False
    diagnosis: Diagnosis = Diagnosis.MDD


@event
class EpisodeRevised(EventData):
    """Only the fields that changed are present."""

    event_type = "care.intake.episode-revised.v1"
    patient_id: str
    episode_id: str
    diagnosis: Diagnosis | None = None
    severity: Severity | None = None
    psychotic_features: bool | None = None


@event
class TrialStarted(EventData):
    event_type = "care.intake.trial-started.v1"
    patient_id: str
    trial_id: str
    episode_id: str
    kind: TrialKind
    agents: list[AgentDose] = []
    started_on: date
    baseline: Score | None = None
    # Agents not in the drug table: accepted and stored, flagged so nobody misses them.
    unknown_agents: list[str] = []


@event
class TrialCompleted(EventData):
    event_type = "care.intake.trial-completed.v1"
    patient_id: str
    trial_id: str
    ended_on: date
    max_dose_mg_per_day: float | None = None
    adherence_pct: float | None = None
    sessions: int | None = None
    outcome: Outcome | None = None
    final: Score | None = None


@event
class AssessmentRecorded(EventData):
    event_type = "care.intake.assessment-recorded.v1"
    patient_id: str
    assessment_id: str
    instrument: Instrument
    score: int
    item9: int | None = None
    taken_on: date
    suicide_risk: SuicideRisk | None = None
