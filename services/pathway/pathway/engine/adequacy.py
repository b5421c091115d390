"""Was a trial adequate, what was its outcome, did it fail? (docs/CLINICAL.md section 1)

A trial is adequate (True), not adequate (False: a recorded dose, duration, adherence or
session count falls short) or of unknown adequacy (None: a field its rule needs was not
recorded, an agent is unknown, or the outcome is undetermined). Unknown is never a failure
of either kind and raises no pseudo-resistance flag (CLINICAL 1, missing data).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from care_shared import drugs
from pathway.engine import conventions as c
from pathway.engine.facts import Trial

PHARMACOLOGICAL = {"antidepressant", "augmentation", "combination"}
MODALITIES = ("psychotherapy", "esketamine", "ketamine", "rtms", "ect", "vns", "dbs")
FAILURE = {"partial_response", "no_response"}


@dataclass(frozen=True)
class TrialReview:
    trial_id: str
    kind: str
    agents: tuple[str, ...]
    started_on: date
    ended_on: date | None
    outcome: str | None
    outcome_source: str | None  # "clinic" or "scores"
    adequate: bool | None  # None: unknown (gaps), or not completed yet
    shortfalls: tuple[str, ...] = ()
    gaps: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    duration_days: int | None = None
    start_doses: tuple[float | None, ...] = ()
    top_doses: tuple[float | None, ...] = ()
    placement: str | None = None
    augmenter_inside: bool = False  # a combination with an augmenter also counts as augmentation
    time_at_dose_unknown: bool = False

    @property
    def completed(self) -> bool:
        return self.ended_on is not None

    @property
    def running(self) -> bool:
        return not self.completed

    @property
    def failed(self) -> bool:
        """A failure of either kind: adequate or not; unknown adequacy is neither."""
        return self.completed and self.outcome in FAILURE and self.adequate is not None

    @property
    def failed_adequately(self) -> bool:
        return self.failed and self.adequate is True

    @property
    def failed_inadequately(self) -> bool:
        return self.failed and self.adequate is False

    @property
    def intolerance(self) -> bool:
        return self.completed and self.outcome == "intolerance"

    @property
    def early_intolerance(self) -> bool:
        """Stopped for intolerance before 4 weeks: recorded and shown, never a failure (EU-PEARL)."""
        return self.intolerance and (self.duration_days or 0) < c.MIN_TRIAL_DAYS

    @property
    def counts_as_augmentation(self) -> bool:
        """CLINICAL 1 roles: an augmentation trial, or a combination containing an augmenter."""
        return self.kind == "augmentation" or (self.kind == "combination" and self.augmenter_inside)

    @property
    def missing(self) -> tuple[str, ...]:
        return self.shortfalls + self.gaps

    def to_json(self) -> dict:
        return {
            "trial_id": self.trial_id,
            "kind": self.kind,
            "agents": list(self.agents),
            "completed": self.completed,
            "outcome": self.outcome,
            "outcome_source": self.outcome_source,
            "adequate": self.adequate,
            "adequacy": "adequate"
            if self.adequate
            else "not_adequate"
            if self.adequate is False
            else ("adequacy_unknown" if self.completed else "running"),
            "missing": list(self.missing),
            "notes": list(self.notes),
            "duration_days": self.duration_days,
            "failed_adequately": self.failed_adequately,
        }


def derived_outcome(trial: Trial) -> tuple[str | None, str | None]:
    """The clinic's outcome, or one derived from the trial's baseline and final scores
    (CLINICAL 1: remission PHQ-9 < 5, MADRS <= 10, HAM-D-17 <= 7; response >= 50 %; baseline
    and final on different instruments: only a final in remission gives an outcome)."""
    if trial.outcome:
        return trial.outcome, "clinic"
    if trial.final_score is None or trial.final_instrument not in c.REMISSION_AT_OR_BELOW:
        return None, None
    if trial.final_score <= c.REMISSION_AT_OR_BELOW[trial.final_instrument]:
        return "remission", "scores"
    if (
        trial.baseline_score is None
        or trial.baseline_instrument != trial.final_instrument
        or trial.baseline_score == 0
    ):
        return None, None
    reduction = (trial.baseline_score - trial.final_score) / trial.baseline_score
    if reduction >= c.RESPONSE_REDUCTION:
        return "response", "scores"
    if reduction >= c.PARTIAL_RESPONSE_REDUCTION:
        return "partial_response", "scores"
    return "no_response", "scores"


def top_dose(a) -> float | None:
    """The highest daily dose recorded for an agent: its maximum, else its starting dose."""
    doses = [d for d in (a.dose_mg_per_day, a.max_mg_per_day) if d is not None]
    return max(doses) if doses else None


def _pharmacological(trial: Trial, duration: int, shortfalls: list, gaps: list, notes: list) -> bool:
    """NICE NG222 1.9.1; ATHF per-agent adequacy: 28 days, every agent at or above its minimum,
    adherence >= 80 % (convention). Returns whether a start dose was below the minimum."""
    if duration < c.MIN_TRIAL_DAYS:
        shortfalls.append(f"duration {duration} days is under {c.MIN_TRIAL_DAYS}")
    if not trial.agents:
        gaps.append("agent not recorded")
    started_below = False
    for a in trial.agents:
        drug = drugs.lookup(a.agent)
        dose = top_dose(a)
        if drug is not None and drug.name == "lithium":
            # by dose only, whatever the dose: below 600 mg the serum level may still be adequate
            notes.append(f"lithium: adequacy by dose only; {c.LITHIUM_SERUM_NOTE}")
        if drug is None:
            gaps.append(f"{a.agent}: unknown agent, minimum dose unknown")
        elif drug.min_mg_per_day is None:
            gaps.append(f"{a.agent}: no daily minimum dose (adequacy by sessions)")
        elif dose is None:
            gaps.append(f"dose of {a.agent} not recorded")
        elif dose < drug.min_mg_per_day:
            shortfalls.append(
                f"{a.agent} {drugs.per_day_text(drug, dose)} is below the minimum "
                f"{drugs.per_day_text(drug, drug.min_mg_per_day)}"
            )
        else:
            if a.dose_mg_per_day is not None and a.dose_mg_per_day < drug.min_mg_per_day:
                started_below = True
    if trial.adherence_pct is None:
        gaps.append("adherence not recorded")
    elif trial.adherence_pct < c.MIN_ADHERENCE_PCT:
        shortfalls.append(f"adherence {trial.adherence_pct:g}% is under {c.MIN_ADHERENCE_PCT}%")
    return started_below


def _sessions(trial: Trial, minimum: int, what: str, shortfalls: list, gaps: list) -> None:
    if trial.sessions is None:
        gaps.append(f"{what} not recorded")
    elif trial.sessions < minimum:
        shortfalls.append(f"{trial.sessions} {what} is under {minimum}")


def review(trial: Trial, onset: date | None = None) -> TrialReview:
    outcome, source = derived_outcome(trial)
    agents = tuple(a.agent for a in trial.agents)
    augmenter_inside = any((d := drugs.lookup(a)) is not None and d.is_augmenter for a in agents)
    common = dict(
        trial_id=trial.trial_id,
        kind=trial.kind,
        agents=agents,
        started_on=trial.started_on,
        ended_on=trial.ended_on,
        start_doses=tuple(a.dose_mg_per_day for a in trial.agents),
        top_doses=tuple(top_dose(a) for a in trial.agents),
        placement=trial.placement,
        augmenter_inside=augmenter_inside,
    )
    if not trial.completed:
        return TrialReview(**common, outcome=None, outcome_source=None, adequate=None)
    # CLINICAL 1 dates: a trial started before the onset counts from the onset (convention).
    counted_from = max(trial.started_on, onset) if onset else trial.started_on
    duration = (trial.ended_on - counted_from).days
    shortfalls: list[str] = []
    gaps: list[str] = []
    notes: list[str] = []
    started_below = False
    kind = trial.kind
    if kind in PHARMACOLOGICAL:
        started_below = _pharmacological(trial, duration, shortfalls, gaps, notes)
    elif kind == "psychotherapy":  # NG222 1.9.1; Cochrane 2018 (convention: 8 sessions)
        _sessions(trial, c.MIN_PSYCHOTHERAPY_SESSIONS, "sessions", shortfalls, gaps)
    elif kind == "esketamine":  # Spravato label (convention: 8 sessions over at least 21 days)
        _sessions(trial, c.MIN_ESKETAMINE_SESSIONS, "sessions", shortfalls, gaps)
        if duration < c.MIN_ESKETAMINE_DAYS:
            shortfalls.append(f"{duration} days is under {c.MIN_ESKETAMINE_DAYS}")
    elif kind == "ketamine":  # Murrough 2013 (convention: 6 infusions)
        _sessions(trial, c.MIN_KETAMINE_INFUSIONS, "infusions", shortfalls, gaps)
    elif kind == "rtms":  # CANMAT 2016 (convention: 20 sessions)
        _sessions(trial, c.MIN_RTMS_SESSIONS, "sessions", shortfalls, gaps)
    elif kind == "ect":  # CANMAT 2016
        _sessions(trial, c.MIN_ECT_SESSIONS, "ECT sessions", shortfalls, gaps)
    # vns, dbs: adequate when completed with an outcome (convention)
    if outcome is None:
        gaps.append("outcome undetermined")
    adequate = False if shortfalls else None if gaps else True
    return TrialReview(
        **common,
        outcome=outcome,
        outcome_source=source,
        adequate=adequate,
        shortfalls=tuple(shortfalls),
        gaps=tuple(gaps),
        notes=tuple(notes),
        duration_days=duration,
        time_at_dose_unknown=started_below,
    )
