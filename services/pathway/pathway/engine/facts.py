"""Facts: what the engine keeps of a patient's intake events, folded in stream order.

Per-patient order is restored by the service (it applies events by their stream sequence);
here events arrive in order. Assessments are summarised as they arrive (the latest overall,
the latest that assessed suicidality, the latest PHQ-9, each episode's first PHQ-9), so the
state stays small whatever the number of assessments.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from care_shared.contracts import EventData
from care_shared.contracts.intake import (
    AssessmentRecorded,
    EpisodeOpened,
    EpisodeRevised,
    PatientRegistered,
    TrialCompleted,
    TrialStarted,
)


@dataclass
class Episode:
    episode_id: str
    onset_date: date
    diagnosis: str
    severity: str | None
    psychotic_features: bool
    first_phq9: int | None = None
    first_phq9_on: date | None = None


@dataclass
class Agent:
    agent: str
    dose_mg_per_day: float | None


@dataclass
class Trial:
    trial_id: str
    episode_id: str
    kind: str
    agents: list[Agent]
    started_on: date
    baseline_instrument: str | None = None
    baseline_score: int | None = None
    unknown_agents: list[str] = field(default_factory=list)
    sequence: int = 0
    # completion
    ended_on: date | None = None
    max_dose_mg_per_day: float | None = None
    adherence_pct: float | None = None
    sessions: int | None = None
    outcome: str | None = None
    final_instrument: str | None = None
    final_score: int | None = None
    completed_sequence: int | None = None

    @property
    def completed(self) -> bool:
        return self.ended_on is not None


@dataclass
class Observation:
    """One assessment, kept only while it is the latest of its kind."""

    event_id: str
    taken_on: date
    sequence: int
    instrument: str
    score: int
    item9: int | None = None
    suicide_risk: str | None = None

    def newer_than(self, other: Observation | None) -> bool:
        return other is None or (self.taken_on, self.sequence) > (other.taken_on, other.sequence)


@dataclass
class PatientFacts:
    patient_id: str
    birth_year: int | None = None
    episodes: dict[str, Episode] = field(default_factory=dict)
    current_episode_id: str | None = None
    trials: dict[str, Trial] = field(default_factory=dict)
    latest_assessment: Observation | None = None
    latest_suicidality: Observation | None = None
    latest_phq9: Observation | None = None
    last_clinical_date: date | None = None
    as_of_event: str | None = None
    applied_through: int = 0
    unattached_phq9: list[tuple[date, int]] = field(default_factory=list)

    @classmethod
    def empty(cls, patient_id: str) -> PatientFacts:
        return cls(patient_id=patient_id)

    @property
    def episode(self) -> Episode | None:
        return self.episodes.get(self.current_episode_id) if self.current_episode_id else None

    def episode_trials(self) -> list[Trial]:
        """Trials of the current episode, in the order they were started."""
        return sorted(
            (t for t in self.trials.values() if t.episode_id == self.current_episode_id),
            key=lambda t: (t.started_on, t.sequence),
        )

    # --- persistence: facts are stored as JSON between events -------------------------
    def to_json(self) -> dict[str, Any]:
        return asdict(self, dict_factory=_json_dict)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> PatientFacts:
        def obs(v: dict | None) -> Observation | None:
            return Observation(**{**v, "taken_on": date.fromisoformat(v["taken_on"])}) if v else None

        episodes = {
            k: Episode(
                **{
                    **v,
                    "onset_date": date.fromisoformat(v["onset_date"]),
                    "first_phq9_on": date.fromisoformat(v["first_phq9_on"]) if v["first_phq9_on"] else None,
                }
            )
            for k, v in raw["episodes"].items()
        }
        trials = {}
        for k, v in raw["trials"].items():
            trials[k] = Trial(
                **{
                    **v,
                    "agents": [Agent(**a) for a in v["agents"]],
                    "started_on": date.fromisoformat(v["started_on"]),
                    "ended_on": date.fromisoformat(v["ended_on"]) if v["ended_on"] else None,
                }
            )
        return cls(
            patient_id=raw["patient_id"],
            birth_year=raw["birth_year"],
            episodes=episodes,
            current_episode_id=raw["current_episode_id"],
            trials=trials,
            latest_assessment=obs(raw["latest_assessment"]),
            latest_suicidality=obs(raw["latest_suicidality"]),
            latest_phq9=obs(raw["latest_phq9"]),
            last_clinical_date=date.fromisoformat(raw["last_clinical_date"]) if raw["last_clinical_date"] else None,
            as_of_event=raw["as_of_event"],
            applied_through=raw["applied_through"],
            unattached_phq9=[(date.fromisoformat(on), score) for on, score in raw.get("unattached_phq9", [])],
        )


def _json_value(v: Any) -> Any:
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, list | tuple):
        return [_json_value(x) for x in v]
    return v


def _json_dict(items: list[tuple[str, Any]]) -> dict[str, Any]:
    return {k: _json_value(v) for k, v in items}


def _later(a: date | None, b: date | None) -> date | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def apply(facts: PatientFacts, event: EventData, *, event_id: str | None = None, sequence: int = 0) -> PatientFacts:
    """Fold one event (in stream order) into the facts. Mutates and returns `facts`."""
    match event:
        case PatientRegistered():
            facts.birth_year = event.birth_year
        case EpisodeOpened():
            facts.episodes[event.episode_id] = Episode(
                episode_id=event.episode_id,
                onset_date=event.onset_date,
                diagnosis=event.diagnosis.value,
                severity=event.severity.value if event.severity else None,
                psychotic_features=event.psychotic_features,
            )
            facts.current_episode_id = event.episode_id
            # A new episode starts its own clinical timeline.
            facts.last_clinical_date = event.onset_date
            # PHQ-9s recorded before the episode was: the earliest inside it is its first.
            inside = [(on, score) for on, score in facts.unattached_phq9 if on >= event.onset_date]
            if inside:
                on, score = min(inside)
                episode = facts.episodes[event.episode_id]
                episode.first_phq9, episode.first_phq9_on = score, on
                facts.last_clinical_date = _later(facts.last_clinical_date, max(on for on, _ in inside))
            facts.unattached_phq9 = []
        case EpisodeRevised():
            episode = facts.episodes.get(event.episode_id)
            if episode is not None:
                if event.diagnosis is not None:
                    episode.diagnosis = event.diagnosis.value
                if event.severity is not None:
                    episode.severity = event.severity.value
                if event.psychotic_features is not None:
                    episode.psychotic_features = event.psychotic_features
        case TrialStarted():
            facts.trials[event.trial_id] = Trial(
                trial_id=event.trial_id,
                episode_id=event.episode_id,
                kind=event.kind.value,
                agents=[Agent(a.agent, a.dose_mg_per_day) for a in event.agents],
                started_on=event.started_on,
                baseline_instrument=event.baseline.instrument.value if event.baseline else None,
                baseline_score=event.baseline.score if event.baseline else None,
                unknown_agents=list(event.unknown_agents),
                sequence=sequence,
            )
            if event.episode_id == facts.current_episode_id:
                facts.last_clinical_date = _later(facts.last_clinical_date, event.started_on)
        case TrialCompleted():
            trial = facts.trials.get(event.trial_id)
            if trial is not None:
                trial.ended_on = event.ended_on
                trial.max_dose_mg_per_day = event.max_dose_mg_per_day
                trial.adherence_pct = event.adherence_pct
                trial.sessions = event.sessions
                trial.outcome = event.outcome.value if event.outcome else None
                trial.final_instrument = event.final.instrument.value if event.final else None
                trial.final_score = event.final.score if event.final else None
                trial.completed_sequence = sequence
                if trial.episode_id == facts.current_episode_id:
                    facts.last_clinical_date = _later(facts.last_clinical_date, event.ended_on)
        case AssessmentRecorded():
            seen = Observation(
                event_id=event_id or event.assessment_id,
                taken_on=event.taken_on,
                sequence=sequence,
                instrument=event.instrument.value,
                score=event.score,
                item9=event.item9,
                suicide_risk=event.suicide_risk.value if event.suicide_risk else None,
            )
            if seen.newer_than(facts.latest_assessment):
                facts.latest_assessment = seen
            if (seen.item9 is not None or seen.suicide_risk is not None) and seen.newer_than(facts.latest_suicidality):
                facts.latest_suicidality = seen
            if seen.instrument == "PHQ-9":
                if seen.newer_than(facts.latest_phq9):
                    facts.latest_phq9 = seen
                episode = facts.episode
                if episode is None:
                    # Kept until an episode opens (clinics may record a PHQ-9 first); only
                    # then is it known whether it falls inside the episode.
                    facts.unattached_phq9.append((seen.taken_on, seen.score))
                elif seen.taken_on >= episode.onset_date and (
                    episode.first_phq9_on is None or seen.taken_on < episode.first_phq9_on
                ):
                    episode.first_phq9, episode.first_phq9_on = seen.score, seen.taken_on
            if facts.episode is None or seen.taken_on >= facts.episode.onset_date:
                facts.last_clinical_date = _later(facts.last_clinical_date, seen.taken_on)
        case _:
            return facts  # clinic events and the like change nothing clinical
    if event_id is not None:
        facts.as_of_event = event_id
    facts.applied_through = max(facts.applied_through, sequence)
    return facts


def fold(patient_id: str, events: list[tuple[str, int, EventData]]) -> PatientFacts:
    """Fold (event_id, sequence, payload) triples given in stream order."""
    facts = PatientFacts.empty(patient_id)
    for event_id, sequence, payload in events:
        apply(facts, payload, event_id=event_id, sequence=sequence)
    return facts
