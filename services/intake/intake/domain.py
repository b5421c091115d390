"""The patient record, pure: fold a patient's events into state, and decide whether a
clinic's command is valid and which event it produces. No I/O here.

A rejected command raises `Rejected` naming the field at fault; nothing is stored then.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

import iso3166

from care_shared import drugs
from care_shared.contracts import EventData
from care_shared.contracts.intake import (
    PHQ9_ITEM_LOINC,
    PHQ9_TOTAL_LOINC,
    SCORE_RANGE,
    AgentDose,
    AssessmentRecorded,
    AssessmentSource,
    Comorbidity,
    ComorbidityRecorded,
    Diagnosis,
    DoseUnit,
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
from care_shared.refusals import Rejected

EARLIEST_BIRTH_YEAR = 1900

# Kinds that are a medicine: they name their agents; a combination names two or more.
SINGLE_AGENT_KINDS = {TrialKind.ANTIDEPRESSANT, TrialKind.AUGMENTATION}
PHARMACOLOGICAL_KINDS = SINGLE_AGENT_KINDS | {TrialKind.COMBINATION}
# The rapid-acting agents are trials of their own kind (CLINICAL.md 2), adequacy by sessions.
RAPID_ACTING_KINDS = {TrialKind.ESKETAMINE: "esketamine", TrialKind.KETAMINE: "ketamine"}

# Dose plausibility (CLINICAL.md 2, convention): above 3 x the agent's maximum or below its
# minimum / 20 is refused; it catches a dose entered in the wrong unit (liothyronine "25 mg").
PLAUSIBLE_ABOVE_MAX = Decimal(3)
PLAUSIBLE_BELOW_MIN = Decimal(20)

# A PHQ-9's first eight items (0-3 each) sum to at most 24 (CLINICAL.md 5).
PHQ9_OTHER_ITEMS_MAX = 8 * 3

# Treatment preferences (CLINICAL.md 6): a modality, augmentation, combination or a drug.
MODALITIES = ("psychotherapy", "esketamine", "ketamine", "rtms", "ect", "vns", "dbs")
STRATEGY_WORDS = (*MODALITIES, "augmentation", "combination")

# Codes users write for a country that ISO 3166-1 spells otherwise.
NOT_ISO_COUNTRY = {"UK": "GB", "EL": "GR"}


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
    prior_episodes: int | None = None
    age_at_first_onset: int | None = None


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
    placement: EctPlacement | None = None

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
    country: str | None = None
    # The latest record per condition (CLINICAL.md 1): condition -> (present, recorded_on).
    comorbidities: dict[Comorbidity, tuple[bool, date]] = field(default_factory=dict)
    workup_checks: int = 0
    preferences: int = 0
    journal_entries: int = 0


def fold(history: list[EventData]) -> Patient | None:
    patient: Patient | None = None
    for e in history:
        match e:
            case PatientRegistered():
                patient = Patient(
                    e.patient_id,
                    e.clinic_id,
                    e.external_id,
                    e.birth_year,
                    e.sex,
                    e.timezone,
                    country=e.country,
                )
            case EpisodeOpened() if patient:
                patient.episodes[e.episode_id] = Episode(
                    e.episode_id,
                    e.onset_date,
                    e.diagnosis,
                    e.severity,
                    e.psychotic_features,
                    e.prior_episodes,
                    e.age_at_first_onset,
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
                trial.placement = e.placement
            case AssessmentRecorded() if patient:
                patient.assessments += 1
            case ComorbidityRecorded() if patient:
                latest = patient.comorbidities.get(e.condition)
                if latest is None or e.recorded_on >= latest[1]:
                    patient.comorbidities[e.condition] = (e.present, e.recorded_on)
            case WorkupCheckRecorded() if patient:
                patient.workup_checks += 1
            case TreatmentPreferenceRecorded() if patient:
                patient.preferences += 1
            case JournalEntryRecorded() if patient:
                patient.journal_entries += 1
    return patient


# --- rules -------------------------------------------------------------------------------


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(available_timezones()) | {"UTC"}


def check_timezone(name: str) -> None:
    if name not in _time_zones():
        raise Rejected("timezone", "not an IANA time zone (e.g. Europe/London)")


def check_country(code: str) -> None:
    """ISO 3166-1 alpha-2, from the `iso3166` package's list (kept with the standard)."""
    if code in NOT_ISO_COUNTRY:
        raise Rejected("country", f"not an ISO 3166-1 alpha-2 code: the code is {NOT_ISO_COUNTRY[code]}")
    if code not in iso3166.countries_by_alpha2:
        raise Rejected("country", "not an ISO 3166-1 alpha-2 country code (e.g. GB, US, IE)")


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


def check_severity_score(field_name: str, score: Score) -> None:
    """A trial's baseline or final score: a depression rating. WSAS measures daily functioning
    and never enters outcome or severity (CLINICAL.md 7)."""
    if score.instrument is Instrument.WSAS:
        raise Rejected(
            f"{field_name}.instrument",
            "WSAS rates daily functioning, not depression: record it as an assessment; a trial's score is PHQ-9, MADRS or HAM-D-17",
        )
    check_score(f"{field_name}.score", score.instrument, score.score)


def _mg_text(mg: Decimal) -> str:
    return f"{mg.normalize():f} mg"


def check_plausible_dose(field_name: str, drug: drugs.Drug, mg: float) -> None:
    """CLINICAL.md 2: above 3 x the maximum or below the minimum / 20 is refused. The detail
    gives the band, never the dose sent (it is clinical data)."""
    dose = Decimal(repr(mg))
    ceiling = drug.dose_ceiling_mg
    if ceiling is not None and dose > PLAUSIBLE_ABOVE_MAX * Decimal(repr(ceiling)):
        per = "session" if drug.max_mg_per_day is None else "day"
        raise Rejected(
            field_name,
            f"implausible: above 3 x this agent's usual maximum ({_mg_text(Decimal(repr(ceiling)))} per {per}); "
            f"check the dose and its unit (mg or microgram; this agent's table unit is {drug.unit})",
        )
    if drug.min_mg_per_day is not None and dose < Decimal(repr(drug.min_mg_per_day)) / PLAUSIBLE_BELOW_MIN:
        raise Rejected(
            field_name,
            f"implausible: below this agent's minimum ({_mg_text(Decimal(repr(drug.min_mg_per_day)))} per day) / 20; "
            f"check the dose and its unit (mg or microgram; this agent's table unit is {drug.unit})",
        )


@dataclass(frozen=True)
class DoseIn:
    """An agent and a dose as the clinic entered them: any name (brand, release form, salt),
    the dose in `unit` (none: the agent's table unit, mg for an unknown agent)."""

    agent: str
    dose: float | None = None
    unit: DoseUnit | None = None


def resolve_dose(entered: DoseIn, *, agent_field: str, dose_field: str) -> AgentDose:
    """The generic name (the clinic's text kept in `entered_as`) and the dose in mg, exactly;
    a known agent's dose must be plausible. Unknown agents are kept, not checked."""
    drug = drugs.lookup(entered.agent)
    name = drugs.normalise_agent(entered.agent)
    if not name:
        raise Rejected(agent_field, "name the agent")
    mg = unit = None
    if entered.dose is not None:
        unit = entered.unit or DoseUnit(drug.unit if drug else drugs.MG)
        mg = drugs.to_mg(entered.dose, unit.value)
        if not mg > 0:  # a dose so small it is no dose once in mg
            raise Rejected(dose_field, "is too small to be a dose: check the dose and its unit")
        if drug is not None:
            check_plausible_dose(dose_field, drug, mg)
    return AgentDose(agent=name, dose_mg_per_day=mg, unit=unit, entered_as=entered.agent.strip())


def _fields(single: bool, index: int, list_name: str, dose_name: str) -> tuple[str, str]:
    """Problem field names: the single-agent form's own fields, else `agents[0].dose_mg_per_day`."""
    if single:
        return "agent", dose_name
    return f"{list_name}[{index}].agent", f"{list_name}[{index}].dose_mg_per_day"


# --- decisions ---------------------------------------------------------------------------


def register_patient(
    *,
    patient_id: str,
    clinic_id: str,
    external_id: str,
    birth_year: int,
    sex: Sex,
    timezone: str,
    today: date,
    country: str | None = None,
) -> PatientRegistered:
    if not EARLIEST_BIRTH_YEAR <= birth_year <= today.year:
        raise Rejected("birth_year", f"must be between {EARLIEST_BIRTH_YEAR} and {today.year}")
    check_timezone(timezone)
    if country is not None:
        check_country(country)
    return PatientRegistered(
        patient_id=patient_id,
        clinic_id=clinic_id,
        external_id=external_id,
        birth_year=birth_year,
        sex=sex,
        timezone=timezone,
        country=country,
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
    prior_episodes: int | None = None,
    age_at_first_onset: int | None = None,
) -> EpisodeOpened:
    check_not_future("onset_date", onset_date, today)
    if onset_date.year < patient.birth_year:
        raise Rejected("onset_date", "is before the patient's birth year")
    if age_at_first_onset is not None and age_at_first_onset > onset_date.year - patient.birth_year:
        raise Rejected(
            "age_at_first_onset",
            "is older than the patient was at this episode's onset (birth year to onset date)",
        )
    return EpisodeOpened(
        patient_id=patient.patient_id,
        episode_id=episode_id,
        onset_date=onset_date,
        severity=severity,
        psychotic_features=psychotic_features,
        diagnosis=diagnosis,
        prior_episodes=prior_episodes,
        age_at_first_onset=age_at_first_onset,
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
        psychotic_features=(psychotic_features if psychotic_features != episode.psychotic_features else None),
    )


def _check_agent_fits_kind(kind: TrialKind, agent: AgentDose, agent_field: str) -> None:
    drug = drugs.lookup(agent.agent)
    if kind in PHARMACOLOGICAL_KINDS and drug is not None and drug.is_rapid_acting:
        raise Rejected(agent_field, f"{drug.name} is recorded as a trial of kind {drug.name} (CLINICAL.md 2)")
    if kind in RAPID_ACTING_KINDS and agent.agent != RAPID_ACTING_KINDS[kind]:
        raise Rejected(agent_field, f"a {kind.value} trial names {RAPID_ACTING_KINDS[kind]} or no agent")


def start_trial(
    patient: Patient,
    *,
    trial_id: str,
    kind: TrialKind,
    agents: Sequence[DoseIn | AgentDose],
    started_on: date,
    baseline: Score | None,
    today: date,
    single: bool = False,
) -> TrialStarted:
    """`single`: the agents came as the single-agent form (`agent`, `dose_mg_per_day`, `unit`),
    so problems name those fields; else `agents[i]...`."""
    if patient.current_episode_id is None:
        raise NoEpisode(patient.patient_id)
    check_not_future("started_on", started_on, today)
    if kind in SINGLE_AGENT_KINDS and len(agents) != 1:
        raise Rejected("agent", f"a {kind.value} trial names exactly one agent")
    if kind is TrialKind.COMBINATION and len(agents) < 2:
        raise Rejected("agents", "a combination trial names two or more agents")
    if kind in RAPID_ACTING_KINDS and len(agents) > 1:
        raise Rejected("agents", f"a {kind.value} trial names at most one agent")
    if baseline is not None:
        check_severity_score("baseline", baseline)
    resolved: list[AgentDose] = []
    for i, a in enumerate(agents):
        agent_field, dose_field = _fields(single, i, "agents", "dose_mg_per_day")
        if isinstance(a, AgentDose):  # already in mg (older callers)
            a = DoseIn(a.agent, a.dose_mg_per_day, a.unit or DoseUnit.MG)
        dose = resolve_dose(a, agent_field=agent_field, dose_field=dose_field)
        _check_agent_fits_kind(kind, dose, agent_field)
        if any(r.agent == dose.agent for r in resolved):
            raise Rejected(agent_field, "names the same agent twice")
        resolved.append(dose)
    unknown = [a.agent for a in resolved if drugs.lookup(a.agent) is None]
    return TrialStarted(
        patient_id=patient.patient_id,
        trial_id=trial_id,
        episode_id=patient.current_episode_id,
        kind=kind,
        agents=resolved,
        started_on=started_on,
        baseline=baseline,
        unknown_agents=unknown,
    )


def _max_doses(
    trial: Trial, max_dose: DoseIn | None, max_doses: Sequence[DoseIn] | None
) -> tuple[float | None, list[AgentDose]]:
    """Each agent's maximum daily dose in mg (CLINICAL.md 1): the single-agent form
    (`max_dose`, its agent left blank) is the trial's one agent's; `max_doses` names each
    agent of the trial at most once. A single-agent trial gets both forms in the event."""
    if max_dose is not None and max_doses:
        raise Rejected("max_dose_mg_per_day", "give either max_dose_mg_per_day or max_doses, not both")
    # Older events may carry a brand: compare generic names.
    names = [drugs.normalise_agent(a.agent) for a in trial.agents]
    if max_dose is not None:
        if len(names) != 1:
            raise Rejected(
                "max_dose_mg_per_day",
                "this trial has no agent" if not names else "a combination gives max_doses, one per agent",
            )
        dose = resolve_dose(
            DoseIn(names[0], max_dose.dose, max_dose.unit),
            agent_field="agent",
            dose_field="max_dose_mg_per_day",
        )
        dose = dose.model_copy(update={"entered_as": None})  # the clinic named no agent here
        return dose.dose_mg_per_day, [dose]
    resolved: list[AgentDose] = []
    for i, entered in enumerate(max_doses or ()):
        agent_field, dose_field = _fields(False, i, "max_doses", "dose_mg_per_day")
        if entered.dose is None:
            raise Rejected(dose_field, "give the agent's maximum daily dose")
        dose = resolve_dose(entered, agent_field=agent_field, dose_field=dose_field)
        if dose.agent not in names:
            raise Rejected(agent_field, "is not an agent of this trial")
        if any(r.agent == dose.agent for r in resolved):
            raise Rejected(agent_field, "names the same agent twice")
        resolved.append(dose)
    single = resolved[0].dose_mg_per_day if len(names) == 1 and resolved else None
    return single, resolved


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
    unit: DoseUnit | None = None,
    max_doses: Sequence[DoseIn] | None = None,
    placement: EctPlacement | None = None,
) -> TrialCompleted:
    trial = patient.trials.get(trial_id)
    if trial is None:
        raise UnknownTrial(trial_id)
    if trial.completed:
        raise TrialAlreadyCompleted(trial_id)
    if ended_on < trial.started_on:
        raise Rejected("ended_on", "is before the trial started")
    episode = patient.episodes.get(trial.episode_id)
    if episode is not None and ended_on < episode.onset_date:
        raise Rejected(
            "ended_on", "is before the episode's onset date: the trial does not belong to this episode"
        )
    check_not_future("ended_on", ended_on, today)
    if final is not None:
        check_severity_score("final", final)
    if placement is not None and trial.kind is not TrialKind.ECT:
        raise Rejected("placement", "placement is recorded for ECT only")
    single = DoseIn("", max_dose_mg_per_day, unit) if max_dose_mg_per_day is not None else None
    max_mg, per_agent = _max_doses(trial, single, max_doses)
    return TrialCompleted(
        patient_id=patient.patient_id,
        trial_id=trial_id,
        ended_on=ended_on,
        max_dose_mg_per_day=max_mg,
        max_doses=per_agent,
        adherence_pct=adherence_pct,
        sessions=sessions,
        outcome=outcome,
        final=final,
        placement=placement,
    )


def _phq9_from_items(items: Sequence[int | None], score: int | None, item9: int | None) -> tuple[int, int]:
    """CLINICAL.md 1: the nine answers (0-3) in LOINC panel order; the total 44261-6 is their
    sum and item 9 is 44260-8. A missing or out-of-range item, or a sent total or item 9 that
    differs, is refused naming the LOINC code."""
    if len(items) > len(PHQ9_ITEM_LOINC):
        raise Rejected("items", "a PHQ-9 has nine items")
    for i, code in enumerate(PHQ9_ITEM_LOINC):
        answer = items[i] if i < len(items) else None
        if answer is None:
            raise Rejected(
                f"items[{i}]",
                f"PHQ-9 item {i + 1} (LOINC {code}) is missing: give all nine answers",
                loinc=code,
            )
        if not 0 <= answer <= 3:
            raise Rejected(f"items[{i}]", f"PHQ-9 item {i + 1} (LOINC {code}) is between 0 and 3", loinc=code)
    answers = [int(a) for a in items if a is not None]
    total = sum(answers)
    if score is not None and score != total:
        raise Rejected(
            "score",
            f"the total (LOINC {PHQ9_TOTAL_LOINC}) differs from the sum of the nine items",
            loinc=PHQ9_TOTAL_LOINC,
        )
    last = PHQ9_ITEM_LOINC[-1]
    if item9 is not None and item9 != answers[-1]:
        raise Rejected("item9", f"item9 differs from the ninth item (LOINC {last})", loinc=last)
    return total, answers[-1]


def record_assessment(
    patient: Patient,
    *,
    assessment_id: str,
    instrument: Instrument,
    score: int | None,
    item9: int | None,
    taken_on: date,
    suicide_risk: SuicideRisk | None,
    today: date,
    items: Sequence[int | None] | None = None,
    source: AssessmentSource = AssessmentSource.CLINICIAN,
) -> AssessmentRecorded:
    if items is not None:
        if instrument is not Instrument.PHQ9:
            raise Rejected("items", "items are the nine PHQ-9 answers: PHQ-9 only")
        score, item9 = _phq9_from_items(items, score, item9)
    if score is None:
        raise Rejected("score", "give the score, or for a PHQ-9 the nine items")
    check_score("score", instrument, score)
    if item9 is not None:
        if instrument is not Instrument.PHQ9:
            raise Rejected("item9", "item 9 belongs to the PHQ-9 only")
        if not 0 <= item9 <= 3:
            raise Rejected("item9", "PHQ-9 item 9 is between 0 and 3")
        if item9 > score:
            raise Rejected("item9", "cannot exceed the total score")
        if score - item9 > PHQ9_OTHER_ITEMS_MAX:
            # CLINICAL.md 5: the other eight items (0-3 each) sum to at most 24
            raise Rejected(
                "item9",
                f"is too low for the total: the other eight items sum to at most {PHQ9_OTHER_ITEMS_MAX}",
            )
    check_not_future("taken_on", taken_on, today)
    return AssessmentRecorded(
        patient_id=patient.patient_id,
        assessment_id=assessment_id,
        instrument=instrument,
        score=score,
        item9=item9,
        taken_on=taken_on,
        suicide_risk=suicide_risk,
        items=[int(a) for a in items] if items is not None else None,  # type: ignore[arg-type]
        source=source,
    )


def record_comorbidity(
    patient: Patient, *, record_id: str, condition: Comorbidity, present: bool, recorded_on: date, today: date
) -> ComorbidityRecorded:
    check_not_future("recorded_on", recorded_on, today)
    return ComorbidityRecorded(
        patient_id=patient.patient_id,
        record_id=record_id,
        condition=condition,
        present=present,
        recorded_on=recorded_on,
    )


def record_workup_check(
    patient: Patient, *, record_id: str, check: WorkupCheck, result: WorkupResult, done_on: date, today: date
) -> WorkupCheckRecorded:
    """A pseudo-resistance workup check (CLINICAL.md 6), in the current episode."""
    if patient.current_episode_id is None:
        raise NoEpisode(patient.patient_id)
    check_not_future("done_on", done_on, today)
    return WorkupCheckRecorded(
        patient_id=patient.patient_id,
        record_id=record_id,
        episode_id=patient.current_episode_id,
        check=check,
        result=result,
        done_on=done_on,
    )


def resolve_strategy(strategy: str) -> str:
    """A modality, `augmentation`, `combination` or a drug-table agent (brands, release forms
    and salts resolved to the generic); anything else is refused naming `strategy`."""
    word = " ".join(strategy.lower().split())
    if word in STRATEGY_WORDS:
        return word
    drug = drugs.lookup(strategy)
    if drug is None:
        raise Rejected(
            "strategy",
            "not a strategy: a modality (" + ", ".join(MODALITIES) + "), augmentation, combination "
            "or an agent of the drug table (CLINICAL.md 2)",
        )
    return drug.name


def record_preference(
    patient: Patient, *, record_id: str, strategy: str, declined: bool, recorded_on: date, today: date
) -> TreatmentPreferenceRecorded:
    """CLINICAL.md 6: per episode, the latest record per strategy stands."""
    if patient.current_episode_id is None:
        raise NoEpisode(patient.patient_id)
    generic = resolve_strategy(strategy)
    check_not_future("recorded_on", recorded_on, today)
    return TreatmentPreferenceRecorded(
        patient_id=patient.patient_id,
        record_id=record_id,
        episode_id=patient.current_episode_id,
        strategy=generic,
        declined=declined,
        recorded_on=recorded_on,
    )


def record_journal_entry(
    patient: Patient,
    *,
    entry_id: str,
    entry_on: date,
    mood: int,
    side_effects: Sequence[SideEffect],
    triggers: Sequence[Trigger],
    today: date,
    source: AssessmentSource = AssessmentSource.CLINICIAN,
) -> JournalEntryRecorded:
    """CLINICAL.md 6: one per date, a later entry replaces it; mood 0-10, 0 worst."""
    if not 0 <= mood <= 10:
        raise Rejected("mood", "mood is between 0 (worst) and 10")
    check_not_future("entry_on", entry_on, today)
    return JournalEntryRecorded(
        patient_id=patient.patient_id,
        entry_id=entry_id,
        entry_on=entry_on,
        mood=mood,
        side_effects=list(dict.fromkeys(side_effects)),
        triggers=list(dict.fromkeys(triggers)),
        source=source,
    )
