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
    AssessmentSource,
    Comorbidity,
    ComorbidityRecorded,
    Diagnosis,
    EctPlacement,
    EpisodeOpened,
    EpisodeRevised,
    Instrument,
    JournalEntryRecorded,
    Outcome,
    PatientRegistered,
    Score,
    Severity,
    Sex,
    SideEffect,
    SuicideRisk,
    TreatmentPreferenceRecorded,
    TrialCompleted,
    TrialKind,
    TrialStarted,
    Trigger,
    WorkupCheck,
    WorkupCheckRecorded,
    WorkupResult,
)

PATIENT = "p-vignette"


def d(value: str | date) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


@dataclass
class Patient:
    """Replaces the default registration (female, born 1980) when it is the story's first step."""

    sex: str = "female"
    birth_year: int = 1980
    country: str | None = None


@dataclass
class Episode:
    onset: date
    severity: str | None
    psychotic: bool
    diagnosis: str
    prior_episodes: int | None = None
    age_at_first_onset: int | None = None


@dataclass
class Comorb:
    condition: str
    present: bool
    on: date


@dataclass
class Check:
    check: str
    result: str
    on: date


@dataclass
class Pref:
    strategy: str
    declined: bool
    on: date


@dataclass
class Journal:
    on: date
    mood: int
    side_effects: list[str] = field(default_factory=list)
    triggers: list[str] = field(default_factory=list)


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
    max_doses: dict | None = None  # agent -> maximum mg/day (v2 per-agent maxima)
    placement: str | None = None
    as_entered: bool = False  # keep the agent names as typed (an old event carrying a brand)


@dataclass
class Assessment:
    instrument: str
    score: int
    on: date
    item9: int | None = None
    risk: str | None = None
    items: list[int] | None = None
    source: str = "clinician"


@dataclass
class Story:
    steps: list = field(default_factory=list)


def patient(sex: str = "female", birth_year: int = 1980, country: str | None = None) -> Patient:
    return Patient(sex, birth_year, country)


def episode(
    onset: str,
    severity: str | None = "moderate",
    psychotic: bool = False,
    diagnosis: str = "mdd",
    *,
    prior: int | None = None,
    first_onset_age: int | None = None,
) -> Episode:
    return Episode(d(onset), severity, psychotic, diagnosis, prior, first_onset_age)


def comorbidity(condition: str, on: str, present: bool = True) -> Comorb:
    return Comorb(condition, present, d(on))


def workup(check: str, result: str, on: str) -> Check:
    return Check(check, result, d(on))


def declined(strategy: str, on: str, declined: bool = True) -> Pref:
    return Pref(strategy, declined, d(on))


def journal(on: str | date, mood: int, side_effects=(), triggers=()) -> Journal:
    return Journal(d(on), mood, list(side_effects), list(triggers))


def course(
    kind: str,
    start,
    end=None,
    *,
    sessions=None,
    outcome="no_response",
    agents=(),
    placement=None,
    baseline=None,
    final=None,
) -> Trial:
    """A non-drug (or rapid-acting) course: esketamine, ketamine, rtms, ect, vns, dbs, psychotherapy."""
    return Trial(
        kind,
        list(agents),
        d(start),
        d(end) if end else None,
        None,
        outcome if end else None,
        None,
        sessions,
        baseline,
        final,
        placement=placement,
    )


def revise(**changes) -> Revise:
    return Revise(changes)


def ad(
    agent,
    dose,
    start,
    end=None,
    *,
    adherence=90,
    outcome="no_response",
    max_dose=None,
    baseline=None,
    final=None,
    as_entered=False,
) -> Trial:
    """One antidepressant trial. `baseline`/`final` are (instrument, score); pass outcome=None to
    let the engine derive the outcome from the scores. Without `end` the trial is running."""
    return Trial(
        "antidepressant",
        [(agent, dose)],
        d(start),
        d(end) if end else None,
        adherence,
        outcome,
        max_dose,
        None,
        baseline,
        final,
        as_entered=as_entered,
    )


def aug(agent, dose, start, end=None, *, adherence=90, outcome="no_response", max_dose=None) -> Trial:
    return Trial(
        "augmentation", [(agent, dose)], d(start), d(end) if end else None, adherence, outcome, max_dose
    )


def combo(
    agents, start, end=None, *, adherence=90, outcome="no_response", baseline=None, final=None, max_doses=None
) -> Trial:
    return Trial(
        "combination",
        list(agents),
        d(start),
        d(end) if end else None,
        adherence,
        outcome,
        None,
        None,
        baseline,
        final,
        max_doses=max_doses,
    )


def ect(start, end=None, *, sessions=8, outcome="no_response", placement=None) -> Trial:
    return Trial(
        "ect",
        [],
        d(start),
        d(end) if end else None,
        None,
        outcome if end else None,
        None,
        sessions,
        placement=placement,
    )


def therapy(start, end, *, sessions=10, outcome="no_response") -> Trial:
    return Trial("psychotherapy", [], d(start), d(end), None, outcome, None, sessions)


def phq9(score: int, item9: int | None, on: str, risk: str | None = None) -> Assessment:
    return Assessment("PHQ-9", score, d(on), item9, risk)


def madrs(score: int, on: str, risk: str | None = None) -> Assessment:
    return Assessment("MADRS", score, d(on), None, risk)


def hamd(score: int, on: str, risk: str | None = None) -> Assessment:
    return Assessment("HAM-D-17", score, d(on), None, risk)


def wsas(score: int, on: str) -> Assessment:
    return Assessment("WSAS", score, d(on))


def self_phq9(items: list[int], on: str) -> Assessment:
    """A patient-reported PHQ-9 (the LOINC panel): nine answers, the total their sum."""
    return Assessment("PHQ-9", sum(items), d(on), items[-1], None, list(items), "patient")


def _score(pair):
    return Score(instrument=Instrument(pair[0]), score=pair[1]) if pair else None


def payloads(steps, patient_id: str = PATIENT) -> list:
    """The intake events of a story, in order (a PatientRegistered first)."""
    who = steps[0] if steps and isinstance(steps[0], Patient) else Patient()
    out: list = [
        PatientRegistered(
            patient_id=patient_id,
            clinic_id="c1",
            external_id="x1",
            birth_year=who.birth_year,
            sex=Sex(who.sex),
            timezone="Europe/London",
            country=who.country,
        )
    ]
    n_rec = 0
    episode_id = None
    n_ep = n_trial = n_ass = 0
    for step in steps:
        if isinstance(step, Patient):
            continue
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
                    prior_episodes=step.prior_episodes,
                    age_at_first_onset=step.age_at_first_onset,
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
            agents = [
                AgentDose(agent=a if step.as_entered else drugs.normalise_agent(a), dose_mg_per_day=dose)
                for a, dose in step.agents
            ]
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
                        max_doses=[
                            AgentDose(agent=drugs.normalise_agent(a), dose_mg_per_day=mg)
                            for a, mg in (step.max_doses or {}).items()
                        ],
                        placement=EctPlacement(step.placement) if step.placement else None,
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
                    items=step.items,
                    source=AssessmentSource(step.source),
                )
            )
        elif isinstance(step, Comorb):
            n_rec += 1
            out.append(
                ComorbidityRecorded(
                    patient_id=patient_id,
                    record_id=f"r{n_rec}",
                    condition=Comorbidity(step.condition),
                    present=step.present,
                    recorded_on=step.on,
                )
            )
        elif isinstance(step, Check):
            n_rec += 1
            out.append(
                WorkupCheckRecorded(
                    patient_id=patient_id,
                    record_id=f"r{n_rec}",
                    episode_id=episode_id,
                    check=WorkupCheck(step.check),
                    result=WorkupResult(step.result),
                    done_on=step.on,
                )
            )
        elif isinstance(step, Pref):
            n_rec += 1
            out.append(
                TreatmentPreferenceRecorded(
                    patient_id=patient_id,
                    record_id=f"r{n_rec}",
                    episode_id=episode_id,
                    strategy=step.strategy,
                    declined=step.declined,
                    recorded_on=step.on,
                )
            )
        elif isinstance(step, Journal):
            n_rec += 1
            out.append(
                JournalEntryRecorded(
                    patient_id=patient_id,
                    entry_id=f"j{n_rec}",
                    entry_on=step.on,
                    mood=step.mood,
                    side_effects=[SideEffect(x) for x in step.side_effects],
                    triggers=[Trigger(x) for x in step.triggers],
                )
            )
        else:  # pragma: no cover
            raise TypeError(step)
    return out


def build(steps, patient_id: str = PATIENT) -> list[tuple[str, int, object]]:
    return [(f"ev{i}", i, p) for i, p in enumerate(payloads(steps, patient_id), start=1)]
