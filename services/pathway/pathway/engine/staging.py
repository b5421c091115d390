"""The three stagings (docs/CLINICAL.md section 4), each reported with its inputs."""

from __future__ import annotations

from datetime import date

from care_shared import drugs
from pathway.engine import conventions as c
from pathway.engine.adequacy import TrialReview
from pathway.engine.facts import Episode


def failed_antidepressant_reviews(reviews: list[TrialReview]) -> list[TrialReview]:
    return [r for r in reviews if r.failed_adequately and r.kind in {"antidepressant", "combination"}]


def failed_agents(reviews: list[TrialReview]) -> list[str]:
    """Distinct antidepressant agents with a failed adequate trial (augmenters excluded)."""
    agents: list[str] = []
    for r in failed_antidepressant_reviews(reviews):
        for a in r.agents:
            drug = drugs.lookup(a)
            if drug is not None and not drug.is_augmenter and a not in agents:
                agents.append(a)
    return agents


def failed_classes(reviews: list[TrialReview]) -> list[str]:
    """C: the antidepressant classes with a failed adequate trial (augmenters excluded)."""
    classes: list[str] = []
    for a in failed_agents(reviews):
        cls = drugs.lookup(a).drug_class
        if cls not in classes:
            classes.append(cls)
    return classes


def failed_ect(reviews: list[TrialReview]) -> list[TrialReview]:
    return [r for r in reviews if r.kind == "ect" and r.failed_adequately]


def ect_failed(reviews: list[TrialReview]) -> bool:
    return bool(failed_ect(reviews))


def thase_rush(reviews: list[TrialReview]) -> dict:
    """Thase & Rush 1997. A second agent of one class does not raise the stage; augmentation
    is not scored."""
    classes = failed_classes(reviews)
    n, has = len(classes), set(classes)
    stage = 0
    if n >= 1:
        stage = 1
    if n >= 2:
        stage = 2
    if n >= 3 and "TCA" in has:
        stage = 3
    if n >= 4 and {"TCA", "MAOI"} <= has:
        stage = 4
        if ect_failed(reviews):
            stage = 5
    out = {
        "stage": stage,
        "label": ["0", "I", "II", "III", "IV", "V"][stage],
        "inputs": {"failed_classes": classes, "ect_failed": ect_failed(reviews)},
        "source": "Thase & Rush 1997",
    }
    # CLINICAL 4: the source requires bilateral ECT for stage V; any placement counts here
    # (convention), and unless one failed course was bilateral the stage says so.
    if stage == 5 and not any(r.placement == "bilateral" for r in failed_ect(reviews)):
        out["note"] = "bilateral ECT not confirmed"
    return out


def whole_months(start: date, end: date) -> int:
    months = (end.year - start.year) * 12 + (end.month - start.month)
    if end.day < start.day:
        months -= 1
    return max(months, 0)


def severity_of(episode: Episode, first_phq9: int | None) -> tuple[str | None, str]:
    """CLINICAL 4: the clinician's baseline, else from the episode's first PHQ-9 (convention)."""
    if episode.severity:
        return episode.severity, "clinician"
    if first_phq9 is not None:
        for low, high, band in c.PHQ9_SEVERITY_BANDS:
            if low <= first_phq9 <= high:
                return band, "first PHQ-9 of the episode"
    return None, "not recorded"


def maudsley(
    episode: Episode, reviews: list[TrialReview], assessment_date: date, first_phq9: int | None
) -> dict | None:
    """Maudsley Staging Method (Fekadu 2009), reported once an adequate antidepressant trial
    (antidepressant or combination kind, as CLINICAL 3 counts) failed."""
    if not failed_antidepressant_reviews(reviews):
        return None
    months = whole_months(episode.onset_date, assessment_date)
    duration_points = 1 if months <= 12 else 2 if months <= 24 else 3
    severity, severity_source = severity_of(episode, first_phq9)
    severity_points = {"subsyndromal": 1, "mild": 2, "moderate": 3, "severe": 4}.get(severity or "")
    if severity == "severe" and episode.psychotic_features:
        severity_points = 5
    n_agents = len(failed_agents(reviews))
    agent_points = (
        0
        if n_agents == 0
        else 1
        if n_agents <= 2
        else 2
        if n_agents <= 4
        else 3
        if n_agents <= 6
        else 4
        if n_agents <= 10
        else 5
    )
    # Used in the episode: any augmentation trial, or a combination with an augmenter (CLINICAL 1).
    augmentation = int(any(r.counts_as_augmentation for r in reviews))
    ect = int(any(r.kind == "ect" for r in reviews))
    points = {
        "duration": duration_points,
        "severity": severity_points,
        "failed_agents": agent_points,
        "augmentation": augmentation,
        "ect": ect,
    }
    inputs = {
        "duration_months": months,
        "assessment_date": assessment_date.isoformat(),
        "severity": severity,
        "severity_source": severity_source,
        "psychotic_features": episode.psychotic_features,
        "failed_agents": failed_agents(reviews),
    }
    if severity_points is None:
        return {
            "score": None,
            "band": None,
            "points": points,
            "inputs": inputs,
            "missing": ["severity"],
            "source": "Fekadu 2009",
        }
    score = sum(points.values())
    band = "mild" if score <= 6 else "moderate" if score <= 10 else "severe"
    return {"score": score, "band": band, "points": points, "inputs": inputs, "source": "Fekadu 2009"}


def mgh(reviews: list[TrialReview]) -> dict:
    """MGH staging (Fava 2003), an open-ended sum: 1 per failed adequate antidepressant trial,
    +0.5 for each whose dose was optimised (maximum above the starting dose), +0.5 per failed
    adequate augmentation or combination trial, +3 once per episode for a failed adequate ECT."""
    score = 0.0
    points = []
    for r in reviews:
        if not r.failed_adequately:
            continue
        if r.kind == "antidepressant":
            score += 1
            points.append(
                {"trial_id": r.trial_id, "points": 1, "why": "failed adequate antidepressant trial"}
            )
            if any(
                s is not None and t is not None and t > s
                for s, t in zip(r.start_doses, r.top_doses, strict=True)
            ):
                score += 0.5
                points.append(
                    {"trial_id": r.trial_id, "points": 0.5, "why": "dose optimised above the starting dose"}
                )
        elif r.kind in {"augmentation", "combination"}:
            score += 0.5
            points.append({"trial_id": r.trial_id, "points": 0.5, "why": f"failed adequate {r.kind} trial"})
    ect = failed_ect(reviews)
    if ect:  # "ECT increases the overall score by 3 points": once, not per course
        score += c.MGH_ECT_POINTS
        points.append(
            {
                "trial_id": ect[0].trial_id,
                "points": c.MGH_ECT_POINTS,
                "why": "failed adequate ECT (once per episode)",
            }
        )
    return {"score": score, "points": points, "source": "Fava 2003 (adaptation: 4-week adequacy)"}
