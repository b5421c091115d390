"""Recommended next strategies (CLINICAL.md sections 5 and 6). Each says what, which
options, why (the rule and the facts that fired it), on what evidence, in which setting.

Never recommend what already failed adequately in the episode: such an option is removed
and listed under `tried` instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from care_shared import drugs
from pathway.engine.adequacy import TrialReview

FIRST_LINE_AUGMENTERS = ["aripiprazole", "brexpiprazole", "cariprazine"]
SECOND_LINE_AUGMENTERS = ["quetiapine", "lithium", "liothyronine"]
SWITCH_CLASSES = ["SSRI", "SNRI", "NDRI", "NaSSA", "multimodal"]
SPECIALIST_SWITCH_CLASSES = ["TCA", "MAOI"]


@dataclass
class Recommendation:
    strategy: str
    options: list[str]
    rationale: str
    evidence: str
    setting: str
    tried: list[str] = field(default_factory=list)

    def to_json(self, priority: int) -> dict:
        body = {
            "strategy": self.strategy,
            "options": self.options,
            "rationale": self.rationale,
            "evidence": self.evidence,
            "setting": self.setting,
            "priority": priority,
        }
        if self.tried:
            body["not_recommended_already_failed"] = self.tried
        return body


@dataclass
class Situation:
    """What the strategy rules read: computed once by the assessment."""

    status: str
    reviews: list[TrialReview]
    failed_classes: list[str]
    failed_agents: list[str]
    thase_rush_stage: int
    psychotic_features: bool
    severe: bool
    suicidality: bool

    def failed_adequately(self, kind: str, option: str | None = None) -> bool:
        for r in self.reviews:
            if r.kind == kind and r.failed_adequately and (option is None or option in r.agents):
                return True
        return False

    def tried_and_failed(self, kind: str) -> bool:
        """Modalities without an adequacy rule (esketamine, ketamine, rTMS, VNS, DBS): a
        completed course that failed counts as tried."""
        return any(r.kind == kind and r.failed for r in self.reviews)

    @property
    def failures(self) -> list[TrialReview]:
        return [r for r in self.reviews if r.failed]

    @property
    def inadequate_failures(self) -> list[TrialReview]:
        return [r for r in self.reviews if r.failed_inadequately]


def _without_failed(options: list[str], failed: set[str]) -> tuple[list[str], list[str]]:
    return [o for o in options if o not in failed], [o for o in options if o in failed]


def ect_first(s: Situation) -> Recommendation | None:
    # CANMAT 2016: ECT first-line for psychotic depression and for suicidal ideation.
    if not (s.psychotic_features or (s.severe and s.suicidality)):
        return None
    why = "psychotic features" if s.psychotic_features else "severe episode with suicidality"
    if s.failed_adequately("ect"):
        return Recommendation(
            "ect",
            [],
            f"{why}; an adequate ECT course already failed in this episode",
            "CANMAT 2016",
            "specialist",
            tried=["ect"],
        )
    return Recommendation("ect", ["ect"], f"{why}: ECT is first-line", "CANMAT 2016", "specialist")


def optimise(s: Situation) -> list[Recommendation]:
    if not s.inadequate_failures:
        return []
    gaps = "; ".join(f"trial {r.trial_id}: {', '.join(r.missing)}" for r in s.inadequate_failures)
    return [
        Recommendation(
            "optimise",
            ["address adherence", "raise to a therapeutic dose", "complete 4-6 weeks"],
            f"a failed trial was not adequate ({gaps}); optimise before counting it",
            "NICE NG222 1.9.1; CLINICAL.md 1 (pseudo-resistance)",
            "primary_care",
        )
    ]


def pseudo_resistance_checks(s: Situation) -> list[Recommendation]:
    if not s.failures:
        return []
    return [
        Recommendation(
            "pseudo_resistance_checks",
            [
                "review diagnosis (bipolar screen)",
                "thyroid function",
                "sleep apnoea",
                "substance and alcohol use",
                "interacting medicines",
                "new stressors",
            ],
            f"{len(s.failures)} trial(s) failed: rule out causes of apparent resistance",
            "CANMAT 2023; NICE NG222 1.9.2",
            "primary_care",
        )
    ]


PSYCHOLOGICAL_THERAPIES_AFTER_ONE_FAILURE = ["CBT", "IPT", "behavioural activation"]  # NICE NG222 1.9
PSYCHOLOGICAL_THERAPIES_IN_TRD = ["CBT", "IPT", "ISTDP", "group DBT"]  # Cochrane 2018


def psychotherapy(
    s: Situation, options: list[str], rationale: str, evidence: str, setting: str
) -> Recommendation:
    # CLINICAL.md 6: never recommend what already failed adequately. A psychotherapy trial does
    # not record which therapy it was, so after an adequate one failed none is offered again.
    failed = [r.trial_id for r in s.reviews if r.kind == "psychotherapy" and r.failed_adequately]
    if failed:
        tried = f"an adequate psychotherapy trial ({', '.join(failed)}) already failed in this episode: not recommended again"
        return Recommendation("psychotherapy", [], tried, evidence, setting, tried=["psychotherapy"])
    return Recommendation("psychotherapy", options, rationale, evidence, setting)


def after_one_failure(s: Situation) -> list[Recommendation]:
    if s.status != "inadequate_response":
        return []
    # The antidepressants that failed at their dose; never an augmenter (buspirone included).
    agents = sorted(s.failed_agents)
    switch_to, _ = _without_failed(SWITCH_CLASSES, set(s.failed_classes))
    return [
        Recommendation(
            "raise_dose",
            agents,
            "one adequate trial failed: a higher dose may still help",
            "NICE NG222 1.9",
            "primary_care",
        ),
        Recommendation(
            "switch",
            switch_to,
            f"one adequate trial failed ({', '.join(s.failed_classes)}): switch to another class",
            "NICE NG222 1.9",
            "primary_care",
        ),
        psychotherapy(
            s,
            PSYCHOLOGICAL_THERAPIES_AFTER_ONE_FAILURE,
            "add a psychological therapy to medication",
            "NICE NG222 1.9",
            "primary_care",
        ),
    ]


def trd_strategies(s: Situation) -> list[Recommendation]:
    if s.status not in {"trd", "chronic_resistant"}:
        return []
    why = (
        f"TRD: {len(s.failed_agents)} antidepressant agents failed adequately ({', '.join(s.failed_agents)})"
    )
    failed_aug = {a for r in s.reviews if r.kind == "augmentation" and r.failed_adequately for a in r.agents}
    aug_options, aug_tried = _without_failed(FIRST_LINE_AUGMENTERS + SECOND_LINE_AUGMENTERS, failed_aug)
    failed_combos = [set(r.agents) for r in s.reviews if r.kind == "combination" and r.failed_adequately]
    combos, combo_tried = [], []
    for partner in ("mirtazapine", "bupropion"):
        label = f"SSRI/SNRI plus {partner}"
        (combo_tried if any(partner in c for c in failed_combos) else combos).append(label)
    switch_to, _ = _without_failed(SWITCH_CLASSES + SPECIALIST_SWITCH_CLASSES, set(s.failed_classes))
    recs = [
        Recommendation(
            "augment",
            aug_options,
            f"{why}; first line aripiprazole, brexpiprazole, cariprazine, then quetiapine, lithium, T3",
            "CANMAT 2023; Cochrane 2019",
            "specialist",
            tried=aug_tried,
        ),
        Recommendation(
            "combine",
            combos,
            f"{why}; add mirtazapine or bupropion to an SSRI/SNRI",
            "NICE NG222 1.9.9",
            "specialist",
            tried=combo_tried,
        ),
        Recommendation(
            "switch",
            switch_to,
            f"{why}; switch class, including a TCA or MAOI in specialist care",
            "NICE NG222 1.9",
            "specialist",
        ),
    ]
    if "vortioxetine" not in s.failed_agents:  # failed alone or in a combination
        recs.append(
            Recommendation(
                "switch",
                ["vortioxetine"],
                f"{why}; vortioxetine after two failures",
                "NICE NG222 1.9.7",
                "specialist",
            )
        )
    recs.append(
        psychotherapy(
            s,
            PSYCHOLOGICAL_THERAPIES_IN_TRD,
            f"{why}; add a psychological therapy",
            "Cochrane 2018",
            "specialist",
        )
    )
    glutamatergic = [
        o
        for o, kind in (("esketamine", "esketamine"), ("IV ketamine", "ketamine"))
        if not s.tried_and_failed(kind)
    ]
    if glutamatergic:
        recs.append(
            Recommendation(
                "esketamine_or_ketamine",
                glutamatergic,
                f"{why}; in a certified clinic with blood-pressure monitoring and observation for dissociation",
                "CANMAT 2023",
                "specialist",
            )
        )
    if not s.tried_and_failed("rtms"):
        recs.append(Recommendation("rtms", ["rTMS"], why, "CANMAT 2023", "specialist"))
    if not s.failed_adequately("ect") and not (s.psychotic_features or (s.severe and s.suicidality)):
        recs.append(Recommendation("ect", ["ect"], why, "CANMAT 2023", "specialist"))
    return [r for r in recs if r.options or r.tried]


def advanced(s: Situation) -> list[Recommendation]:
    if s.status not in {"trd", "chronic_resistant"}:
        return []
    fired = s.thase_rush_stage >= 3 or (len(s.failed_agents) >= 4 and s.failed_adequately("ect"))
    if not fired:
        return []
    why = (
        f"Thase-Rush stage {s.thase_rush_stage}"
        if s.thase_rush_stage >= 3
        else f"{len(s.failed_agents)} failed agents and a failed ECT course"
    )
    options = [o for o, kind in (("VNS", "vns"), ("DBS", "dbs")) if not s.tried_and_failed(kind)] + [
        "clinical trials"
    ]
    return [
        Recommendation(
            "specialised_centre",
            options,
            f"{why}: consider VNS, DBS and clinical trials at a specialised centre",
            "CLINICAL.md 6",
            "mood_disorder_clinic",
        )
    ]


def lifestyle() -> Recommendation:
    return Recommendation(
        "lifestyle",
        ["regular sleep schedule", "daily movement", "avoid alcohol", "mood journal"],
        "always",
        "CLINICAL.md 6",
        "primary_care",
    )


def buspirone_recorded(reviews: list[TrialReview]) -> bool:
    return any("buspirone" in r.agents for r in reviews)


def unknown_agents(reviews: list[TrialReview]) -> list[str]:
    return sorted({a for r in reviews for a in r.agents if drugs.lookup(a) is None})
