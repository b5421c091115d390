"""Small builders for patient stories: each returns a step; `build` turns a story into the
(event_id, sequence, payload) triples the engine folds, in stream order.

Agents are normalised the way intake does (lower case, aliases such as T3), and agents the
drug table does not know are listed in `unknown_agents`, as intake does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from care_shared import drugs
from care_shared.contracts.intake import (
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

PATIENT = "p-vignette"


def d(value: str | date) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


@dataclass
class Episode:
    onset: date
    severity: str | None
    psychotic: bool
    diagnosis: str


@dataclass
class Revise:
    changes: dict


@dataclass
class Trial:
    kind: str
    agents: list[tuple[str, float | None]]
    start: date
    end: date | None
    adherence: float | None = None
    outcome: str | None = None
    max_dose: float | None = None
    sessions: int | None = None
    baseline: tuple[str, int] | None = None
    final: tuple[str, int] | None = None


@dataclass
class Assessment:
    instrument: str
    score: int
    on: date
    item9: int | None = None
    risk: str | None = None


@dataclass
class Story:
    steps: list = field(default_factory=list)


def episode(onset: str, severity: str | None = "moderate", psychotic: bool = False, diagnosis: str = "mdd") -> Episode:
    return Episode(d(onset), severity, psychotic, diagnosis)


def revise(**changes) -> Revise:
    return Revise(changes)


def ad(agent, dose, start, end=None, *, adherence=90, outcome="no_response", max_dose=None, baseline=None, final=None) -> Trial:
    """One antidepressant trial. `baseline`/`final` are (instrument, score); pass outcome=None to
    let the engine derive the outcome from the scores."""
    return Trial("antidepressant", [(agent, dose)], d(start), d(end) if end else None, adherence, outcome, max_dose, None, baseline, final)


def aug(agent, dose, start, end=None, *, adherence=90, outcome="no_response", max_dose=None) -> Trial:
    return Trial("augmentation", [(agent, dose)], d(start), d(end) if end else None, adherence, outcome, max_dose)


def combo(agents, start, end=None, *, adherence=90, outcome="no_response", baseline=None, final=None) -> Trial:
    return Trial("combination", list(agents), d(start), d(end) if end else None, adherence, outcome, None, None, baseline, final)


def ect(start, end, *, sessions=8, outcome="no_response") -> Trial:
    return Trial("ect", [], d(start), d(end), None, outcome, None, sessions)


def therapy(start, end, *, sessions=10, outcome="no_response") -> Trial:
    return Trial("psychotherapy", [], d(start), d(end), None, outcome, None, sessions)


def phq9(score: int, item9: int | None, on: str, risk: str | None = None) -> Assessment:
    return Assessment("PHQ-9", score, d(on), item9, risk)


def madrs(score: int, on: str, risk: str | None = None) -> Assessment:
    return Assessment("MADRS", score, d(on), None, risk)


def hamd(score: int, on: str, risk: str | None = None) -> Assessment:
    return Assessment("HAM-D-17", score, d(on), None, risk)


def _score(pair):
    return Score(instrument=Instrument(pair[0]), score=pair[1]) if pair else None


def payloads(steps, patient_id: str = PATIENT) -> list:
    """The intake events of a story, in order (a PatientRegistered first)."""
    out: list = [
        PatientRegistered(patient_id=patient_id, clinic_id="c1", external_id="x1", birth_year=1980, sex=Sex.FEMALE, timezone="Europe/London")
    ]
    episode_id = None
    n_ep = n_trial = n_ass = 0
    for step in steps:
        if isinstance(step, Episode):
            n_ep += 1
            episode_id = f"ep{n_ep}"
            out.append(
                EpisodeOpened(
                    patient_id=patient_id,
                    episode_id=episode_id,
                    onset_date=step.onset,
                    severity=Severity(step.severity) if step.severity else None,
                    psychotic_features=step.psychotic,
                    diagnosis=Diagnosis(step.diagnosis),
                )
            )
        elif isinstance(step, Revise):
            ch = dict(step.changes)
            if "diagnosis" in ch:
                ch["diagnosis"] = Diagnosis(ch["diagnosis"])
            if "severity" in ch:
                ch["severity"] = Severity(ch["severity"])
            if "psychotic" in ch:
                ch["psychotic_features"] = ch.pop("psychotic")
            out.append(EpisodeRevised(patient_id=patient_id, episode_id=episode_id, **ch))
        elif isinstance(step, Trial):
            n_trial += 1
            trial_id = f"t{n_trial}"
            agents = [AgentDose(agent=drugs.normalise_agent(a), dose_mg_per_day=dose) for a, dose in step.agents]
            out.append(
                TrialStarted(
                    patient_id=patient_id,
                    trial_id=trial_id,
                    episode_id=episode_id,
                    kind=TrialKind(step.kind),
                    agents=agents,
                    started_on=step.start,
                    baseline=_score(step.baseline),
                    unknown_agents=[a.agent for a in agents if drugs.lookup(a.agent) is None],
                )
            )
            if step.end is not None:
                out.append(
                    TrialCompleted(
                        patient_id=patient_id,
                        trial_id=trial_id,
                        ended_on=step.end,
                        max_dose_mg_per_day=step.max_dose,
                        adherence_pct=step.adherence,
                        sessions=step.sessions,
                        outcome=Outcome(step.outcome) if step.outcome else None,
                        final=_score(step.final),
                    )
                )
        elif isinstance(step, Assessment):
            n_ass += 1
            out.append(
                AssessmentRecorded(
                    patient_id=patient_id,
                    assessment_id=f"a{n_ass}",
                    instrument=Instrument(step.instrument),
                    score=step.score,
                    item9=step.item9,
                    taken_on=step.on,
                    suicide_risk=SuicideRisk(step.risk) if step.risk else None,
                )
            )
        else:  # pragma: no cover
            raise TypeError(step)
    return out


def build(steps, patient_id: str = PATIENT) -> list[tuple[str, int, object]]:
    return [(f"ev{i}", i, p) for i, p in enumerate(payloads(steps, patient_id), start=1)]
