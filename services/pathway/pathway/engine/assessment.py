"""From facts to the assessment a clinician reads (DESIGN.md section 6 shape)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from care_shared import drugs
from pathway.engine import conventions as c
from pathway.engine import staging
from pathway.engine import strategies as st
from pathway.engine.adequacy import TrialReview, review
from pathway.engine.facts import PatientFacts


def urgency(facts: PatientFacts) -> tuple[str, str]:
    """CLINICAL.md 5: item 9 >= 1 or flagged risk: urgent; item 9 = 3 or active intent:
    emergency. Read from the latest assessment that assessed suicidality, so an unrelated
    later event never lowers it."""
    obs = facts.latest_suicidality
    if obs is None:
        return "routine", "no suicidality recorded"
    where = f"assessment {obs.event_id} on {obs.taken_on.isoformat()}"
    if obs.item9 == 3 or obs.suicide_risk == "active_intent":
        return "emergency", f"PHQ-9 item 9 = 3 or active intent ({where})"
    if (obs.item9 or 0) >= 1 or obs.suicide_risk in {"flagged", "active_intent"}:
        return "urgent", f"PHQ-9 item 9 >= 1 or clinician-flagged risk ({where})"
    return "routine", f"no suicidality at the latest check ({where})"


def distinct_failed_trials(reviews: list[TrialReview]) -> int:
    """Failed adequate antidepressant and combination trials of distinct antidepressant
    agents (CLINICAL.md 3): the most such trials that can each be paired with an agent of
    its own, augmenters not counted. Sertraline twice is 1; sertraline, then sertraline with
    lithium is 1; sertraline, then sertraline with mirtazapine is 2."""
    trials = [
        [a for a in r.agents if (d := drugs.lookup(a)) is None or not d.is_augmenter]
        for r in staging.failed_antidepressant_reviews(reviews)
    ]
    paired_with: dict[str, int] = {}

    def pair(i: int, seen: set[str]) -> bool:  # augmenting path (bipartite matching)
        for agent in trials[i]:
            if agent not in seen:
                seen.add(agent)
                if agent not in paired_with or pair(paired_with[agent], seen):
                    paired_with[agent] = i
                    return True
        return False

    return sum(pair(i, set()) for i in range(len(trials)))


def latest_completed_trial(facts: PatientFacts, reviews: list[TrialReview]) -> TrialReview | None:
    completed = sorted((r for r in reviews if r.completed), key=lambda r: facts.trials[r.trial_id].ended_on)
    return completed[-1] if completed else None


def _phq9_is_newer(taken_on: date, ended_on: date) -> bool:
    """A PHQ-9 is newer evidence than a trial's end: later, or the same day (conventions)."""
    return taken_on > ended_on or (c.REMISSION_SAME_DAY_PHQ9_DECIDES and taken_on == ended_on)


@dataclass(frozen=True)
class Remission:
    """What the latest evidence says about remission (CLINICAL.md 3; conventions: the latest
    evidence decides). `reason` says what decided; `overrides` names older evidence that said
    remission and was overtaken, so that the status reason can say why the patient is not in it."""

    in_remission: bool
    reason: str
    overrides: str | None = None


def remission(facts: PatientFacts, reviews: list[TrialReview]) -> Remission | None:
    """The most recent of the latest completed trial's end and the latest PHQ-9 taken after a trial
    (on or after a completed trial's end) decides. None when no trial of the episode completed: a
    PHQ-9 during the first trial is a response check, not an outcome (conventions)."""
    latest = latest_completed_trial(facts, reviews)
    if latest is None:
        return None
    ended_on = facts.trials[latest.trial_id].ended_on
    trial_says = f"trial {latest.trial_id} ({latest.kind}) ended on {ended_on.isoformat()} in {latest.outcome or 'an unknown outcome'}"
    trial_remitted = latest.outcome == "remission"
    phq9 = facts.latest_phq9
    # The latest PHQ-9 overall: if it is not after the latest trial, the trial is the newer evidence
    # whether or not the PHQ-9 came after some earlier trial.
    if phq9 is not None and _phq9_is_newer(phq9.taken_on, ended_on):
        remitted = phq9.score <= c.REMISSION_BELOW_OR_AT["PHQ-9"]
        says = (
            f"the latest PHQ-9 is {phq9.score} ({'<' if remitted else '>='} 5) on {phq9.taken_on.isoformat()}, "
            f"on or after the end of the latest completed trial {latest.trial_id} ({ended_on.isoformat()})"
        )
        older = f"trial {latest.trial_id} ended in remission" if trial_remitted and not remitted else None
        return Remission(remitted, f"{says}: the latest evidence decides", older)
    older = None
    if not trial_remitted and phq9 is not None and phq9.score <= c.REMISSION_BELOW_OR_AT["PHQ-9"]:
        first_end = min(facts.trials[r.trial_id].ended_on for r in reviews if r.completed)
        if phq9.taken_on >= first_end:  # "after a trial" (conventions)
            older = f"an earlier PHQ-9 of {phq9.score} on {phq9.taken_on.isoformat()}"
    newest = " (no PHQ-9 since)" if phq9 is None or phq9.taken_on < ended_on else ""
    return Remission(trial_remitted, f"{trial_says}{newest}: the latest evidence decides", older)


def possible_relapse(facts: PatientFacts, reviews: list[TrialReview]) -> dict | None:
    """The latest completed trial ended in remission and a newer PHQ-9 (conventions) is at or above
    the relapse threshold: the status is no longer in_remission, and the clinician is told why."""
    latest = latest_completed_trial(facts, reviews)
    phq9 = facts.latest_phq9
    if latest is None or latest.outcome != "remission" or phq9 is None:
        return None
    if (
        not _phq9_is_newer(phq9.taken_on, facts.trials[latest.trial_id].ended_on)
        or phq9.score < c.POSSIBLE_RELAPSE_PHQ9_AT_OR_ABOVE
    ):
        return None
    # No event id or date in the detail: they would make every later PHQ-9 look like a change.
    return {
        "flag": "possible_relapse",
        "trial_id": latest.trial_id,
        "detail": (
            f"the latest PHQ-9 is {phq9.score} (>= {c.POSSIBLE_RELAPSE_PHQ9_AT_OR_ABOVE}) after trial {latest.trial_id} "
            "ended in remission: no longer in_remission (CLINICAL.md §3, the latest evidence decides); review for relapse"
        ),
    }


def status(facts: PatientFacts, reviews: list[TrialReview]) -> tuple[str, str]:
    episode = facts.episode
    if episode is None:
        return "no_adequate_failure", "no episode recorded yet"
    if episode.diagnosis != "mdd":
        return "diagnosis_review", f"diagnosis revised to {episode.diagnosis}: off the unipolar TRD pathway"
    evidence = remission(facts, reviews)
    if evidence is not None and evidence.in_remission:
        return "in_remission", evidence.reason
    name, reason = _status_without_remission(facts, reviews)
    if evidence is not None and evidence.overrides:
        reason += f"; not in remission although {evidence.overrides}: {evidence.reason}"
    return name, reason


def _status_without_remission(facts: PatientFacts, reviews: list[TrialReview]) -> tuple[str, str]:
    episode = facts.episode
    n = distinct_failed_trials(reviews)
    if n == 0:
        # CLINICAL.md 3 counts antidepressant and combination trials of antidepressant agents only:
        # say so when another trial (psychotherapy, augmentation, ECT) did fail adequately.
        uncounted = [f"{r.kind} trial {r.trial_id}" for r in reviews if r.failed_adequately]
        if uncounted:
            return "no_adequate_failure", (
                f"no failed adequate trial that counts toward TRD yet; failed adequately but not counted: {', '.join(uncounted)}"
            )
        return "no_adequate_failure", "no failed adequate trial yet"
    if n == 1:
        return "inadequate_response", "1 failed adequate antidepressant trial"
    assessment_date = facts.last_clinical_date or episode.onset_date
    months = staging.whole_months(episode.onset_date, assessment_date)
    failed_aug = any(r.kind == "augmentation" and r.failed_adequately for r in reviews)
    if months > 12 and failed_aug:
        return "chronic_resistant", f"TRD, episode {months} months, a failed adequate augmentation"
    return "trd", f"{n} failed adequate trials of distinct antidepressant agents"


def flags(facts: PatientFacts, reviews: list[TrialReview], urgency_level: str) -> list[dict]:
    out = []
    # Beside whatever status the latest evidence gives (never in_remission: the PHQ-9 decides).
    if relapse := possible_relapse(facts, reviews):
        out.append(relapse)
    for r in reviews:
        if r.failed_inadequately:
            out.append({"flag": "pseudo_resistance", "trial_id": r.trial_id, "detail": "; ".join(r.missing)})
        if r.early_intolerance:
            out.append(
                {
                    "flag": "intolerance",
                    "trial_id": r.trial_id,
                    "detail": f"stopped after {r.duration_days} days for intolerance: not a failure (EU-PEARL)",
                }
            )
    for agent in st.unknown_agents(reviews):
        out.append(
            {
                "flag": "unknown_agent",
                "agent": agent,
                "detail": "not in the drug table: class and minimum dose unknown",
            }
        )
    if st.buspirone_recorded(reviews):
        out.append(
            {
                "flag": "buspirone_recorded",
                "detail": "buspirone augmentation is not evidence-based (Cochrane 2019: no benefit)",
            }
        )
    episode = facts.episode
    if episode and episode.psychotic_features:
        out.append({"flag": "psychotic_features", "detail": "ECT first-line (CANMAT 2016)"})
    if urgency_level != "routine":
        out.append(
            {"flag": "suicidality", "detail": f"urgency {urgency_level}: crisis resources in every message"}
        )
    return out


def referral_advice(level: str, status_name: str, episode, recs: list[st.Recommendation]) -> dict:  # noqa: ANN001
    """CLINICAL.md 7. The capabilities name what the receiving clinic must offer."""
    reasons, capabilities = [], []
    if status_name in {"trd", "chronic_resistant"}:
        reasons.append(f"status {status_name}")
    if level in {"urgent", "emergency"}:
        reasons.append(f"suicidality ({level})")
    if episode is not None and episode.psychotic_features:
        reasons.append("psychotic features")
    if status_name == "diagnosis_review":
        reasons.append("suspected bipolar disorder: diagnosis review")
    if any(r.strategy in {"augment", "combine"} and r.options for r in recs):
        reasons.append("combination or augmentation being considered (NICE NG222 1.9.9)")
    if reasons:
        capabilities.append("mood_disorder_clinic")
        if any(r.strategy == "ect" and r.options and r.rationale.endswith("ECT is first-line") for r in recs):
            capabilities.append("ect")
        centre = next((r for r in recs if r.strategy == "specialised_centre"), None)
        if centre:
            # The receiving centre must offer what the recommendation names (CLINICAL.md 6, 7).
            capabilities += [
                cap for cap, option in (("vns", "VNS"), ("dbs", "DBS")) if option in centre.options
            ]
            capabilities.append("clinical_trials")
    return {"advised": bool(reasons), "capabilities": capabilities, "reasons": reasons}


def assess(facts: PatientFacts) -> dict:
    episode = facts.episode
    trials = facts.episode_trials()
    reviews = [review(t) for t in trials]
    status_name, status_reason = status(facts, reviews)
    level, level_reason = urgency(facts)
    assessment_date = facts.last_clinical_date or (episode.onset_date if episode else None)
    thase = staging.thase_rush(reviews)
    stages = {
        "thase_rush": thase,
        "maudsley": staging.maudsley(episode, reviews, assessment_date) if episode else None,
        "mgh": staging.mgh(
            reviews,
            {t.trial_id: (t.agents[0].dose_mg_per_day if len(t.agents) == 1 else None) for t in trials},
            {t.trial_id: t.max_dose_mg_per_day for t in trials},
        ),
    }
    situation = st.Situation(
        status=status_name,
        reviews=reviews,
        failed_classes=staging.failed_classes(reviews),
        failed_agents=staging.failed_agents(reviews),
        thase_rush_stage=thase["stage"],
        psychotic_features=bool(episode and episode.psychotic_features),
        severe=bool(episode and staging.severity_of(episode)[0] == "severe"),
        suicidality=level != "routine",
    )
    recs: list[st.Recommendation] = []
    # CLINICAL.md 5 before any status: psychotic features, or a severe baseline with suicidality,
    # list ECT first (or show it as tried) whatever the status, in_remission included.
    first = st.ect_first(situation)
    if first:
        recs.append(first)
    if status_name == "in_remission":
        recs.append(
            st.Recommendation(
                "continue_and_monitor",
                ["continue the treatment that worked", "monitor for relapse"],
                status_reason,
                "NICE NG222 (preventing relapse)",
                "primary_care",
            )
        )
    elif status_name == "diagnosis_review":
        recs.append(
            st.Recommendation(
                "diagnosis_review",
                ["bipolar assessment in a mood disorder clinic"],
                status_reason,
                "CLINICAL.md 1; CANMAT 2023",
                "mood_disorder_clinic",
            )
        )
    else:
        recs += st.optimise(situation)
        recs += st.pseudo_resistance_checks(situation)
        recs += st.after_one_failure(situation)
        recs += st.trd_strategies(situation)
        recs += st.advanced(situation)
    recs.append(st.lifestyle())
    return {
        "patient_id": facts.patient_id,
        "episode_id": facts.current_episode_id,
        "status": status_name,
        "status_reason": status_reason,
        "urgency": level,
        "urgency_reason": level_reason,
        "failed_adequate_trials": distinct_failed_trials(reviews),
        "stages": stages,
        "trials": [r.to_json() for r in reviews],
        "flags": flags(facts, reviews, level),
        "recommendations": [r.to_json(i + 1) for i, r in enumerate(recs)],
        "referral": referral_advice(level, status_name, episode, recs),
        "assessment_date": assessment_date.isoformat() if assessment_date else None,
        "as_of_event": facts.as_of_event,
    }
