"""Facts: what the engine keeps of a patient's intake events, folded in stream order.

Per-patient order is restored by the service (it applies events by their stream sequence);
here events arrive in order. Every rule is decided from these facts by date, never by the
order they arrived in: assessments are kept as small records (date, instrument, score,
suicide rating, source), the newest record per comorbidity, workup check and preference
stands, and the mood journal keeps only the entries that can still fall in its window.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

from care_shared import drugs
from care_shared.contracts import EventData
from care_shared.contracts.intake import (
    AssessmentRecorded,
    ComorbidityRecorded,
    EpisodeOpened,
    EpisodeRevised,
    JournalEntryRecorded,
    PatientRegistered,
    TreatmentPreferenceRecorded,
    TrialCompleted,
    TrialStarted,
    WorkupCheckRecorded,
)
from pathway.engine import conventions as c


@dataclass
class Episode:
    episode_id: str
    onset_date: date
    diagnosis: str
    severity: str | None
    psychotic_features: bool
    prior_episodes: int | None = None
    age_at_first_onset: int | None = None
    # CLINICAL 1 wording: "recorded at opening" or "revised on <date>" (the assessment date then:
    # a revision carries no date of its own).
    diagnosis_recorded: str = "recorded at opening"


@dataclass
class Agent:
    agent: str  # the generic name (the drug table resolves brands of old events)
    dose_mg_per_day: float | None
    max_mg_per_day: float | None = None  # from the completion


@dataclass
class Trial:
    trial_id: str
    episode_id: str
    kind: str
    agents: list[Agent]
    started_on: date
    baseline_instrument: str | None = None
    baseline_score: int | None = None
    sequence: int = 0
    # completion
    ended_on: date | None = None
    max_dose_mg_per_day: float | None = None
    adherence_pct: float | None = None
    sessions: int | None = None
    outcome: str | None = None
    final_instrument: str | None = None
    final_score: int | None = None
    placement: str | None = None
    completed_sequence: int | None = None

    @property
    def completed(self) -> bool:
        return self.ended_on is not None


@dataclass
class Observation:
    """One assessment: a score, and the suicide rating it carries if any."""

    event_id: str
    taken_on: date
    sequence: int
    instrument: str
    score: int
    item9: int | None = None
    suicide_risk: str | None = None
    source: str = "clinician"


@dataclass
class Record:
    """The newest coded record of one kind and key (comorbidity, workup check, preference)."""

    key: str
    value: str  # present / absent, normal / abnormal, declined / accepted
    on: date
    sequence: int
    episode_id: str | None = None

    def newer_than(self, other: Record | None) -> bool:
        return other is None or (self.on, self.sequence) > (other.on, other.sequence)


@dataclass
class JournalDay:
    entry_on: date
    mood: int
    side_effects: list[str]
    triggers: list[str]


@dataclass
class PatientFacts:
    patient_id: str
    birth_year: int | None = None
    sex: str | None = None
    country: str | None = None
    episodes: dict[str, Episode] = field(default_factory=dict)
    episode_order: list[str] = field(default_factory=list)
    current_episode_id: str | None = None
    trials: dict[str, Trial] = field(default_factory=dict)
    observations: list[Observation] = field(default_factory=list)
    comorbidities: dict[str, Record] = field(default_factory=dict)
    workup: dict[str, Record] = field(default_factory=dict)  # "<episode or ->|<check>"
    preferences: dict[str, Record] = field(default_factory=dict)  # "<episode or ->|<strategy>"
    journal: dict[str, JournalDay] = field(default_factory=dict)  # ISO date -> entry
    as_of_event: str | None = None
    applied_through: int = 0

    @classmethod
    def empty(cls, patient_id: str) -> PatientFacts:
        return cls(patient_id=patient_id)

    @property
    def episode(self) -> Episode | None:
        return self.episodes.get(self.current_episode_id) if self.current_episode_id else None

    def episode_trials(self) -> list[Trial]:
        """Trials of the current episode, in the order they were started. A trial that ended
        before the onset is not part of the episode (CLINICAL 1, dates)."""
        episode = self.episode
        return sorted(
            (
                t
                for t in self.trials.values()
                if t.episode_id == self.current_episode_id
                and not (episode and t.ended_on is not None and t.ended_on < episode.onset_date)
            ),
            key=lambda t: (t.started_on, t.sequence),
        )

    def episode_records(self, records: dict[str, Record]) -> dict[str, Record]:
        """The newest record per key for the current episode: recorded against it, or with no
        episode and dated on or after its onset."""
        episode = self.episode
        out: dict[str, Record] = {}
        if episode is None:
            return out
        for r in records.values():
            if r.episode_id == episode.episode_id or (r.episode_id is None and r.on >= episode.onset_date):
                if r.newer_than(out.get(r.key)):
                    out[r.key] = r
        return out

    def assessment_date(self) -> date | None:
        """CLINICAL 1: the latest clinical date in the episode (a trial's start or end, an
        assessment's taken_on); journal, workup, preferences and comorbidities do not move it."""
        episode = self.episode
        if episode is None:
            return None
        dates = [episode.onset_date]
        for t in self.episode_trials():
            dates.append(t.started_on)
            if t.ended_on:
                dates.append(t.ended_on)
        dates += [o.taken_on for o in self.observations if o.taken_on >= episode.onset_date]
        return max(dates)

    # --- persistence: facts are stored as JSON between events -------------------------
    def to_json(self) -> dict[str, Any]:
        return asdict(self, dict_factory=_json_dict)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> PatientFacts:
        day = date.fromisoformat

        def opt_day(v: str | None) -> date | None:
            return day(v) if v else None

        episodes = {
            k: Episode(
                episode_id=v["episode_id"],
                onset_date=day(v["onset_date"]),
                diagnosis=v["diagnosis"],
                severity=v["severity"],
                psychotic_features=v["psychotic_features"],
                prior_episodes=v.get("prior_episodes"),
                age_at_first_onset=v.get("age_at_first_onset"),
                diagnosis_recorded=v.get("diagnosis_recorded", "recorded at opening"),
            )
            for k, v in raw["episodes"].items()
        }
        trials = {}
        for k, v in raw["trials"].items():
            trials[k] = Trial(
                **{
                    **{f: v.get(f) for f in Trial.__dataclass_fields__ if f in v},
                    "agents": [Agent(**a) for a in v["agents"]],
                    "started_on": day(v["started_on"]),
                    "ended_on": opt_day(v.get("ended_on")),
                }
            )

        def records(raw_records: dict) -> dict[str, Record]:
            return {k: Record(**{**r, "on": day(r["on"])}) for k, r in raw_records.items()}

        observations = [
            Observation(**{**o, "taken_on": day(o["taken_on"])}) for o in raw.get("observations", [])
        ]
        if "observations" not in raw:
            observations = _observations_kept_before_2026_12(raw, trials)

        return cls(
            patient_id=raw["patient_id"],
            birth_year=raw.get("birth_year"),
            sex=raw.get("sex"),
            country=raw.get("country"),
            episodes=episodes,
            episode_order=raw.get("episode_order", list(episodes)),
            current_episode_id=raw["current_episode_id"],
            trials=trials,
            observations=observations,
            comorbidities=records(raw.get("comorbidities", {})),
            workup=records(raw.get("workup", {})),
            preferences=records(raw.get("preferences", {})),
            journal={
                k: JournalDay(**{**j, "entry_on": day(j["entry_on"])})
                for k, j in raw.get("journal", {}).items()
            },
            as_of_event=raw["as_of_event"],
            applied_through=raw["applied_through"],
        )


def _observations_kept_before_2026_12(raw: dict[str, Any], trials: dict[str, Trial]) -> list[Observation]:
    """Facts stored by the trd-rules 2026.06 engine kept only the latest assessment, the latest
    suicide rating, the latest PHQ-9 and each episode's first PHQ-9 (and no sex): carry those
    over so urgency, remission and severity read as before. Everything else 2026.12 needs (every
    assessment, the new records) comes only from a replay of intake's stream."""
    out: dict[str, Observation] = {}
    for key in ("latest_assessment", "latest_suicidality", "latest_phq9"):
        o = raw.get(key)
        if o:
            out.setdefault(o["event_id"], Observation(**{**o, "taken_on": date.fromisoformat(o["taken_on"])}))
    for episode_id, e in raw["episodes"].items():
        if e.get("first_phq9") is not None and e.get("first_phq9_on"):
            on = date.fromisoformat(e["first_phq9_on"])
            if not any(o.instrument == "PHQ-9" and o.taken_on == on for o in out.values()):
                out[f"first-phq9-{episode_id}"] = Observation(
                    f"first-phq9-{episode_id}", on, 0, "PHQ-9", e["first_phq9"]
                )
    for t in trials.values():  # the single-agent maximum sat on the trial
        if len(t.agents) == 1 and t.agents[0].max_mg_per_day is None:
            t.agents[0].max_mg_per_day = t.max_dose_mg_per_day
    return sorted(out.values(), key=lambda o: (o.taken_on, o.sequence))


def _json_value(v: Any) -> Any:
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, list | tuple):
        return [_json_value(x) for x in v]
    return v


def _json_dict(items: list[tuple[str, Any]]) -> dict[str, Any]:
    return {k: _json_value(v) for k, v in items}


def generic(name: str) -> str:
    """CLINICAL 2: brands, case, release forms and salts resolve to the generic; an unknown
    agent is kept as entered (normalised for case), never dropped."""
    drug = drugs.lookup(name)
    return drug.name if drug is not None else drugs.normalise_agent(name)


def _item9(event: AssessmentRecorded) -> int | None:
    if event.item9 is not None:
        return event.item9
    if event.items is not None:
        return event.items[-1]  # 44260-8 is the ninth answer (CLINICAL 1)
    return None


def _keyed(episode_id: str | None, key: str) -> str:
    return f"{episode_id or '-'}|{key}"


def apply(
    facts: PatientFacts, event: EventData, *, event_id: str | None = None, sequence: int = 0
) -> PatientFacts:
    """Fold one event (in stream order) into the facts. Mutates and returns `facts`."""
    match event:
        case PatientRegistered():
            facts.birth_year = event.birth_year
            facts.sex = event.sex.value
            facts.country = event.country
        case EpisodeOpened():
            if event.episode_id not in facts.episodes:
                facts.episode_order.append(event.episode_id)
            facts.episodes[event.episode_id] = Episode(
                episode_id=event.episode_id,
                onset_date=event.onset_date,
                diagnosis=event.diagnosis.value,
                severity=event.severity.value if event.severity else None,
                psychotic_features=event.psychotic_features,
                prior_episodes=event.prior_episodes,
                age_at_first_onset=event.age_at_first_onset,
            )
            facts.current_episode_id = event.episode_id
        case EpisodeRevised():
            episode = facts.episodes.get(event.episode_id)
            if episode is not None:
                if event.diagnosis is not None and event.diagnosis.value != episode.diagnosis:
                    episode.diagnosis = event.diagnosis.value
                    revised_on = facts.assessment_date() if episode is facts.episode else None
                    episode.diagnosis_recorded = (
                        f"revised on {revised_on.isoformat()}" if revised_on else "revised"
                    )
                if event.severity is not None:
                    episode.severity = event.severity.value
                if event.psychotic_features is not None:
                    episode.psychotic_features = event.psychotic_features
        case TrialStarted():
            facts.trials[event.trial_id] = Trial(
                trial_id=event.trial_id,
                episode_id=event.episode_id,
                kind=event.kind.value,
                agents=[Agent(generic(a.agent), a.dose_mg_per_day) for a in event.agents],
                started_on=event.started_on,
                baseline_instrument=event.baseline.instrument.value if event.baseline else None,
                baseline_score=event.baseline.score if event.baseline else None,
                sequence=sequence,
            )
        case TrialCompleted():
            trial = facts.trials.get(event.trial_id)
            if trial is not None:
                trial.ended_on = event.ended_on
                trial.max_dose_mg_per_day = event.max_dose_mg_per_day
                by_agent = {generic(m.agent): m.dose_mg_per_day for m in event.max_doses}
                for a in trial.agents:
                    a.max_mg_per_day = by_agent.get(a.agent)
                    if a.max_mg_per_day is None and len(trial.agents) == 1:
                        a.max_mg_per_day = event.max_dose_mg_per_day
                trial.adherence_pct = event.adherence_pct
                trial.sessions = event.sessions
                trial.outcome = event.outcome.value if event.outcome else None
                trial.final_instrument = event.final.instrument.value if event.final else None
                trial.final_score = event.final.score if event.final else None
                trial.placement = event.placement.value if event.placement else None
                trial.completed_sequence = sequence
        case AssessmentRecorded():
            facts.observations.append(
                Observation(
                    event_id=event_id or event.assessment_id,
                    taken_on=event.taken_on,
                    sequence=sequence,
                    instrument=event.instrument.value,
                    score=event.score,
                    item9=_item9(event),
                    suicide_risk=event.suicide_risk.value if event.suicide_risk else None,
                    source=event.source.value,
                )
            )
        case ComorbidityRecorded():
            seen = Record(
                event.condition.value, "present" if event.present else "absent", event.recorded_on, sequence
            )
            if seen.newer_than(facts.comorbidities.get(seen.key)):
                facts.comorbidities[seen.key] = seen
        case WorkupCheckRecorded():
            episode_id = event.episode_id or facts.current_episode_id
            seen = Record(event.check.value, event.result.value, event.done_on, sequence, episode_id)
            key = _keyed(episode_id, seen.key)
            if seen.newer_than(facts.workup.get(key)):
                facts.workup[key] = seen
        case TreatmentPreferenceRecorded():
            episode_id = event.episode_id or facts.current_episode_id
            strategy = event.strategy.strip().lower()
            if drugs.lookup(strategy) is not None:
                strategy = generic(strategy)
            seen = Record(
                strategy,
                "declined" if event.declined else "accepted",
                event.recorded_on,
                sequence,
                episode_id,
            )
            key = _keyed(episode_id, strategy)
            if seen.newer_than(facts.preferences.get(key)):
                facts.preferences[key] = seen
        case JournalEntryRecorded():
            _journal(facts, event)
        case _:
            return facts  # clinic events and the like change nothing clinical
    if event_id is not None:
        facts.as_of_event = event_id
    facts.applied_through = max(facts.applied_through, sequence)
    return facts


def _journal(facts: PatientFacts, event: JournalEntryRecorded) -> None:
    """CLINICAL 6: one entry per date, a later one replacing it. Only the window ending at the
    latest entry is ever shown, and it only moves forward: older entries are dropped."""
    facts.journal[event.entry_on.isoformat()] = JournalDay(
        event.entry_on, event.mood, [s.value for s in event.side_effects], [t.value for t in event.triggers]
    )
    latest = max(j.entry_on for j in facts.journal.values())
    first = latest - timedelta(days=c.JOURNAL_WINDOW_DAYS - 1)
    facts.journal = {k: j for k, j in facts.journal.items() if j.entry_on >= first}


def fold(patient_id: str, events: list[tuple[str, int, EventData]]) -> PatientFacts:
    """Fold (event_id, sequence, payload) triples given in stream order."""
    facts = PatientFacts.empty(patient_id)
    for event_id, sequence, payload in events:
        apply(facts, payload, event_id=event_id, sequence=sequence)
    return facts
