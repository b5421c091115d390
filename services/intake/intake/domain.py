"""The patient record, pure: fold a patient's events into state, and decide whether a
clinic's command is valid and which event it produces. No I/O here.

A rejected command raises `Rejected` naming the field at fault; nothing is stored then.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from care_shared import drugs
from care_shared.contracts import EventData
from care_shared.contracts.intake import (
    SCORE_RANGE,
    AgentDose,
    AssessmentRecorded,
    Diagnosis,
    EpisodeOpened,
    EpisodeRevised,
    Instrument,
    Outcome,
    PatientRegistered,
    Score,
    Severity,
    Sex,
    SuicideRisk,
    TrialCompleted,
    TrialKind,
    TrialStarted,
)

EARLIEST_BIRTH_YEAR = 1900

# Kinds that are a medicine: they name their agents; a combination names two or more.
SINGLE_AGENT_KINDS = {TrialKind.ANTIDEPRESSANT, TrialKind.AUGMENTATION}


class Rejected(Exception):
    """A command that breaks a rule; `field` names what to fix."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


class UnknownEpisode(Exception):
    pass


class UnknownTrial(Exception):
    pass


class TrialAlreadyCompleted(Exception):
    pass


class NoEpisode(Exception):
    pass


@dataclass
class Episode:
    episode_id: str
    onset_date: date
    diagnosis: Diagnosis
    severity: Severity | None
    psychotic_features: bool


@dataclass
class Trial:
    trial_id: str
    episode_id: str
    kind: TrialKind
    agents: list[AgentDose]
    started_on: date
    unknown_agents: list[str]
    ended_on: date | None = None
    outcome: Outcome | None = None

    @property
    def completed(self) -> bool:
        return self.ended_on is not None


@dataclass
class Patient:
    patient_id: str
    clinic_id: str
    external_id: str
    birth_year: int
    sex: Sex
    timezone: str
    episodes: dict[str, Episode] = field(default_factory=dict)
    current_episode_id: str | None = None
    trials: dict[str, Trial] = field(default_factory=dict)
    assessments: int = 0


def fold(history: list[EventData]) -> Patient | None:
    patient: Patient | None = None
    for e in history:
        match e:
            case PatientRegistered():
                patient = Patient(
                    e.patient_id, e.clinic_id, e.external_id, e.birth_year, e.sex, e.timezone
                )
            case EpisodeOpened() if patient:
                patient.episodes[e.episode_id] = Episode(
                    e.episode_id, e.onset_date, e.diagnosis, e.severity, e.psychotic_features
                )
                patient.current_episode_id = e.episode_id
            case EpisodeRevised() if patient:
                episode = patient.episodes[e.episode_id]
                if e.diagnosis is not None:
                    episode.diagnosis = e.diagnosis
                if e.severity is not None:
                    episode.severity = e.severity
                if e.psychotic_features is not None:
                    episode.psychotic_features = e.psychotic_features
            case TrialStarted() if patient:
                patient.trials[e.trial_id] = Trial(
                    e.trial_id, e.episode_id, e.kind, list(e.agents), e.started_on, list(e.unknown_agents)
                )
            case TrialCompleted() if patient:
                trial = patient.trials[e.trial_id]
                trial.ended_on = e.ended_on
                trial.outcome = e.outcome
            case AssessmentRecorded() if patient:
                patient.assessments += 1
    return patient


# --- rules -------------------------------------------------------------------------------


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(available_timezones()) | {"UTC"}


def check_timezone(name: str) -> None:
    if name not in _time_zones():
        raise Rejected("timezone", "not an IANA time zone (e.g. Europe/London)")


def today_for(patient_timezone: str, now: datetime) -> date:
    """'In the future' is judged by the patient's own calendar, not the server's."""
    return now.astimezone(ZoneInfo(patient_timezone)).date()


def check_not_future(field_name: str, value: date, today: date) -> None:
    if value > today:
        raise Rejected(field_name, "must not be in the future")


def check_score(field_name: str, instrument: Instrument, score: int) -> None:
    low, high = SCORE_RANGE[instrument]
    if not low <= score <= high:
        raise Rejected(field_name, f"a {instrument.value} score is between {low} and {high}")


# --- decisions ---------------------------------------------------------------------------


def register_patient(
    *, patient_id: str, clinic_id: str, external_id: str, birth_year: int, sex: Sex, timezone: str, today: date
) -> PatientRegistered:
    if not EARLIEST_BIRTH_YEAR <= birth_year <= today.year:
        raise Rejected("birth_year", f"must be between {EARLIEST_BIRTH_YEAR} and {today.year}")
    check_timezone(timezone)
    return PatientRegistered(
        patient_id=patient_id,
        clinic_id=clinic_id,
        external_id=external_id,
        birth_year=birth_year,
        sex=sex,
        timezone=timezone,
    )


def open_episode(
    patient: Patient,
    *,
    episode_id: str,
    onset_date: date,
    severity: Severity | None,
    psychotic_features: bool,
    diagnosis: Diagnosis,
    today: date,
) -> EpisodeOpened:
    check_not_future("onset_date", onset_date, today)
    if onset_date.year < patient.birth_year:
        raise Rejected("onset_date", "is before the patient's birth year")
    return EpisodeOpened(
        patient_id=patient.patient_id,
        episode_id=episode_id,
        onset_date=onset_date,
        severity=severity,
        psychotic_features=psychotic_features,
        diagnosis=diagnosis,
    )


def revise_episode(
    patient: Patient,
    episode_id: str,
    *,
    diagnosis: Diagnosis | None,
    severity: Severity | None,
    psychotic_features: bool | None,
) -> EpisodeRevised:
    episode = patient.episodes.get(episode_id)
    if episode is None:
        raise UnknownEpisode(episode_id)
    if diagnosis is None and severity is None and psychotic_features is None:
        raise Rejected("body", "name at least one of diagnosis, severity, psychotic_features")
    return EpisodeRevised(
        patient_id=patient.patient_id,
        episode_id=episode_id,
        diagnosis=diagnosis if diagnosis != episode.diagnosis else None,
        severity=severity if severity != episode.severity else None,
        psychotic_features=(
            psychotic_features if psychotic_features != episode.psychotic_features else None
        ),
    )


def start_trial(
    patient: Patient,
    *,
    trial_id: str,
    kind: TrialKind,
    agents: list[AgentDose],
    started_on: date,
    baseline: Score | None,
    today: date,
) -> TrialStarted:
    if patient.current_episode_id is None:
        raise NoEpisode(patient.patient_id)
    check_not_future("started_on", started_on, today)
    if kind in SINGLE_AGENT_KINDS and len(agents) != 1:
        raise Rejected("agent", f"a {kind.value} trial names exactly one agent")
    if kind is TrialKind.COMBINATION and len(agents) < 2:
        raise Rejected("agents", "a combination trial names two or more agents")
    if baseline is not None:
        check_score("baseline.score", baseline.instrument, baseline.score)
    normalised = [
        AgentDose(agent=drugs.normalise_agent(a.agent), dose_mg_per_day=a.dose_mg_per_day) for a in agents
    ]
    unknown = [a.agent for a in normalised if drugs.lookup(a.agent) is None]
    return TrialStarted(
        patient_id=patient.patient_id,
        trial_id=trial_id,
        episode_id=patient.current_episode_id,
        kind=kind,
        agents=normalised,
        started_on=started_on,
        baseline=baseline,
        unknown_agents=unknown,
    )


def complete_trial(
    patient: Patient,
    trial_id: str,
    *,
    ended_on: date,
    max_dose_mg_per_day: float | None,
    adherence_pct: float | None,
    sessions: int | None,
    outcome: Outcome | None,
    final: Score | None,
    today: date,
) -> TrialCompleted:
    trial = patient.trials.get(trial_id)
    if trial is None:
        raise UnknownTrial(trial_id)
    if trial.completed:
        raise TrialAlreadyCompleted(trial_id)
    if ended_on < trial.started_on:
        raise Rejected("ended_on", "is before the trial started")
    check_not_future("ended_on", ended_on, today)
    if final is not None:
        check_score("final.score", final.instrument, final.score)
    return TrialCompleted(
        patient_id=patient.patient_id,
        trial_id=trial_id,
        ended_on=ended_on,
        max_dose_mg_per_day=max_dose_mg_per_day,
        adherence_pct=adherence_pct,
        sessions=sessions,
        outcome=outcome,
        final=final,
    )


def record_assessment(
    patient: Patient,
    *,
    assessment_id: str,
    instrument: Instrument,
    score: int,
    item9: int | None,
    taken_on: date,
    suicide_risk: SuicideRisk | None,
    today: date,
) -> AssessmentRecorded:
    check_score("score", instrument, score)
    if item9 is not None:
        if instrument is not Instrument.PHQ9:
            raise Rejected("item9", "item 9 belongs to the PHQ-9 only")
        if not 0 <= item9 <= 3:
            raise Rejected("item9", "PHQ-9 item 9 is between 0 and 3")
        if item9 > score:
            raise Rejected("item9", "cannot exceed the total score")
    check_not_future("taken_on", taken_on, today)
    return AssessmentRecorded(
        patient_id=patient.patient_id,
        assessment_id=assessment_id,
        instrument=instrument,
        score=score,
        item9=item9,
        taken_on=taken_on,
        suicide_risk=suicide_risk,
    )
