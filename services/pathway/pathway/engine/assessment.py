"""From facts to the assessment a clinician reads (DESIGN.md section 6 shape), rule set
`trd-rules 2026.12` (docs/CLINICAL.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from care_shared import drugs
from pathway.engine import conventions as c
from pathway.engine import monitoring, safety, staging
from pathway.engine import strategies as st
from pathway.engine.adequacy import PHARMACOLOGICAL, TrialReview, review, top_dose
from pathway.engine.facts import Observation, PatientFacts


# --- CLINICAL 3: counting failures ------------------------------------------------------------
def distinct_failed_trials(reviews: list[TrialReview]) -> int:
    """Failed adequate antidepressant and combination trials of distinct antidepressant
    agents (CLINICAL 3): the most such trials that can each be paired with an agent of its
    own, augmenters not counted. Sertraline twice is 1; sertraline, then sertraline with
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


def failed_augmentation(reviews: list[TrialReview]) -> list[TrialReview]:
    """CLINICAL 3 chronic_resistant: failed adequate augmentation trials (a combination with an
    augmenter counts), buspirone excluded (Cochrane 2019: no benefit)."""
    out = []
    for r in reviews:
        if not (r.failed_adequately and r.counts_as_augmentation):
            continue
        augmenters = [a for a in r.agents if (d := drugs.lookup(a)) is not None and d.is_augmenter]
        if any(a != "buspirone" for a in augmenters):
            out.append(r)
    return out


# --- CLINICAL 3: remission, the latest evidence decides ---------------------------------------
def _scores(facts: PatientFacts) -> list[Observation]:
    episode = facts.episode
    return [
        o
        for o in facts.observations
        if o.instrument in c.OUTCOME_INSTRUMENTS and episode is not None and o.taken_on >= episode.onset_date
    ]


def latest_completed_trial(reviews: list[TrialReview]) -> TrialReview | None:
    completed = sorted((r for r in reviews if r.completed), key=lambda r: (r.ended_on, r.started_on))
    return completed[-1] if completed else None


def _in_remission(o: Observation) -> bool:
    return o.score <= c.REMISSION_AT_OR_BELOW[o.instrument]


@dataclass(frozen=True)
class Remission:
    in_remission: bool
    reason: str
    overrides: str | None = None  # older evidence of remission that was overtaken
    deciding_scores: tuple[Observation, ...] = ()
    trial: TrialReview | None = None


def remission(facts: PatientFacts, reviews: list[TrialReview]) -> Remission | None:
    """The newer of (a) the end of the latest completed trial and (b) the latest PHQ-9, MADRS or
    HAM-D-17 taken on or after the end of a completed trial decides (same date: (b)). Several
    scores on that date must all be in remission (convention). None with no completed trial: a
    score during the first trial is a response check, not an outcome."""
    latest = latest_completed_trial(reviews)
    if latest is None:
        return None
    trial_says = f"trial {latest.trial_id} ({latest.kind}) ended on {latest.ended_on.isoformat()} in {latest.outcome or 'an undetermined outcome'}"
    trial_remitted = latest.outcome == "remission"
    scores = _scores(facts)
    last_day = max((o.taken_on for o in scores), default=None)
    if last_day is not None and last_day >= latest.ended_on:
        on_day = tuple(sorted((o for o in scores if o.taken_on == last_day), key=lambda o: o.sequence))
        remitted = all(_in_remission(o) for o in on_day)
        listed = ", ".join(f"{o.instrument} {o.score}" for o in on_day)
        says = (
            f"the latest scores ({listed}) on {last_day.isoformat()} are {'all' if remitted else 'not all'} at or "
            f"below remission, on or after the end of trial {latest.trial_id} ({latest.ended_on.isoformat()})"
        )
        older = f"trial {latest.trial_id} ended in remission" if trial_remitted and not remitted else None
        return Remission(remitted, f"{says}: the latest evidence decides", older, on_day, latest)
    older = None
    if not trial_remitted and last_day is not None:
        first_end = min(r.ended_on for r in reviews if r.completed)
        on_day = [o for o in scores if o.taken_on == last_day]
        if last_day >= first_end and all(_in_remission(o) for o in on_day):
            older = f"an earlier {on_day[0].instrument} of {on_day[0].score} on {last_day.isoformat()}"
    newest = "" if last_day is not None and last_day >= latest.ended_on else " (no score since)"
    return Remission(trial_remitted, f"{trial_says}{newest}: the latest evidence decides", older, (), latest)


def possible_relapse(evidence: Remission | None) -> dict | None:
    """Convention: the latest completed trial ended in remission and a newer PHQ-9 is at or above
    the relapse threshold: no longer in_remission, and the clinician is told why."""
    if evidence is None or evidence.trial is None or evidence.trial.outcome != "remission":
        return None
    high = [
        o
        for o in evidence.deciding_scores
        if o.instrument == "PHQ-9" and o.score >= c.POSSIBLE_RELAPSE_PHQ9_AT_OR_ABOVE
    ]
    if not high:
        return None
    return {
        "flag": "possible_relapse",
        "trial_id": evidence.trial.trial_id,
        "detail": (
            f"a PHQ-9 of {max(o.score for o in high)} (>= {c.POSSIBLE_RELAPSE_PHQ9_AT_OR_ABOVE}) after trial "
            f"{evidence.trial.trial_id} ended in remission: no longer in_remission (CLINICAL.md §3, the latest "
            "evidence decides); review for relapse"
        ),
    }


# --- CLINICAL 1, 3: status ----------------------------------------------------------------------
def diagnosis_wording(facts: PatientFacts) -> str:
    episode = facts.episode
    if episode.diagnosis == "bipolar":
        return f"diagnosis: bipolar disorder ({episode.diagnosis_recorded})"
    return "diagnosis revised: review"


def status(
    facts: PatientFacts, reviews: list[TrialReview], evidence: Remission | None, assessment_date: date
) -> tuple[str, str]:
    episode = facts.episode
    if episode is None:
        return "no_adequate_failure", "no episode recorded yet"
    if episode.diagnosis != "mdd":
        return "diagnosis_review", f"{diagnosis_wording(facts)}: off the unipolar TRD pathway"
    if evidence is not None and evidence.in_remission:
        return "in_remission", evidence.reason
    name, reason = _status_without_remission(facts, reviews, assessment_date)
    if evidence is not None and evidence.overrides:
        reason += f"; not in remission although {evidence.overrides}: {evidence.reason}"
    return name, reason


def _status_without_remission(
    facts: PatientFacts, reviews: list[TrialReview], assessment_date: date
) -> tuple[str, str]:
    episode = facts.episode
    n = distinct_failed_trials(reviews)
    if n == 0:
        # Only antidepressant and combination trials of antidepressant agents count: say so
        # when another trial (psychotherapy, augmentation, ECT) did fail adequately.
        uncounted = [f"{r.kind} trial {r.trial_id}" for r in reviews if r.failed_adequately]
        if uncounted:
            return "no_adequate_failure", (
                f"no failed adequate trial that counts toward TRD yet; failed adequately but not counted: {', '.join(uncounted)}"
            )
        return "no_adequate_failure", "no failed adequate trial yet"
    if n == 1:
        return "inadequate_response", "1 failed adequate antidepressant trial"
    days = (assessment_date - episode.onset_date).days
    augmentations = failed_augmentation(reviews)
    if days > c.CHRONIC_DAYS and augmentations:
        return "chronic_resistant", (
            f"TRD, episode {days} days (> {c.CHRONIC_DAYS}), a failed adequate augmentation ({augmentations[0].trial_id})"
        )
    return "trd", f"{n} failed adequate trials of distinct antidepressant agents"


# --- CLINICAL 1, 6: the current trial -------------------------------------------------------------
def current_agents(reviews: list[TrialReview]) -> tuple[list[tuple[str, float | None]], TrialReview | None]:
    """CLINICAL 1: those of running trials; with none running, those of the latest completed
    pharmacological trial if no trial started after it and it did not end in remission or
    intolerance. Returns (agent, highest recorded dose) pairs and the trial they come from."""
    running = [r for r in reviews if r.running]
    if running:
        agents = [(a, d) for r in running for a, d in zip(r.agents, r.top_doses, strict=True)]
        return agents, max(running, key=lambda r: r.started_on)
    pharm = [r for r in reviews if r.completed and r.kind in PHARMACOLOGICAL]
    if not pharm:
        return [], None
    last = max(pharm, key=lambda r: (r.ended_on, r.started_on))
    if any(r.started_on > last.started_on and r.trial_id != last.trial_id for r in reviews):
        return [], None
    if last.outcome in {"remission", "intolerance"}:
        return [], None
    return list(zip(last.agents, last.top_doses, strict=True)), last


def response_on_current(facts: PatientFacts, trials: dict, reviews: list[TrialReview]) -> str | None:
    """CLINICAL 6: response, not remission: the running trial's latest score on its baseline
    instrument >= 50 % lower, or the latest completed pharmacological trial ended `response` with
    none started after."""
    for r in sorted((r for r in reviews if r.running), key=lambda r: r.started_on, reverse=True):
        t = trials[r.trial_id]
        # a response is read on an outcome instrument only (CLINICAL 7: WSAS never enters outcome)
        if not t.baseline_score or t.baseline_instrument not in c.OUTCOME_INSTRUMENTS:
            continue
        same = [
            o
            for o in facts.observations
            if o.instrument == t.baseline_instrument and o.taken_on >= t.started_on
        ]
        if not same:
            continue
        # the latest score; several on that date: the highest, whatever the entry order
        last = max(same, key=lambda o: (o.taken_on, o.score))
        reduction = (t.baseline_score - last.score) / t.baseline_score
        if reduction >= c.RESPONSE_REDUCTION and not _in_remission(last):
            return f"trial {r.trial_id}: {t.baseline_instrument} {t.baseline_score} -> {last.score}"
    completed = [r for r in reviews if r.completed and r.kind in PHARMACOLOGICAL]
    if completed:
        last = max(completed, key=lambda r: (r.ended_on, r.started_on))
        if last.outcome == "response" and not any(r.started_on > last.started_on for r in reviews):
            return f"trial {last.trial_id} ended in response"
    return None


# --- CLINICAL 7 -----------------------------------------------------------------------------------
def latest_wsas(facts: PatientFacts) -> int | None:
    episode = facts.episode
    wsas = [
        o
        for o in facts.observations
        if o.instrument == "WSAS" and episode and o.taken_on >= episode.onset_date
    ]
    if not wsas:
        return None
    day = max(o.taken_on for o in wsas)
    return max(o.score for o in wsas if o.taken_on == day)  # highest on a shared date


def referral_advice(
    level: str,
    status_name: str,
    facts: PatientFacts,
    reviews: list[TrialReview],
    recs: list[st.Recommendation],
) -> dict:
    """CLINICAL 7. The capabilities name what the receiving clinic must offer: what a
    recommendation advises, never what is in tried, declined or not_offered."""
    episode = facts.episode
    reasons: list[str] = []
    if status_name in {"trd", "chronic_resistant"}:
        reasons.append(f"status {status_name} (seed 001: two failed adequate trials)")
    if level in {"urgent", "emergency"}:
        reasons.append(f"suicidality ({level})")
    if episode is not None and episode.psychotic_features:
        reasons.append("psychotic features (NICE NG222 1.12.1)")
    if status_name == "diagnosis_review":
        reasons.append(diagnosis_wording(facts))
    if status_name != "in_remission":
        augmenting = {"augment", "combine", "antidepressant_plus_antipsychotic"}
        recommended = any(
            r.strategy in augmenting
            or (r.strategy == "optimise_to_remission" and any(drugs.lookup(o) for o in r.options))
            for r in recs
        )
        started = [r.trial_id for r in reviews if r.kind in {"augmentation", "combination"}]
        if recommended or started:
            why = "recommended" if recommended else f"trial {', '.join(started)} started in the episode"
            reasons.append(f"augmentation or combination {why} (NICE NG222 1.9.9)")
    wsas = latest_wsas(facts)
    if wsas is not None and wsas > c.WSAS_IMPAIRED_ABOVE:
        reasons.append(f"daily life seriously impaired: WSAS {wsas} > {c.WSAS_IMPAIRED_ABOVE} (Mundt 2002)")
    capabilities: list[str] = []
    if reasons:
        capabilities.append("mood_disorder_clinic")
        for r in recs:
            capabilities += [cap for cap in r.capabilities if cap not in capabilities]
    return {"advised": bool(reasons), "capabilities": capabilities, "reasons": reasons}


# --- flags ----------------------------------------------------------------------------------------
def trial_flags(reviews: list[TrialReview]) -> list[dict]:
    out = []
    for r in reviews:
        if r.failed_inadequately:
            out.append(
                {"flag": "pseudo_resistance", "trial_id": r.trial_id, "detail": "; ".join(r.shortfalls)}
            )
        if r.completed and r.adequate is None:
            out.append({"flag": "adequacy_unknown", "trial_id": r.trial_id, "detail": "; ".join(r.gaps)})
        if r.time_at_dose_unknown:
            out.append(
                {
                    "flag": "time_at_dose_unknown",
                    "trial_id": r.trial_id,
                    "detail": "started below the minimum dose; dose dates are not recorded",
                }
            )
        for note in r.notes:
            out.append({"flag": "lithium_serum_level", "trial_id": r.trial_id, "detail": note})
        if r.early_intolerance:
            out.append(
                {
                    "flag": "intolerance",
                    "trial_id": r.trial_id,
                    "detail": f"stopped after {r.duration_days} days for intolerance: not a failure (EU-PEARL)",
                }
            )
        elif r.intolerance:
            out.append(
                {
                    "flag": "intolerance",
                    "trial_id": r.trial_id,
                    "detail": "stopped for intolerance: in tried, not offered again",
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
                "detail": "buspirone augmentation is not evidence-based (Cochrane 2019: no benefit); it does not establish chronic_resistant",
            }
        )
    return out


def assess(facts: PatientFacts) -> dict:
    episode = facts.episode
    trials = facts.episode_trials()
    onset = episode.onset_date if episode else None
    reviews = [review(t, onset) for t in trials]
    assessment_date = facts.assessment_date()
    evidence = remission(facts, reviews) if episode else None
    status_name, status_reason = (
        status(facts, reviews, evidence, assessment_date)
        if episode
        else ("no_adequate_failure", "no episode recorded yet")
    )
    u = safety.urgency(facts.observations)
    thase = staging.thase_rush(reviews)
    first_phq9 = None
    if episode:
        inside = [
            o for o in facts.observations if o.instrument == "PHQ-9" and o.taken_on >= episode.onset_date
        ]
        if inside:
            # CLINICAL 4: the episode's first PHQ-9; several on that date: the highest, so that
            # the entry order never decides and severity is never read lower (ECT first, §5)
            first_on = min(o.taken_on for o in inside)
            first_phq9 = max(o.score for o in inside if o.taken_on == first_on)
    stages = {
        "thase_rush": thase,
        "maudsley": staging.maudsley(episode, reviews, assessment_date, first_phq9) if episode else None,
        "mgh": staging.mgh(reviews),
    }
    factors = (
        monitoring.risk_factors(facts, assessment_date)
        if episode and status_name in {"no_adequate_failure", "inadequate_response"}
        else []
    )
    workup = monitoring.workup(facts, reviews)
    agents, current_trial = current_agents(reviews)
    declined = {k: r for k, r in facts.episode_records(facts.preferences).items()}
    situation = st.Situation(
        status=status_name,
        reviews=reviews,
        failed_classes=staging.failed_classes(reviews),
        failed_agents=staging.failed_agents(reviews),
        thase_rush_stage=thase["stage"],
        psychotic_features=bool(episode and episode.psychotic_features),
        severe=bool(episode and staging.severity_of(episode, first_phq9)[0] == "severe"),
        urgency=u.level,
        assessment_date=assessment_date,
        onset=onset,
        declined={k for k, r in declined.items() if r.value == "declined"},
        current_agents=agents,
        response=response_on_current(facts, facts.trials, reviews),
        risk_factors=len(factors),
        open_checks=[w["check"] for w in workup or [] if w["state"] == "open"],
    )
    recs = st.recommend(situation)
    journal = monitoring.journal(facts, current_trial.started_on if current_trial else None)

    flags = []
    if relapse := possible_relapse(evidence):
        flags.append(relapse)
    flags += trial_flags(reviews)
    if episode and episode.psychotic_features:
        flags.append(
            {
                "flag": "psychotic_features",
                "detail": "ECT and an antidepressant plus an antipsychotic first-line (CLINICAL 5)",
            }
        )
    if u.level != "routine":
        flags.append(
            {"flag": "suicidality", "detail": f"urgency {u.level}: crisis resources in every message"}
        )
    if stale := safety.stale(u, assessment_date):
        flags.append(stale)
    if missing_item := safety.suicide_item_not_recorded(facts.observations):
        flags.append(missing_item)
    if factors:
        flags.append(
            {
                "flag": "at_risk_of_trd",
                "factors": factors,
                "detail": f"{len(factors)} TRD risk factor(s): {', '.join(f['factor'] for f in factors)} (GSRD, Souery 2007)",
            }
        )
    flags += monitoring.workup_flags(workup)
    if low := monitoring.journal_flag(journal):
        flags.append(low)

    return {
        "rules_version": c.RULES_VERSION,
        "patient_id": facts.patient_id,
        "episode_id": facts.current_episode_id,
        "status": status_name,
        "status_reason": status_reason,
        "urgency": u.level,
        "urgency_reason": u.reason,
        "failed_adequate_trials": distinct_failed_trials(reviews),
        "stages": stages,
        "trials": [r.to_json() for r in reviews],
        "flags": flags,
        "recommendations": [r.to_json(i + 1) for i, r in enumerate(recs)],
        "tried": st.tried(reviews),
        "declined": st.declined_list(declined),
        "not_offered": st.not_offered(situation),
        "workup": workup,
        "journal": journal,
        "referral": referral_advice(u.level, status_name, facts, reviews, recs),
        "assessment_date": assessment_date.isoformat() if assessment_date else None,
        "as_of_event": facts.as_of_event,
    }


__all__ = ["assess", "top_dose"]
