"""Recommended next strategies (docs/CLINICAL.md sections 5 and 6). Each says what, which options,
why (the rule and the facts that fired it), on what evidence, in which setting, and which
capabilities a receiving clinic needs for it (CLINICAL 7).

Never recommended (CLINICAL 6): an agent that failed adequately in any role or was stopped for
intolerance, nor a strategy naming it; a modality that failed adequately; a current agent as a
switch target or add-on; a running modality as a new strategy; a declined strategy. Those go
to `tried`, `declined` and `not_offered`, kept apart from the recommendations. The exception is
`optimise_dose`, for a current agent below its usual maximum.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from care_shared import drugs
from pathway.engine import conventions as c
from pathway.engine.adequacy import MODALITIES, PHARMACOLOGICAL, TrialReview

FIRST_LINE_AUGMENTERS = ["aripiprazole", "brexpiprazole", "cariprazine"]  # CANMAT 2023
SECOND_LINE_AUGMENTERS = ["quetiapine", "lithium", "liothyronine"]  # CANMAT 2023
SHORT_TERM_AUGMENTERS = ["olanzapine", "ziprasidone", "mianserin"]  # Cochrane 2019, short-term
PSYCHOSIS_ANTIPSYCHOTICS = ["olanzapine", "quetiapine", "aripiprazole", "risperidone"]  # CANMAT 2016; STOP-PD
SWITCH_CLASSES = ["SSRI", "SNRI", "NDRI", "NaSSA", "multimodal"]
SPECIALIST_SWITCH_CLASSES = ["TCA", "MAOI"]
# (option, the added agent, evidence): NICE NG222 1.9.9 first, then CANMAT 2016/2023
COMBINATIONS = [
    ("SSRI plus mirtazapine", "mirtazapine", "NICE NG222 1.9.9"),
    ("SSRI plus trazodone", "trazodone", "NICE NG222 1.9.9"),
    ("SSRI/SNRI plus mirtazapine", "mirtazapine", "CANMAT 2016/2023"),
    ("SSRI plus bupropion", "bupropion", "CANMAT 2016/2023"),
]
THERAPIES_AFTER_ONE_FAILURE = ["CBT", "IPT", "behavioural activation"]  # NICE NG222 1.9
THERAPIES_IN_TRD = ["CBT", "IPT", "ISTDP", "group DBT"]  # Cochrane 2018
RAPID_ACTING_SAFETY = (
    "per label and REMS: certified setting, at least 2 h observation for sedation, dissociation and "
    "respiratory depression, blood pressure before and about 40 min after the dose, no driving until "
    "the next day, misuse screening"
)
PSYCHOSIS_EXCLUSION = ("trials excluded psychotic features (label; NICE TA854)", "Spravato label; NICE TA854")


@dataclass
class Recommendation:
    strategy: str
    options: list[str]
    rationale: str
    evidence: str
    setting: str
    capabilities: list[str] = field(default_factory=list)
    note: str | None = None

    def to_json(self, priority: int) -> dict:
        body = {
            "strategy": self.strategy,
            "options": self.options,
            "rationale": self.rationale,
            "evidence": self.evidence,
            "setting": self.setting,
            "priority": priority,
        }
        if self.note:
            body["note"] = self.note
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
    urgency: str
    assessment_date: date | None
    onset: date | None
    declined: set[str]
    current_agents: list[tuple[str, float | None]]  # (agent, highest recorded dose)
    response: str | None  # response (not remission) shown on the current trial: what shows it
    risk_factors: int
    open_checks: list[str]

    # --- what may never be recommended (CLINICAL 6) ------------------------------------------
    @property
    def excluded_agents(self) -> dict[str, str]:
        """Agents that failed adequately in any role, or were stopped for intolerance."""
        out: dict[str, str] = {}
        for r in self.reviews:
            if r.kind in PHARMACOLOGICAL and (r.failed_adequately or r.intolerance):
                for a in r.agents:
                    out.setdefault(a, "failed_adequate" if r.failed_adequately else "intolerance")
        return out

    def modality_done(self, modality: str) -> bool:
        """Failed adequately, or stopped for intolerance (convention, as for agents)."""
        return any(r.kind == modality and (r.failed_adequately or r.intolerance) for r in self.reviews)

    def running(self, modality: str) -> bool:
        return any(r.kind == modality and r.running for r in self.reviews)

    @property
    def current(self) -> set[str]:
        return {a for a, _ in self.current_agents}

    @property
    def current_classes(self) -> set[str]:
        return {d.drug_class for a in self.current if (d := drugs.lookup(a)) is not None}

    def agent_allowed(self, agent: str) -> bool:
        return agent not in self.excluded_agents and agent not in self.current and agent not in self.declined

    def modality_allowed(self, modality: str) -> bool:
        return (
            not self.modality_done(modality) and not self.running(modality) and modality not in self.declined
        )

    @property
    def failures(self) -> list[TrialReview]:
        return [r for r in self.reviews if r.failed]

    @property
    def inadequate_failures(self) -> list[TrialReview]:
        return [r for r in self.reviews if r.failed_inadequately]


# --- CLINICAL 5 ------------------------------------------------------------------------------
def ect_first_reason(s: Situation) -> str | None:
    """CLINICAL 5 (CANMAT 2016 and 2023): psychotic features, acute suicidality (emergency) at any
    baseline severity, or a severe baseline with urgent suicidality."""
    if s.psychotic_features:
        return "psychotic features"
    if s.urgency == "emergency":
        return "acute suicidality (emergency)"
    if s.severe and s.urgency == "urgent":
        return "severe episode with suicidality (urgent)"
    return None


def safety_first(s: Situation) -> list[Recommendation]:
    recs = []
    why = ect_first_reason(s)
    if why and s.modality_allowed("ect"):
        recs.append(
            Recommendation(
                "ect",
                ["ect"],
                f"{why}: ECT is first-line (CLINICAL 5)",
                "CANMAT 2016; CANMAT 2023",
                "specialist",
                ["ect"],
            )
        )
    if s.psychotic_features and "augmentation" not in s.declined and "combination" not in s.declined:
        options = [a for a in PSYCHOSIS_ANTIPSYCHOTICS if s.agent_allowed(a)]
        if options:
            recs.append(
                Recommendation(
                    "antidepressant_plus_antipsychotic",
                    options,
                    "psychotic features: an antidepressant plus an antipsychotic is also first-line (CLINICAL 5)",
                    "CANMAT 2016; NICE NG222 1.12.2; STOP-PD",
                    "specialist",
                )
            )
    return recs


def not_offered(s: Situation) -> list[dict]:
    if not s.psychotic_features:
        return []
    reason, source = PSYCHOSIS_EXCLUSION
    return [{"strategy": m, "reason": reason, "source": source} for m in ("esketamine", "ketamine")]


# --- CLINICAL 6 rows -------------------------------------------------------------------------
def _trial_age(r: TrialReview, s: Situation) -> int:
    start = max(r.started_on, s.onset) if s.onset else r.started_on
    return ((s.assessment_date or start) - start).days


def _describe(r: TrialReview) -> str:
    return f"{r.kind} trial {r.trial_id}" + (f" ({' + '.join(r.agents)})" if r.agents else "")


def young_running_trials(s: Situation) -> list[TrialReview]:
    return [
        r
        for r in s.reviews
        if r.running and r.kind in c.REVIEW_AGE_DAYS and _trial_age(r, s) < c.REVIEW_AGE_DAYS[r.kind]
    ]


def continue_current_trial(s: Situation, young: list[TrialReview]) -> Recommendation:
    ages = "; ".join(f"{_describe(r)}: day {_trial_age(r, s)} of {c.REVIEW_AGE_DAYS[r.kind]}" for r in young)
    return Recommendation(
        "continue_current_trial",
        [_describe(r) for r in young],
        f"a running trial is younger than its review age ({ages}): continue to an adequate trial and review "
        "at the reminder dates (CLINICAL 6, 8)",
        "NICE NG222 1.9.1",
        "primary_care",
    )


def review_current_trial(s: Situation) -> list[Recommendation]:
    old = [
        r
        for r in s.reviews
        if r.running and r.kind in c.REVIEW_AGE_DAYS and _trial_age(r, s) >= c.REVIEW_AGE_DAYS[r.kind]
    ]
    if not old or s.response:
        return []
    ages = "; ".join(f"{_describe(r)}: day {_trial_age(r, s)}" for r in old)
    return [
        Recommendation(
            "review_current_trial",
            [_describe(r) for r in old],
            f"a running trial is past its review age with no response shown ({ages}): record the response",
            "NICE NG222 1.9.1",
            "primary_care",
        )
    ]


def _dose_options(s: Situation) -> list[str]:
    """optimise_dose: a current agent whose recorded maximum is below its usual maximum, naming
    both doses (NG222 1.9: raise within the licensed range if tolerated); lithium: serum level."""
    out = []
    for agent, dose in s.current_agents:
        drug = drugs.lookup(agent)
        if drug is None or dose is None or drug.max_mg_per_day is None:
            continue
        if drug.name == "lithium":
            out.append(f"lithium: check serum level ({drugs.per_day_text(drug, dose)} recorded)")
        elif dose < drug.max_mg_per_day:
            # in the agent's own unit (CLINICAL 2): liothyronine in micrograms
            out.append(
                f"{agent}: {drugs.per_day_text(drug, dose)} recorded, "
                f"usual maximum {drugs.per_day_text(drug, drug.max_mg_per_day)}"
            )
    return out


def optimise_dose(s: Situation) -> list[Recommendation]:
    options = _dose_options(s)
    if not options:
        return []
    return [
        Recommendation(
            "optimise_dose",
            options,
            "a current agent is below its usual maximum: raise within the licensed range if tolerated",
            "NICE NG222 1.9",
            "primary_care",
        )
    ]


def _therapies(s: Situation, therapies: list[str]) -> list[str]:
    return list(therapies) if s.modality_allowed("psychotherapy") else []


def optimise_to_remission(s: Situation) -> list[Recommendation]:
    if not s.response:
        return []
    augmenters = (
        [a for a in FIRST_LINE_AUGMENTERS if s.agent_allowed(a)] if "augmentation" not in s.declined else []
    )
    therapies = _therapies(s, THERAPIES_AFTER_ONE_FAILURE)
    options = _dose_options(s) + augmenters + therapies
    if not options:
        return []
    return [
        Recommendation(
            "optimise_to_remission",
            options,
            f"response, not remission, on the current trial ({s.response}): optimise the dose, add a first-line "
            "augmenter or a psychotherapy before switching",
            "CANMAT 2016 (add-on over switch after partial response); NICE NG222 1.9",
            "specialist" if augmenters else "primary_care",
            ["psychotherapy"] if therapies else [],
        )
    ]


def optimise(s: Situation) -> list[Recommendation]:
    if not s.inadequate_failures:
        return []
    options: list[str] = []
    for r in s.inadequate_failures:
        for gap in r.shortfalls:
            what = (
                "address adherence"
                if "adherence" in gap
                else ("complete at least 4 weeks" if r.kind in PHARMACOLOGICAL else "complete the course")
                if "days" in gap
                else "complete the sessions"
                if "session" in gap or "infusion" in gap
                else "raise to a therapeutic dose"
            )
            if what not in options:
                options.append(what)
    gaps = "; ".join(f"trial {r.trial_id}: {', '.join(r.shortfalls)}" for r in s.inadequate_failures)
    return [
        Recommendation(
            "optimise",
            options,
            f"a failed trial was not adequate ({gaps}): address the shortfall before counting it",
            "NICE NG222 1.9.1; CLINICAL.md 1 (pseudo-resistance)",
            "primary_care",
        )
    ]


def pseudo_resistance_checks(s: Situation) -> list[Recommendation]:
    if not s.failures or not s.open_checks:
        return []
    return [
        Recommendation(
            "pseudo_resistance_checks",
            list(s.open_checks),
            f"{len(s.failures)} trial(s) failed: the open workup checks rule out causes of apparent resistance",
            "CANMAT 2023; NICE NG222 1.9.1-1.9.2",
            "primary_care",
        )
    ]


def _switch_classes(s: Situation, classes: list[str]) -> list[str]:
    """Another class: neither failed nor the class of a current agent, and with an agent left
    to switch to. A class names its agents: NDRI is bupropion alone, so once bupropion was
    stopped for intolerance or declined, "switch to NDRI" would recommend it again (CLINICAL 6)."""
    table = drugs.all_drugs()
    return [
        k
        for k in classes
        if k not in s.failed_classes
        and k not in s.current_classes
        and any(d.drug_class == k and s.agent_allowed(name) for name, d in table.items())
    ]


def _gives_up(s: Situation) -> str | None:
    return "gives up a response" if s.response else None


def after_one_failure(s: Situation) -> list[Recommendation]:
    if s.status != "inadequate_response":
        return []
    recs = optimise_dose(s)
    switch_to = _switch_classes(s, SWITCH_CLASSES)
    if switch_to:
        recs.append(
            Recommendation(
                "switch",
                switch_to,
                f"one adequate trial failed ({', '.join(s.failed_classes)}): switch to another class",
                "NICE NG222 1.9",
                "primary_care",
                note=_gives_up(s),
            )
        )
    therapies = _therapies(s, THERAPIES_AFTER_ONE_FAILURE)
    if therapies:
        recs.append(
            Recommendation(
                "psychotherapy",
                therapies,
                "add a psychological therapy to medication",
                "NICE NG222 1.9",
                "primary_care",
                ["psychotherapy"],
            )
        )
    if s.risk_factors >= c.EARLY_SPECIALIST_REVIEW_FACTORS:
        recs.append(
            Recommendation(
                "early_specialist_review",
                ["specialist advice before a second full trial"],
                f"inadequate_response with {s.risk_factors} TRD risk factors (CLINICAL 3)",
                "GSRD (Souery 2007); seed 004 (convention)",
                "specialist",
            )
        )
    return recs


def trd_strategies(s: Situation) -> list[Recommendation]:
    if s.status not in {"trd", "chronic_resistant"}:
        return []
    why = f"{s.status}: {len(s.failed_agents)} antidepressant agents failed adequately ({', '.join(s.failed_agents)})"
    recs: list[Recommendation] = []
    if "augmentation" not in s.declined:
        aug = [
            a
            for a in FIRST_LINE_AUGMENTERS + SECOND_LINE_AUGMENTERS + SHORT_TERM_AUGMENTERS
            if s.agent_allowed(a)
        ]
        if aug:
            recs.append(
                Recommendation(
                    "augment",
                    aug,
                    f"{why}; first line aripiprazole, brexpiprazole, cariprazine, then quetiapine, lithium, "
                    "liothyronine; olanzapine, ziprasidone, mianserin short-term",
                    "CANMAT 2023; Cochrane 2019",
                    "specialist",
                )
            )
    maoi_current = "MAOI" in s.current_classes  # never an MAOI with an SSRI, SNRI or TCA (1.9.9)
    if "combination" not in s.declined and not maoi_current:
        combos = [(o, ev) for o, partner, ev in COMBINATIONS if s.agent_allowed(partner)]
        if combos:
            recs.append(
                Recommendation(
                    "combine",
                    [o for o, _ in combos],
                    f"{why}; add mirtazapine, trazodone or bupropion to an antidepressant; never an MAOI with an "
                    "SSRI, SNRI or TCA",
                    "; ".join(dict.fromkeys(ev for _, ev in combos)),
                    "specialist",
                )
            )
    switch_to = _switch_classes(s, SWITCH_CLASSES + SPECIALIST_SWITCH_CLASSES)
    if switch_to:
        recs.append(
            Recommendation(
                "switch",
                switch_to,
                f"{why}; switch class, including a TCA or MAOI in specialist care",
                "NICE NG222 1.9",
                "specialist",
                note=_gives_up(s),
            )
        )
    if s.agent_allowed("vortioxetine"):
        recs.append(
            Recommendation(
                "switch",
                ["vortioxetine"],
                f"{why}; vortioxetine after two failures",
                "NICE NG222 1.9.7",
                "specialist",
                note=_gives_up(s),
            )
        )
    therapies = _therapies(s, THERAPIES_IN_TRD)
    if therapies:
        recs.append(
            Recommendation(
                "psychotherapy",
                therapies,
                f"{why}; add a psychological therapy",
                "Cochrane 2018",
                "specialist",
                ["psychotherapy"],
            )
        )
    if not s.psychotic_features:  # CLINICAL 5: never with psychotic features (not_offered)
        rapid = [
            (option, cap)
            for option, cap in (
                ("esketamine with an oral SSRI/SNRI", "esketamine"),
                ("IV ketamine (off-label)", "ketamine"),
            )
            if s.modality_allowed(cap) and cap not in s.current
        ]
        if rapid:
            recs.append(
                Recommendation(
                    "esketamine_or_ketamine",
                    [o for o, _ in rapid],
                    f"{why}; {RAPID_ACTING_SAFETY}",
                    "CANMAT 2023 (NICE TA854 does not recommend esketamine)",
                    "specialist",
                    [cap for _, cap in rapid],
                )
            )
    if s.modality_allowed("rtms"):
        recs.append(Recommendation("rtms", ["rTMS"], why, "CANMAT 2023", "specialist", ["rtms"]))
    if s.modality_allowed("ect") and not ect_first_reason(s):  # else listed first (CLINICAL 5)
        recs.append(Recommendation("ect", ["ect"], why, "CANMAT 2023", "specialist", ["ect"]))
    return recs


def specialised_centre(s: Situation) -> list[Recommendation]:
    if s.status not in {"trd", "chronic_resistant"}:
        return []
    ect_out = s.modality_done("ect") or "ect" in s.declined
    fired = s.thase_rush_stage >= 3 or (len(s.failed_agents) >= 4 and ect_out)
    if not fired:
        return []
    why = (
        f"Thase-Rush stage {s.thase_rush_stage}"
        if s.thase_rush_stage >= 3
        else f"{len(s.failed_agents)} failed agents and ECT {'failed' if s.modality_done('ect') else 'declined'}"
    )
    devices = [(o, m) for o, m in (("VNS", "vns"), ("DBS", "dbs")) if s.modality_allowed(m)]
    return [
        Recommendation(
            "specialised_centre",
            [o for o, _ in devices] + ["clinical trials"],
            f"{why}: consider VNS, DBS and clinical trials at a specialised centre",
            "CLINICAL.md 6",
            "mood_disorder_clinic",
            [m for _, m in devices] + ["clinical_trials"],
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


def recommend(s: Situation) -> list[Recommendation]:
    """CLINICAL 6 order: the CLINICAL 5 strategies first, then the table's rows in order."""
    recs = safety_first(s)
    if s.status == "in_remission":
        recs.append(
            Recommendation(
                "continue_and_monitor",
                ["continue the treatment that worked", "monitor for relapse"],
                "in remission: the latest evidence says so (CLINICAL 3)",
                "NICE NG222 (preventing relapse)",
                "primary_care",
            )
        )
        return recs + [lifestyle()]
    if s.status == "diagnosis_review":
        recs.append(
            Recommendation(
                "diagnosis_review",
                ["diagnostic assessment in a mood disorder clinic"],
                "off the unipolar TRD pathway (CLINICAL 1, 3)",
                "CLINICAL.md 1; CANMAT 2023",
                "mood_disorder_clinic",
            )
        )
        return recs + [lifestyle()]
    young = young_running_trials(s)
    if young:
        # Only CLINICAL 5, the workup and lifestyle are listed with it.
        return recs + [continue_current_trial(s, young)] + pseudo_resistance_checks(s) + [lifestyle()]
    recs += review_current_trial(s)
    recs += optimise_to_remission(s)
    recs += optimise(s)
    recs += pseudo_resistance_checks(s)
    recs += after_one_failure(s)
    recs += trd_strategies(s)
    recs += specialised_centre(s)
    return recs + [lifestyle()]


def tried(reviews: list[TrialReview]) -> list[dict]:
    """CLINICAL 6: what failed adequately or was stopped for intolerance, never offered again."""
    out = []
    for r in reviews:
        if not (r.failed_adequately or r.intolerance):
            continue
        result = "failed_adequate" if r.failed_adequately else "intolerance"
        for option in r.agents if r.kind in PHARMACOLOGICAL else (r.kind,):
            out.append(
                {
                    "option": option,
                    "trial_id": r.trial_id,
                    "result": result,
                    "ended_on": r.ended_on.isoformat(),
                }
            )
    return out


def declined_list(preferences: dict) -> list[dict]:
    return [
        {"strategy": k, "recorded_on": r.on.isoformat()}
        for k, r in sorted(preferences.items())
        if r.value == "declined"
    ]


def buspirone_recorded(reviews: list[TrialReview]) -> bool:
    return any("buspirone" in r.agents for r in reviews)


def unknown_agents(reviews: list[TrialReview]) -> list[str]:
    return sorted({a for r in reviews for a in r.agents if drugs.lookup(a) is None})


__all__ = ["MODALITIES", "Recommendation", "Situation", "recommend", "tried"]
