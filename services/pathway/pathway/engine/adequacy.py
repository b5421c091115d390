"""Was a trial adequate, what was its outcome, did it fail? (CLINICAL.md section 1)"""

from __future__ import annotations

from dataclasses import dataclass, field

from care_shared import drugs
from pathway.engine import conventions as c
from pathway.engine.facts import Trial

PHARMACOLOGICAL = {"antidepressant", "augmentation", "combination"}
FAILURE = {"partial_response", "no_response"}


@dataclass(frozen=True)
class TrialReview:
    trial_id: str
    kind: str
    agents: tuple[str, ...]
    completed: bool
    outcome: str | None
    outcome_source: str | None  # "clinic" or "scores"
    adequate: bool | None  # None: no adequacy rule for this kind, or not completed yet
    missing: tuple[str, ...] = field(default_factory=tuple)
    duration_days: int | None = None

    @property
    def failed(self) -> bool:
        return self.completed and self.outcome in FAILURE

    @property
    def failed_adequately(self) -> bool:
        return self.failed and self.adequate is True

    @property
    def failed_inadequately(self) -> bool:
        return self.failed and self.adequate is False

    @property
    def early_intolerance(self) -> bool:
        """Stopped for intolerance before 4 weeks: recorded and shown, never a failure (EU-PEARL)."""
        return self.outcome == "intolerance" and (self.duration_days or 0) < c.MIN_TRIAL_DAYS

    def to_json(self) -> dict:
        return {
            "trial_id": self.trial_id,
            "kind": self.kind,
            "agents": list(self.agents),
            "completed": self.completed,
            "outcome": self.outcome,
            "outcome_source": self.outcome_source,
            "adequate": self.adequate,
            "missing": list(self.missing),
            "duration_days": self.duration_days,
            "failed_adequately": self.failed_adequately,
        }


def derived_outcome(trial: Trial) -> tuple[str | None, str | None]:
    """The clinic's outcome, or one derived from the trial's baseline and final scores
    (CLINICAL.md 1: remission PHQ-9 < 5, MADRS <= 10, HAM-D-17 <= 7; response >= 50 %)."""
    if trial.outcome:
        return trial.outcome, "clinic"
    if trial.final_score is None or trial.final_instrument is None:
        return None, None
    if trial.final_score <= c.REMISSION_BELOW_OR_AT[trial.final_instrument]:
        return "remission", "scores"
    if trial.baseline_score is None or trial.baseline_instrument != trial.final_instrument or trial.baseline_score == 0:
        return None, None
    reduction = (trial.baseline_score - trial.final_score) / trial.baseline_score
    if reduction >= c.RESPONSE_REDUCTION:
        return "response", "scores"
    if reduction >= c.PARTIAL_RESPONSE_REDUCTION:
        return "partial_response", "scores"
    return "no_response", "scores"


def _dose_gaps(trial: Trial) -> list[str]:
    gaps = []
    single = len(trial.agents) == 1
    for a in trial.agents:
        drug = drugs.lookup(a.agent)
        # The highest dose reached counts; a combination's doses are per agent.
        dose = (trial.max_dose_mg_per_day if single and trial.max_dose_mg_per_day else None) or a.dose_mg_per_day
        if drug is None:
            gaps.append(f"dose of {a.agent} cannot be checked: unknown agent")
        elif dose is None:
            gaps.append(f"dose of {a.agent} not recorded")
        elif dose < drug.min_mg_per_day:
            gaps.append(f"{a.agent} {dose:g} mg/day is below the minimum {drug.min_mg_per_day:g} mg/day")
    if not trial.agents:
        gaps.append("agent not recorded")
    return gaps


def review(trial: Trial) -> TrialReview:
    outcome, source = derived_outcome(trial)
    agents = tuple(a.agent for a in trial.agents)
    duration = (trial.ended_on - trial.started_on).days if trial.ended_on else None
    if not trial.completed:
        return TrialReview(trial.trial_id, trial.kind, agents, False, None, None, None, (), None)
    missing: list[str] = []
    adequate: bool | None
    if trial.kind in PHARMACOLOGICAL:
        # NICE NG222 1.9.1; Cochrane TRD reviews: at least 4 weeks at a recognised dose.
        if duration < c.MIN_TRIAL_DAYS:
            missing.append(f"duration {duration} days is under {c.MIN_TRIAL_DAYS}")
        missing += _dose_gaps(trial)
        if trial.adherence_pct is None:
            missing.append("adherence not recorded")
        elif trial.adherence_pct < c.MIN_ADHERENCE_PCT:
            missing.append(f"adherence {trial.adherence_pct:g}% is under {c.MIN_ADHERENCE_PCT}%")
        adequate = not missing
    elif trial.kind == "psychotherapy":
        enough_sessions = (trial.sessions or 0) >= c.MIN_PSYCHOTHERAPY_SESSIONS
        if not (enough_sessions or duration >= c.MIN_PSYCHOTHERAPY_DAYS):
            missing.append(
                f"{trial.sessions or 0} sessions over {duration} days: under "
                f"{c.MIN_PSYCHOTHERAPY_SESSIONS} sessions and under {c.MIN_PSYCHOTHERAPY_DAYS} days"
            )
        adequate = not missing
    elif trial.kind == "ect":
        if (trial.sessions or 0) < c.MIN_ECT_SESSIONS:
            missing.append(f"{trial.sessions or 0} ECT sessions is under {c.MIN_ECT_SESSIONS}")
        adequate = not missing
    else:
        adequate = None  # esketamine, ketamine, rTMS, VNS, DBS: CLINICAL.md sets no adequacy rule
    return TrialReview(trial.trial_id, trial.kind, agents, True, outcome, source, adequate, tuple(missing), duration)
