"""What the clinician reviews beside the status: TRD risk factors (CLINICAL 3), the
pseudo-resistance workup and the mood journal (CLINICAL 6). None of them changes status,
staging, urgency or outcome."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from pathway.engine import conventions as c
from pathway.engine.adequacy import TrialReview
from pathway.engine.facts import PatientFacts


# CLINICAL 3: at risk of TRD (seed 004; GSRD, Souery 2007)
def risk_factors(facts: PatientFacts, assessment_date: date) -> list[dict]:
    """Each factor present, with the kind of event it comes from (no event id, no date: the
    flag is compared to decide whether the assessment changed)."""
    episode = facts.episode
    out: list[dict] = []
    if facts.sex == "female":
        out.append({"factor": "female_sex", "source": "patient-registered"})
    if facts.birth_year is not None and assessment_date.year - facts.birth_year >= c.AT_RISK_OLDER_AGE:
        out.append(
            {
                "factor": "older_age",
                "age": assessment_date.year - facts.birth_year,
                "source": "patient-registered",
            }
        )
    present = sorted(k for k, r in facts.comorbidities.items() if r.value == "present")
    psychiatric = [k for k in present if k in c.AT_RISK_PSYCHIATRIC]
    if psychiatric:
        out.append({"factor": "comorbidity", "conditions": psychiatric, "source": "comorbidity-recorded"})
    medical = [k for k in present if k in c.AT_RISK_MEDICAL]
    if medical:
        out.append({"factor": "medical_illness", "conditions": medical, "source": "comorbidity-recorded"})
    if episode is not None:
        if (
            episode.age_at_first_onset is not None
            and episode.age_at_first_onset < c.AT_RISK_EARLY_ONSET_BELOW
        ):
            out.append(
                {
                    "factor": "early_onset",
                    "age_at_first_onset": episode.age_at_first_onset,
                    "source": "episode-opened",
                }
            )
        earlier_on_record = (
            facts.episode_order.index(episode.episode_id) if episode.episode_id in facts.episode_order else 0
        )
        recurrences = max(episode.prior_episodes or 0, earlier_on_record)
        if recurrences >= c.AT_RISK_RECURRENCE_AT_LEAST:
            source = (
                "episode-opened (prior_episodes)"
                if (episode.prior_episodes or 0) >= earlier_on_record
                else "earlier episodes on record"
            )
            out.append({"factor": "frequent_recurrence", "episodes_before": recurrences, "source": source})
        if (assessment_date - episode.onset_date).days > c.AT_RISK_LONG_EPISODE_DAYS:
            out.append({"factor": "long_episode", "source": "episode-opened"})
    return out


# CLINICAL 6: pseudo-resistance workup (seeds 001, 004; NG222 1.9.1-1.9.2; CANMAT 2023)
def workup(facts: PatientFacts, reviews: list[TrialReview]) -> list[dict] | None:
    """After any failure, each check: open, normal or abnormal with its date. None before."""
    failures = [r for r in reviews if r.failed]
    if not failures:
        return None
    since = max(r.started_on for r in failures)  # the latest failed trial's start
    records = facts.episode_records(facts.workup)
    out = []
    for check in c.WORKUP_PER_FAILURE + c.WORKUP_PER_EPISODE:
        r = records.get(check)
        counts = r is not None and (check in c.WORKUP_PER_EPISODE or r.on >= since)
        out.append(
            {
                "check": check,
                "redo": "each failure" if check in c.WORKUP_PER_FAILURE else "once per episode",
                "state": r.value if counts else "open",
                "done_on": r.on.isoformat() if counts else None,
            }
        )
    return out


def workup_flags(checks: list[dict] | None) -> list[dict]:
    if not checks:
        return []
    out = []
    open_ = [w["check"] for w in checks if w["state"] == "open"]
    if open_:
        out.append({"flag": "workup_open", "checks": open_, "detail": f"{len(open_)} workup check(s) open"})
    abnormal = [w["check"] for w in checks if w["state"] == "abnormal"]
    if abnormal:
        detail = "abnormal: " + ", ".join(abnormal)
        if "bipolar_screen" in abnormal:
            detail += "; positive bipolar screen: review the diagnosis"
        out.append({"flag": "workup_abnormal", "checks": abnormal, "detail": detail})
    return out


# CLINICAL 6: mood journal (seed 001)
def journal(facts: PatientFacts, current_trial_start: date | None) -> dict | None:
    if not facts.journal:
        return None
    days = sorted(facts.journal.values(), key=lambda j: j.entry_on)
    latest = days[-1].entry_on
    days = [j for j in days if (latest - j.entry_on).days < c.JOURNAL_WINDOW_DAYS]

    def counts(entries, attr: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for j in entries:
            for item in sorted(set(getattr(j, attr))):
                out[item] = out.get(item, 0) + 1
        return dict(sorted(out.items()))

    moods = [j.mood for j in days]
    summary = {
        "window_ends_on": latest.isoformat(),
        "window_days": c.JOURNAL_WINDOW_DAYS,
        "entries": [
            {
                "entry_on": j.entry_on.isoformat(),
                "mood": j.mood,
                "side_effects": j.side_effects,
                "triggers": j.triggers,
            }
            for j in days
        ],
        "mean_mood": float((Decimal(sum(moods)) / len(moods)).quantize(Decimal("0.1"), ROUND_HALF_UP)),
        "lowest_mood": min(moods),
        "side_effects": counts(days, "side_effects"),
        "triggers": counts(days, "triggers"),
    }
    if current_trial_start is not None:
        summary["side_effects_on_current_trial"] = counts(
            [j for j in days if j.entry_on >= current_trial_start], "side_effects"
        )
    return summary


def journal_flag(summary: dict | None) -> dict | None:
    if summary is None:
        return None
    n = len(summary["entries"])
    exact_mean = sum(e["mood"] for e in summary["entries"]) / n  # the rule reads the mean, not its rounding
    if n >= c.JOURNAL_LOW_MOOD_MIN_ENTRIES and exact_mean <= c.JOURNAL_LOW_MOOD_MEAN_AT_OR_BELOW:
        return {
            "flag": "journal_low_mood",
            "detail": f"mean mood {summary['mean_mood']} over {n} journal entries: consider a PHQ-9",
        }
    return None
