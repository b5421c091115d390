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
    WSAS = "WSAS"  # Work and Social Adjustment Scale (CLINICAL.md 1, 7): never enters urgency


# Total score ranges of each instrument.
SCORE_RANGE: dict[Instrument, tuple[int, int]] = {
    Instrument.PHQ9: (0, 27),
    Instrument.MADRS: (0, 60),
    Instrument.HAMD17: (0, 52),
    Instrument.WSAS: (0, 40),
}

# PHQ-9 as the LOINC panel 44249-1 (CLINICAL.md 1): the nine item codes in questionnaire
# order (the last is item 9, thoughts of self-harm) and the total.
PHQ9_PANEL_LOINC = "44249-1"
PHQ9_ITEM_LOINC: tuple[str, ...] = (
    "44250-9",
    "44255-8",
    "44259-0",
    "44254-1",
    "44251-7",
    "44258-2",
    "44252-5",
    "44253-3",
    "44260-8",
)
PHQ9_TOTAL_LOINC = "44261-6"


class DoseUnit(StrEnum):
    MG = "mg"
    MICROGRAM = "microgram"


class EctPlacement(StrEnum):
    BILATERAL = "bilateral"
    RIGHT_UNILATERAL = "right_unilateral"
    BIFRONTAL = "bifrontal"
    UNKNOWN = "unknown"


class AssessmentSource(StrEnum):
    CLINICIAN = "clinician"  # entered by the clinic
    PATIENT = "patient"  # self-reported through a one-time link


class Comorbidity(StrEnum):
    """CLINICAL.md 1: the conditions that are TRD risk factors (3)."""

    EATING_DISORDER = "eating_disorder"
    SLEEP_DISORDER = "sleep_disorder"
    SUBSTANCE_USE_DISORDER = "substance_use_disorder"
    CHRONIC_PAIN = "chronic_pain"
    THYROID_DISEASE = "thyroid_disease"
    OTHER_CHRONIC_MEDICAL_ILLNESS = "other_chronic_medical_illness"


class WorkupCheck(StrEnum):
    """CLINICAL.md 6, pseudo-resistance workup."""

    # redone for each failure
    ADHERENCE_REVIEW = "adherence_review"
    INTERACTING_MEDICINES = "interacting_medicines"
    RECENT_STRESSORS = "recent_stressors"
    SUBSTANCE_ALCOHOL_USE = "substance_alcohol_use"
    # once per episode
    BIPOLAR_SCREEN = "bipolar_screen"
    THYROID_FUNCTION = "thyroid_function"
    VITAMIN_D = "vitamin_d"
    SLEEP_APNOEA_SCREEN = "sleep_apnoea_screen"
    MEDICAL_ILLNESS = "medical_illness"


class WorkupResult(StrEnum):
    NORMAL = "normal"
    ABNORMAL = "abnormal"


class SideEffect(StrEnum):
    """CLINICAL.md 6, mood journal."""

    NAUSEA = "nausea"
    GI_UPSET = "gi_upset"
    HEADACHE = "headache"
    INSOMNIA = "insomnia"
    SEDATION = "sedation"
    DIZZINESS = "dizziness"
    DRY_MOUTH = "dry_mouth"
    SWEATING = "sweating"
    WEIGHT_GAIN = "weight_gain"
    SEXUAL_DYSFUNCTION = "sexual_dysfunction"
    RESTLESSNESS = "restlessness"
    EMOTIONAL_BLUNTING = "emotional_blunting"
    OTHER = "other"


class Trigger(StrEnum):
    """CLINICAL.md 6, mood journal."""

    POOR_SLEEP = "poor_sleep"
    CONFLICT = "conflict"
    WORK_OR_STUDY_STRESS = "work_or_study_stress"
    MONEY_WORRIES = "money_worries"
    LONELINESS = "loneliness"
    LOSS = "loss"
    PHYSICAL_ILLNESS_OR_PAIN = "physical_illness_or_pain"
    ALCOHOL = "alcohol"
    DRUG_USE = "drug_use"
    MISSED_DOSES = "missed_doses"
    CHANGE_IN_ROUTINE = "change_in_routine"
    OTHER = "other"


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
    """`agent` is the generic name from the drug table once intake resolved a brand, release
    form or salt (unknown agents as entered); `dose_mg_per_day` is always in mg, converted
    exactly from the unit the clinic entered (`unit`, kept for display; none: mg)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    agent: str = Field(min_length=1, max_length=80)
    dose_mg_per_day: float | None = Field(default=None, gt=0)
    unit: DoseUnit | None = None
    entered_as: str | None = Field(default=None, max_length=80)  # the name as the clinic typed it


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
    event_type = "care.intake.patient-registered.v2"
    reads_versions = (1,)  # v2 added the optional country
    patient_id: str
    clinic_id: str
    external_id: str  # the clinic's own pseudonymous reference; never logged
    birth_year: int
    sex: Sex
    timezone: str
    country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")  # ISO 3166-1 alpha-2


@event
class EpisodeOpened(EventData):
    event_type = "care.intake.episode-opened.v2"
    reads_versions = (1,)  # v2 added prior_episodes and age_at_first_onset
    patient_id: str
    episode_id: str
    onset_date: date
    severity: Severity | None = None
    psychotic_features: bool = False
    diagnosis: Diagnosis = Diagnosis.MDD
    prior_episodes: int | None = Field(default=None, ge=0)
    age_at_first_onset: int | None = Field(default=None, ge=0, le=120)


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
    event_type = "care.intake.trial-started.v2"
    reads_versions = (1,)  # v2: agents carry unit and entered_as (doses stay in mg)
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
    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)
    event_type = "care.intake.trial-completed.v2"
    reads_versions = (1,)  # v2 added max_doses (each agent's maximum) and ECT placement
    patient_id: str
    trial_id: str
    ended_on: date
    # The single-agent maximum, in mg (kept for v1 readers and single-agent trials).
    max_dose_mg_per_day: float | None = None
    # Each agent's maximum daily dose (CLINICAL.md 1), in mg: a combination's per agent.
    max_doses: list[AgentDose] = []
    adherence_pct: float | None = None
    sessions: int | None = None
    outcome: Outcome | None = None
    final: Score | None = None
    placement: EctPlacement | None = None  # ECT only


@event
class AssessmentRecorded(EventData):
    event_type = "care.intake.assessment-recorded.v2"
    reads_versions = (1,)  # v2 added items, source and the WSAS instrument
    patient_id: str
    assessment_id: str
    instrument: Instrument
    score: int
    item9: int | None = None
    taken_on: date
    suicide_risk: SuicideRisk | None = None
    # PHQ-9 item answers (0-3) in PHQ9_ITEM_LOINC order, when the nine were given; the score
    # is then their sum and item9 the last.
    items: list[int] | None = Field(default=None, min_length=9, max_length=9)
    source: AssessmentSource = AssessmentSource.CLINICIAN


@event
class ComorbidityRecorded(EventData):
    """CLINICAL.md 1: latest per condition stands."""

    event_type = "care.intake.comorbidity-recorded.v1"
    patient_id: str
    record_id: str
    condition: Comorbidity
    present: bool
    recorded_on: date


@event
class WorkupCheckRecorded(EventData):
    """CLINICAL.md 6: a pseudo-resistance workup check, coded, no free text."""

    event_type = "care.intake.workup-check-recorded.v1"
    patient_id: str
    record_id: str
    episode_id: str | None = None  # the episode current when it was recorded
    check: WorkupCheck
    result: WorkupResult
    done_on: date


@event
class TreatmentPreferenceRecorded(EventData):
    """CLINICAL.md 6: `strategy` is a modality (psychotherapy, esketamine, ketamine, rtms, ect,
    vns, dbs), `augmentation`, `combination` or a drug-table agent (generic name); per
    episode, the latest record per strategy stands."""

    event_type = "care.intake.treatment-preference-recorded.v1"
    patient_id: str
    record_id: str
    episode_id: str | None = None  # the episode current when it was recorded
    strategy: str = Field(min_length=1, max_length=80)
    declined: bool
    recorded_on: date


@event
class JournalEntryRecorded(EventData):
    """CLINICAL.md 6: one per date (a later entry for the same date replaces it)."""

    event_type = "care.intake.journal-entry-recorded.v1"
    patient_id: str
    entry_id: str
    entry_on: date
    mood: int = Field(ge=0, le=10)  # 0 worst
    side_effects: list[SideEffect] = []
    triggers: list[Trigger] = []
    source: AssessmentSource = AssessmentSource.PATIENT
