"""Patient vignettes against CLINICAL.md, one short story per row.

Every expectation here was worked out by hand from /work/shared/CLINICAL.md (the section is
cited on each row), not by running the engine. Reading guide for a clinician:

- the standard 8-week trials start 9 days after a 1 January 2024 onset and follow each other:
  T1 2024-01-10..03-06, T2 03-10..05-05, T3 05-10..07-05, T4 07-10..09-04, T5 09-10..11-05
  (each 56 days; adherence 90 % unless stated, outcome no_response unless stated);
- Maudsley is written (score, band), each score is spelled out as
  duration + severity + failed agents + augmentation + ECT;
- `must` / `must_not` are strategies; `options_absent` are options that must not be offered;
- `reasons` are words that must appear in the referral reasons.
A row marked xfail is a disagreement with the engine, explained in its reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from pathway.engine import assess, fold
from tests.unit.pathway.builders import (
    PATIENT,
    ad,
    aug,
    build,
    combo,
    comorbidity,
    course,
    d,
    declined,
    ect,
    episode,
    hamd,
    journal,
    madrs,
    patient,
    phq9,
    revise,
    self_phq9,
    therapy,
    workup,
    wsas,
)

ANY = object()  # "not checked"

T1 = ("2024-01-10", "2024-03-06")
T2 = ("2024-03-10", "2024-05-05")
T3 = ("2024-05-10", "2024-07-05")
T4 = ("2024-07-10", "2024-09-04")
T5 = ("2024-09-10", "2024-11-05")
ONSET = "2024-01-01"

TRD_CORE = {
    "augment",
    "combine",
    "switch",
    "psychotherapy",
    "esketamine_or_ketamine",
    "rtms",
    "pseudo_resistance_checks",
    "lifestyle",
}


@dataclass
class V:
    name: str
    cites: str
    story: list
    status: str | object = ANY
    thase_rush: int | object = ANY
    maudsley: tuple | None | object = ANY  # (score, band) or None (not reported)
    mgh: float | object = ANY
    urgency: str | object = "routine"
    referral: bool | object = ANY
    reasons: set = field(default_factory=set)
    capabilities: set = field(default_factory=set)
    capabilities_absent: set = field(default_factory=set)  # capabilities the referral must not name
    must: set = field(default_factory=set)
    must_not: set = field(default_factory=set)
    first: str | None = None
    options_present: dict = field(default_factory=dict)  # strategy -> options that must be offered
    options_absent: dict = field(default_factory=dict)  # strategy ("*" = any) -> options never offered
    mentions_absent: dict = field(default_factory=dict)  # strategy -> words no option may contain
    flags: set = field(default_factory=set)
    no_flags: set = field(default_factory=set)
    flag_mentions: dict = field(default_factory=dict)  # flag -> word its detail must contain
    failed_adequate: int | object = ANY
    adequate: list | object = ANY  # per trial, in order
    outcomes: list | object = ANY  # per trial, in order
    trial_agents: set = field(default_factory=set)  # agents that must be reported in trials
    reason_mentions: set = field(default_factory=set)  # words the status reason must contain
    reason_lacks: set = field(default_factory=set)  # words the status reason must not contain
    # trd-rules 2026.12
    tried: set = field(default_factory=set)  # options that must be in `tried`
    not_offered: set = field(default_factory=set)  # strategies that must be in `not_offered`
    declined: set = field(default_factory=set)  # strategies that must be in `declined`
    capabilities_exact: set | object = ANY
    strategies: list | object = ANY  # the exact strategies, in order
    options: dict = field(default_factory=dict)  # strategy -> exact options (first such strategy)
    flag_fields: dict = field(default_factory=dict)  # flag -> {key: value} that must match
    workup: dict | None | object = ANY  # check -> state (None: no workup shown)
    journal: dict | None | object = ANY  # key -> value (None: no journal)
    adequacy: list | object = ANY  # per trial: adequate | not_adequate | adequacy_unknown | running
    thase_note: str | None | object = ANY
    urgency_mentions: set = field(default_factory=set)
    xfail: str | None = None


def maud(score):
    return (score, "mild" if score <= 6 else "moderate" if score <= 10 else "severe")


def two_failures(first="sertraline", first_dose=100, second="venlafaxine", second_dose=225):
    return [ad(first, first_dose, *T1), ad(second, second_dose, *T2)]


def four_classes():
    return [
        ad("sertraline", 100, *T1),
        ad("venlafaxine", 225, *T2),
        ad("nortriptyline", 100, *T3),
        ad("phenelzine", 60, *T4),
    ]


def duration_story(assessed_on):
    """Onset 15 Jan 2023; sertraline and fluoxetine failed (8 weeks each, spring 2023); a PHQ-9
    of 12 on `assessed_on` is the latest clinical date. Maudsley = duration + 3 + 1."""
    return [
        episode("2023-01-15"),
        ad("sertraline", 100, "2023-02-01", "2023-03-29"),
        ad("fluoxetine", 40, "2023-04-01", "2023-05-27"),
        phq9(12, 0, assessed_on),
    ]


def first_phq9_story(first_score):
    """No clinician severity; the first PHQ-9 of the episode is `first_score`; sertraline failed;
    a later PHQ-9 of 14. Maudsley = 1 (2 months) + severity + 1 (one agent)."""
    return [
        episode(ONSET, severity=None),
        phq9(first_score, 0, "2024-01-05"),
        ad("sertraline", 100, *T1),
        phq9(14, 0, "2024-03-10"),
    ]


def chronic_story(last_phq9_on, aripiprazole_adherence=90):
    return [
        episode("2023-01-01"),
        ad("sertraline", 100, "2023-01-10", "2023-03-07"),
        ad("venlafaxine", 225, "2023-03-10", "2023-05-05"),
        aug("aripiprazole", 5, "2023-05-10", "2023-07-05", adherence=aripiprazole_adherence),
        phq9(16, 0, last_phq9_on),
    ]


# The table stays one row per vignette, as a clinician reads it: not reformatted.
# fmt: off
VIGNETTES: list[V] = [
    # ---------------------------------------------------------------- baseline
    V("new episode, nothing tried yet", "§3 no_adequate_failure; §4; §6 always; §7",
      [episode(ONSET)],
      status="no_adequate_failure", thase_rush=0, maudsley=None, mgh=0, referral=False, failed_adequate=0,
      must={"lifestyle"}, must_not={"pseudo_resistance_checks", "optimise", "augment", "optimise_dose", "specialised_centre"}),
    # Changed (trd-rules 2026.12, §6): `raise_dose` became `optimise_dose`, offered only for a current agent
    # below its usual maximum (here sertraline 100 of 200 mg/day, the latest trial, nothing started after).
    V("one adequate SSRI failure", "§1 adequate; §3 inadequate_response; §4 (Maudsley 1+3+1); §6 inadequate_response; §7",
      [episode(ONSET), ad("sertraline", 100, *T1)],
      status="inadequate_response", thase_rush=1, maudsley=maud(5), mgh=1, referral=False, failed_adequate=1, adequate=[True],
      must={"optimise_dose", "switch", "psychotherapy", "pseudo_resistance_checks", "lifestyle"},
      must_not={"augment", "combine", "optimise", "specialised_centre", "esketamine_or_ketamine"},
      options_absent={"switch": {"SSRI"}}, no_flags={"pseudo_resistance"}),
    # ---------------------------------------------------------------- adequacy edges (§1)
    V("adherence exactly 80 % is adequate", "§1 adequate (adherence >= 80 %, convention); §3",
      [episode(ONSET), ad("sertraline", 100, *T1, adherence=80)],
      status="inadequate_response", adequate=[True], failed_adequate=1, thase_rush=1, no_flags={"pseudo_resistance"}),
    V("adherence 79 % is a pseudo-resistance, not a failure", "§1 inadequate trial that failed; §6 optimise, pseudo-resistance checks",
      [episode(ONSET), ad("sertraline", 100, *T1, adherence=79)],
      status="no_adequate_failure", adequate=[False], failed_adequate=0, thase_rush=0, maudsley=None, mgh=0,
      flags={"pseudo_resistance"}, flag_mentions={"pseudo_resistance": "adherence"},
      must={"optimise", "pseudo_resistance_checks"}, must_not={"optimise_dose", "augment"}),
    V("exactly 28 days is adequate", "§1 adequate (at least 28 days); §4 Maudsley 1+3+1",
      [episode(ONSET), ad("sertraline", 100, "2024-01-10", "2024-02-07")],
      status="inadequate_response", adequate=[True], thase_rush=1, maudsley=maud(5), mgh=1),
    V("27 days is too short", "§1 inadequate trial that failed (duration)",
      [episode(ONSET), ad("sertraline", 100, "2024-01-10", "2024-02-06")],
      status="no_adequate_failure", adequate=[False], thase_rush=0, maudsley=None, mgh=0,
      flags={"pseudo_resistance"}, flag_mentions={"pseudo_resistance": "duration"}, must={"optimise"}),
    V("dose exactly at the minimum (escitalopram 10 mg)", "§1 adequate (at or above minimum); §2",
      [episode(ONSET), ad("escitalopram", 10, *T1)],
      status="inadequate_response", adequate=[True], thase_rush=1, maudsley=maud(5), mgh=1),
    V("dose just below the minimum (venlafaxine 149 mg < 150)", "§1 inadequate trial that failed (dose); §2",
      [episode(ONSET), ad("venlafaxine", 149, *T1)],
      status="no_adequate_failure", adequate=[False], thase_rush=0, maudsley=None, mgh=0,
      flags={"pseudo_resistance"}, flag_mentions={"pseudo_resistance": "venlafaxine"}, must={"optimise"}),
    V("phenelzine 45 mg at minimum, fluvoxamine 99 mg below", "§2 drug table minimums",
      [episode(ONSET), ad("phenelzine", 45, *T1), ad("fluvoxamine", 99, *T2)],
      status="inadequate_response", adequate=[True, False], thase_rush=1, failed_adequate=1, flags={"pseudo_resistance"}),
    V("intolerance before 4 weeks: recorded, not a failure", "§1 failed adequate trial (EU-PEARL); §6 (no failure)",
      [episode(ONSET), ad("sertraline", 100, "2024-01-10", "2024-01-24", outcome="intolerance")],
      status="no_adequate_failure", thase_rush=0, maudsley=None, mgh=0, failed_adequate=0,
      flags={"intolerance"}, no_flags={"pseudo_resistance"}, must_not={"optimise", "pseudo_resistance_checks", "optimise_dose"}),
    V("intolerance before 4 weeks after one failure does not make TRD", "§1 EU-PEARL; §3",
      [episode(ONSET), ad("sertraline", 100, *T1), ad("venlafaxine", 75, "2024-03-10", "2024-03-20", outcome="intolerance")],
      status="inadequate_response", thase_rush=1, failed_adequate=1, maudsley=maud(5), mgh=1,
      flags={"intolerance"}, no_flags={"pseudo_resistance"}, must_not={"augment"}),
    # ---------------------------------------------------------------- counting agents and classes
    V("second failure in the same class: TRD, Thase-Rush stays I", "§3 trd (distinct agents); §4 Thase-Rush; §6 trd; §7",
      [episode(ONSET), ad("sertraline", 100, *T1), ad("fluoxetine", 40, *T2)],
      status="trd", thase_rush=1, failed_adequate=2, maudsley=maud(5), mgh=2, referral=True, reasons={"trd"},
      must=TRD_CORE | {"ect"}, must_not={"specialised_centre", "optimise_dose", "optimise"},
      options_present={"switch": {"vortioxetine", "SNRI"}}, options_absent={"switch": {"SSRI"}}),
    V("same agent failed twice: still one agent", "§3 (distinct agents); §4 MGH 1 per trial",
      [episode(ONSET), ad("sertraline", 100, *T1), ad("sertraline", 200, *T2)],
      status="inadequate_response", thase_rush=1, failed_adequate=1, maudsley=maud(5), mgh=2, must_not={"augment"}),
    V("SSRI then SNRI: Thase-Rush II", "§3 trd; §4; §6 trd switch incl. TCA/MAOI",
      [episode(ONSET), *two_failures()],
      status="trd", thase_rush=2, maudsley=maud(5), mgh=2, referral=True,
      options_present={"switch": {"TCA", "MAOI"}, "augment": {"aripiprazole", "brexpiprazole", "cariprazine", "quetiapine", "lithium"}},
      options_absent={"switch": {"SSRI", "SNRI"}}),
    V("TCA failed but only two classes: stage II", "§4 Thase-Rush III needs |C| >= 3",
      [episode(ONSET), ad("sertraline", 100, *T1), ad("nortriptyline", 100, *T2)],
      status="trd", thase_rush=2, must_not={"specialised_centre"}),
    V("three classes without a TCA: stage II, no VNS/DBS", "§4 Thase-Rush; §6 (>= III only)",
      [episode(ONSET), *two_failures(), ad("mirtazapine", 30, *T3)],
      status="trd", thase_rush=2, maudsley=maud(6), mgh=3, must_not={"specialised_centre"}),
    V("Thase-Rush III: SSRI, SNRI, TCA", "§4 Thase-Rush III; Maudsley 1+3+2; §6 VNS/DBS/trials",
      [episode(ONSET), *two_failures(), ad("nortriptyline", 100, *T3)],
      status="trd", thase_rush=3, maudsley=maud(6), mgh=3, referral=True, reasons={"trd"},
      must=TRD_CORE | {"specialised_centre", "ect"},
      options_present={"specialised_centre": {"VNS", "DBS", "clinical trials"}}, options_absent={"switch": {"SSRI", "SNRI", "TCA"}}),
    V("Thase-Rush III referral names what the specialised centre must offer", "§6 VNS, DBS, clinical trials; §7 capabilities",
      [episode(ONSET), *two_failures(), ad("nortriptyline", 100, *T3)],
      referral=True, capabilities={"clinical_trials", "vns", "dbs"}),
    V("four classes without an MAOI: stage III", "§4 Thase-Rush IV needs TCA and MAOI",
      [episode(ONSET), *two_failures(), ad("nortriptyline", 100, *T3), ad("mirtazapine", 30, *T4)],
      status="trd", thase_rush=3, maudsley=maud(6), mgh=4, must={"specialised_centre"}),
    V("Thase-Rush IV: SSRI, SNRI, TCA, MAOI", "§4 Thase-Rush IV; Maudsley 1+3+2",
      [episode(ONSET), *four_classes()],
      status="trd", thase_rush=4, maudsley=maud(6), mgh=4, must={"specialised_centre", "ect"},
      options_absent={"switch": {"SSRI", "SNRI", "TCA", "MAOI"}}),
    V("Thase-Rush V: stage IV plus a failed adequate ECT course", "§4 Thase-Rush V; Maudsley 1+3+2+0+1; MGH 4+3; §6 never again",
      [episode(ONSET), *four_classes(), ect(*T5, sessions=10)],
      status="trd", thase_rush=5, maudsley=maud(7), mgh=7, must={"specialised_centre"}, must_not={"ect"},
      options_absent={"*": {"ect"}}),
    V("ECT stopped after 5 sessions: not adequate, stage stays IV", "§1 ECT at least 6 sessions; §4; Maudsley ECT used",
      [episode(ONSET), *four_classes(), ect("2024-09-10", "2024-09-30", sessions=5)],
      status="trd", thase_rush=4, maudsley=maud(7), mgh=4, flags={"pseudo_resistance"}, must={"ect", "optimise"}),
    V("four failed agents (two classes) and a failed ECT: specialised centre", "§6 >= 4 failed agents and ECT failed",
      [episode(ONSET), ad("sertraline", 100, *T1), ad("fluoxetine", 40, *T2), ad("venlafaxine", 225, *T3),
       ad("duloxetine", 60, *T4), ect(*T5)],
      status="trd", thase_rush=2, maudsley=maud(7), mgh=7, must={"specialised_centre"}, options_absent={"*": {"ect"}}),
    V("three failed agents and a failed ECT: no specialised centre yet", "§6 (needs >= 4 agents or stage III)",
      [episode(ONSET), ad("sertraline", 100, *T1), ad("fluoxetine", 40, *T2), ad("venlafaxine", 225, *T3), ect(*T4)],
      status="trd", thase_rush=2, maudsley=maud(7), mgh=6, must_not={"specialised_centre"}, options_absent={"*": {"ect"}}),
    V("vortioxetine failed adequately: never offered again", "§6 never recommend what failed; NICE 1.9.7",
      [episode(ONSET), ad("sertraline", 100, *T1), ad("vortioxetine", 20, *T2)],
      status="trd", thase_rush=2, options_absent={"*": {"vortioxetine"}, "switch": {"multimodal", "SSRI"}}),
    # ---------------------------------------------------------------- Maudsley duration (§4)
    V("Maudsley: exactly 12 months -> 1 point", "§4 Maudsley duration <= 12 months; assessment date = latest clinical date",
      duration_story("2024-01-15"), status="trd", thase_rush=1, maudsley=maud(5), mgh=2),
    V("Maudsley: 12 months and 30 days rounds down -> 1 point", "§4 whole calendar months rounded down",
      duration_story("2024-02-14"), status="trd", maudsley=maud(5)),
    V("Maudsley: 13 months -> 2 points", "§4 Maudsley 13-24 months",
      duration_story("2024-02-15"), status="trd", maudsley=maud(6)),
    V("Maudsley: 24 months -> 2 points", "§4 Maudsley 13-24 months",
      duration_story("2025-01-15"), status="trd", maudsley=maud(6)),
    V("Maudsley: 25 months -> 3 points, band moderate", "§4 Maudsley > 24 months; bands",
      duration_story("2025-02-15"), status="trd", maudsley=maud(7)),
    # ---------------------------------------------------------------- Maudsley severity (§4)
    V("severity from first PHQ-9 of 22 -> severe", "§4 severity from the episode's first PHQ-9 (convention)",
      [episode(ONSET, severity=None), phq9(22, 0, "2024-01-05"), *two_failures(), phq9(12, 0, "2024-05-10")],
      status="trd", maudsley=maud(6), must_not={"optimise"}),
    V("first PHQ-9 of 4 -> subsyndromal", "§4 PHQ-9 0-4 subsyndromal",
      first_phq9_story(4), status="inadequate_response", maudsley=maud(3)),
    V("first PHQ-9 of 9 -> mild", "§4 PHQ-9 5-9 mild", first_phq9_story(9), maudsley=maud(4)),
    V("first PHQ-9 of 10 -> moderate", "§4 PHQ-9 10-19 moderate", first_phq9_story(10), maudsley=maud(5)),
    V("first PHQ-9 of 19 -> moderate", "§4 PHQ-9 10-19 moderate", first_phq9_story(19), maudsley=maud(5)),
    V("first PHQ-9 of 20 -> severe", "§4 PHQ-9 20-27 severe", first_phq9_story(20), maudsley=maud(6)),
    V("clinician severity wins over the PHQ-9", "§4 (derive only where no clinician severity)",
      [episode(ONSET, severity="mild"), phq9(22, 0, "2024-01-05"), ad("sertraline", 100, *T1), phq9(14, 0, "2024-03-10")],
      maudsley=maud(4)),
    V("PHQ-9 entered before the clinician opened the episode still counts as its first", "§4 episode's first PHQ-9",
      [phq9(22, 0, "2024-02-01"), episode(ONSET, severity=None), ad("sertraline", 100, "2024-02-05", "2024-04-01")],
      status="inadequate_response", maudsley=maud(6)),
    V("a back-filled screening PHQ-9 from before onset is not the episode's first", "§4 episode's first PHQ-9",
      [episode(ONSET, severity=None), phq9(15, 0, "2024-01-05"), phq9(3, 0, "2023-06-01"),
       ad("sertraline", 100, *T1), phq9(14, 0, "2024-03-10")],
      status="inadequate_response", maudsley=maud(5)),
    V("severity revised to severe", "§1 episode revision; §4 Maudsley severity",
      [episode(ONSET), *two_failures(), revise(severity="severe")],
      status="trd", maudsley=maud(6), must_not={"specialised_centre"}),
    # ---------------------------------------------------------------- psychotic features / ECT first (§5)
    V("psychotic depression, nothing tried: ECT first", "§5 psychotic features -> ECT first; §7 psychotic features",
      [episode(ONSET, severity="severe", psychotic=True)],
      status="no_adequate_failure", maudsley=None, first="ect", options_present={"ect": {"ect"}},
      flags={"psychotic_features"}, referral=True, reasons={"psychotic"}, capabilities={"ect"}),
    # Changed (2026.12, §5): esketamine and IV ketamine go to not_offered with psychotic features, and an
    # antidepressant plus an antipsychotic follows ECT.
    V("psychotic depression with TRD: ECT first, Maudsley severity 5", "§5; §4 Maudsley 1+5+1",
      [episode(ONSET, severity="severe", psychotic=True), *two_failures()],
      status="trd", thase_rush=2, maudsley=maud(7), mgh=2, first="ect", must=(TRD_CORE - {"esketamine_or_ketamine"}) | {"antidepressant_plus_antipsychotic"},
      must_not={"esketamine_or_ketamine"}, not_offered={"esketamine", "ketamine"}, referral=True,
      reasons={"psychotic", "trd"}),
    V("psychotic features revised in: ECT first", "§1 revision; §5",
      [episode(ONSET), *two_failures(), revise(severity="severe", psychotic=True)],
      status="trd", maudsley=maud(7), first="ect", flags={"psychotic_features"}),
    V("psychotic depression, adequate ECT already failed: shown as tried, not recommended", "§5 unless ECT already failed; §4",
      [episode(ONSET, severity="severe", psychotic=True), ad("sertraline", 100, *T1), ect("2024-03-10", "2024-04-20")],
      status="inadequate_response", thase_rush=1, maudsley=maud(8), mgh=4, options_absent={"*": {"ect"}},
      flags={"psychotic_features"}, referral=True, reasons={"psychotic"}),
    V("severe episode with suicidality: ECT first", "§5 severe baseline with suicidality; item 9 >= 1 urgent",
      [episode(ONSET, severity="severe"), phq9(21, 1, "2024-01-05")],
      urgency="urgent", first="ect", options_present={"ect": {"ect"}}, flags={"suicidality"}, referral=True,
      reasons={"suicid"}, capabilities={"ect"}),
    V("severe by first PHQ-9 with item 9 = 2: ECT first", "§4 derived severity; §5",
      [episode(ONSET, severity=None), phq9(22, 2, "2024-01-05")],
      urgency="urgent", first="ect", referral=True),
    V("moderate episode with suicidality: urgent, but ECT not first", "§5 (ECT first only if psychotic or severe)",
      [episode(ONSET), phq9(15, 1, "2024-01-05")],
      status="no_adequate_failure", urgency="urgent", must_not={"ect"}, referral=True, reasons={"suicid"}, flags={"suicidality"}),
    # ---------------------------------------------------------------- suicidality (§5)
    V("item 9 = 1 -> urgent", "§5", [episode(ONSET), phq9(12, 1, "2024-01-05")],
      urgency="urgent", referral=True, flags={"suicidality"}),
    V("item 9 = 3 -> emergency", "§5", [episode(ONSET), phq9(24, 3, "2024-01-05")],
      urgency="emergency", referral=True, flags={"suicidality"}, reasons={"suicid"}),
    V("clinician flags suicide risk on a MADRS -> urgent", "§5 clinician-flagged risk",
      [episode(ONSET), madrs(25, "2024-01-05", risk="flagged")], urgency="urgent", referral=True),
    V("clinician records active intent -> emergency", "§5 flagged active intent",
      [episode(ONSET), madrs(30, "2024-01-05", risk="active_intent")], urgency="emergency", referral=True),
    V("suicidality falls: a newer PHQ-9 with item 9 = 0 -> routine", "§5 only a newer assessment can lower it",
      [episode(ONSET), phq9(20, 3, "2024-02-01"), phq9(8, 0, "2024-03-01")],
      urgency="routine", referral=False, no_flags={"suicidality"}),
    V("suicidality rises again after falling", "§5",
      [episode(ONSET), phq9(14, 1, "2024-01-05"), phq9(6, 0, "2024-02-01"), phq9(25, 3, "2024-03-01")],
      urgency="emergency", referral=True),
    V("a later, unrelated trial never lowers urgency", "§5 urgency never goes down because of an unrelated event",
      [episode(ONSET), phq9(14, 1, "2024-01-05"), ad("sertraline", 100, *T1)],
      status="inadequate_response", urgency="urgent", referral=True, reasons={"suicid"}),
    V("a later trial never lowers an emergency either", "§5",
      [episode(ONSET), phq9(24, 3, "2024-01-05"), ad("sertraline", 100, *T1), ad("venlafaxine", 225, "2024-03-10")],
      urgency="emergency", referral=True),
    V("a MADRS total without a suicide rating does not lower it", "§5 (a newer assessment of suicidality; ambiguity, safest reading)",
      [episode(ONSET), phq9(20, 2, "2024-02-01"), madrs(18, "2024-03-01")], urgency="urgent"),
    V("a newer clinician rating of no suicide risk (HAM-D-17) lowers it", "§5 a newer assessment can lower it",
      [episode(ONSET), phq9(18, 2, "2024-02-01"), hamd(9, "2024-03-01", risk="none")], urgency="routine", no_flags={"suicidality"}),
    V("a back-dated reassuring PHQ-9 does not lower it", "§5 only a *newer* assessment can lower it",
      [episode(ONSET), phq9(24, 3, "2024-03-01"), phq9(6, 0, "2024-02-01")], urgency="emergency"),
    # ---------------------------------------------------------------- remission and derived outcomes (§1, §3)
    V("remission by the clinic's outcome", "§3 in_remission; §1 outcome",
      [episode(ONSET), ad("sertraline", 100, *T1, outcome="remission")],
      status="in_remission", thase_rush=0, maudsley=None, mgh=0, referral=False,
      must={"lifestyle"}, must_not={"augment", "pseudo_resistance_checks", "optimise", "switch"}),
    V("remission on a third agent after TRD", "§3 in_remission is the latest trial; §4 staging keeps history",
      [episode(ONSET), *two_failures(), ad("mirtazapine", 30, *T3, outcome="remission")],
      status="in_remission", thase_rush=2, maudsley=maud(5), mgh=2, referral=False,
      must_not={"augment", "specialised_centre", "esketamine_or_ketamine"}),
    V("final PHQ-9 of 4 -> remission", "§1 remission PHQ-9 < 5",
      [episode(ONSET), ad("sertraline", 100, *T1, outcome=None, baseline=("PHQ-9", 18), final=("PHQ-9", 4))],
      status="in_remission", outcomes=["remission"]),
    V("final PHQ-9 of 5 from 18 -> response, not a failure", "§1 response >= 50 %",
      [episode(ONSET), ad("sertraline", 100, *T1, outcome=None, baseline=("PHQ-9", 18), final=("PHQ-9", 5))],
      status="no_adequate_failure", outcomes=["response"], must_not={"pseudo_resistance_checks"}),
    V("final MADRS of 10 -> remission", "§1 remission MADRS <= 10",
      [episode(ONSET), ad("sertraline", 100, *T1, outcome=None, baseline=("MADRS", 30), final=("MADRS", 10))],
      status="in_remission", outcomes=["remission"]),
    V("final MADRS of 11 from 30 -> response", "§1 response >= 50 %",
      [episode(ONSET), ad("sertraline", 100, *T1, outcome=None, baseline=("MADRS", 30), final=("MADRS", 11))],
      status="no_adequate_failure", outcomes=["response"]),
    V("final HAM-D-17 of 7 -> remission", "§1 remission HAM-D-17 <= 7",
      [episode(ONSET), ad("sertraline", 100, *T1, outcome=None, baseline=("HAM-D-17", 20), final=("HAM-D-17", 7))],
      status="in_remission", outcomes=["remission"]),
    V("HAM-D-17 16 -> 8: exactly 50 % is a response", "§1 response = at least 50 %",
      [episode(ONSET), ad("sertraline", 100, *T1, outcome=None, baseline=("HAM-D-17", 16), final=("HAM-D-17", 8))],
      status="no_adequate_failure", outcomes=["response"]),
    V("HAM-D-17 20 -> 15: exactly 25 % is a partial response, a failure", "§1 partial 25-49 %; failed adequate",
      [episode(ONSET), ad("sertraline", 100, *T1, outcome=None, baseline=("HAM-D-17", 20), final=("HAM-D-17", 15))],
      status="inadequate_response", outcomes=["partial_response"], thase_rush=1, maudsley=maud(5)),
    V("HAM-D-17 20 -> 16: 20 % is no response", "§1 under 25 % no_response",
      [episode(ONSET), ad("sertraline", 100, *T1, outcome=None, baseline=("HAM-D-17", 20), final=("HAM-D-17", 16))],
      status="inadequate_response", outcomes=["no_response"]),
    V("two failures derived from MADRS scores -> TRD", "§1 derived outcomes; §3 trd",
      [episode(ONSET),
       ad("sertraline", 100, *T1, outcome=None, baseline=("MADRS", 30), final=("MADRS", 20)),
       ad("venlafaxine", 225, *T2, outcome=None, baseline=("MADRS", 28), final=("MADRS", 25))],
      status="trd", outcomes=["partial_response", "no_response"], thase_rush=2, failed_adequate=2),
    V("latest PHQ-9 of 4 after the trials -> remission", "§3 in_remission (latest PHQ-9 < 5 after a trial)",
      [episode(ONSET), *two_failures(), phq9(4, 0, "2024-06-01")],
      status="in_remission", must_not={"augment"}),
    V("latest PHQ-9 of 5 after the trials -> still TRD", "§3 PHQ-9 < 5 only",
      [episode(ONSET), *two_failures(), phq9(5, 0, "2024-06-01")], status="trd"),
    # ---------------------------------------------------------------- diagnosis review (§1, §3, §7)
    V("revised to bipolar after two failures", "§1 bipolar revision; §3 diagnosis_review; §7",
      [episode(ONSET), *two_failures(), revise(diagnosis="bipolar")],
      status="diagnosis_review", thase_rush=2, maudsley=maud(5), mgh=2, referral=True, reasons={"bipolar"},
      must={"diagnosis_review", "lifestyle"},
      must_not={"augment", "combine", "switch", "esketamine_or_ketamine", "optimise_dose", "specialised_centre"}),
    V("revised to another non-MDD diagnosis", "§3 diagnosis_review (another non-MDD diagnosis)",
      [episode(ONSET), revise(diagnosis="other")], status="diagnosis_review", referral=True, must={"diagnosis_review"}),
    # ---------------------------------------------------------------- buspirone and unknown agents (§2, §6)
    V("buspirone augmentation recorded: flagged, never recommended", "§6 do not recommend buspirone; §4 Maudsley 1+3+1+1; MGH 2+0.5",
      [episode(ONSET), *two_failures(), aug("buspirone", 30, *T3)],
      status="trd", thase_rush=2, maudsley=maud(6), mgh=2.5, flags={"buspirone_recorded"}, options_absent={"*": {"buspirone"}}),
    V("buspirone after one failure does not make TRD, and is never offered", "§3 (augmentation does not count); §6 do not recommend buspirone",
      [episode(ONSET), ad("sertraline", 100, *T1), aug("buspirone", 30, *T2)],
      status="inadequate_response", thase_rush=1, flags={"buspirone_recorded"}, options_absent={"*": {"buspirone"}}),
    V("an unknown agent is flagged and reported, not dropped", "§2 unknown agents accepted, stored, reported",
      [episode(ONSET), ad("hypericum", 900, *T1)],
      status="no_adequate_failure", thase_rush=0, flags={"unknown_agent"}, trial_agents={"hypericum"}, must_not={"optimise_dose"}),
    V("an unknown agent in a combination after TRD", "§2 unknown agents; §3",
      [episode(ONSET), *two_failures(), combo([("mirtazapine", 30), ("tianeptine", 37.5)], *T3)],
      status="trd", flags={"unknown_agent"}, trial_agents={"tianeptine", "mirtazapine"}),
    # ---------------------------------------------------------------- chronic resistant (§3)
    V("chronic resistant: TRD, 14 months, failed aripiprazole", "§3 chronic_resistant; §4 Maudsley 2+3+1+1; §6 no failed augmenter",
      chronic_story("2024-03-01"),
      status="chronic_resistant", thase_rush=2, maudsley=maud(7), mgh=2.5, referral=True, reasons={"chronic_resistant"},
      options_absent={"augment": {"aripiprazole"}}, options_present={"augment": {"brexpiprazole", "cariprazine"}}),
    V("same story at 11 months: TRD, not chronic", "§3 chronic_resistant needs > 12 months",
      chronic_story("2023-12-01"), status="trd", maudsley=maud(6), options_absent={"augment": {"aripiprazole"}}),
    # Changed (2026.12, §1 current agents, §6): aripiprazole is the current agent (the latest completed
    # pharmacological trial, nothing after, no remission or intolerance), so it is never an add-on option;
    # `optimise` addresses its adherence shortfall (70 % < 80 %).
    V("augmentation not adequate: not chronic, aripiprazole optimised, not re-offered as an add-on", "§3; §1 inadequate augmentation; §6 current agent",
      chronic_story("2024-03-01", aripiprazole_adherence=70),
      status="trd", maudsley=maud(7), mgh=2, flags={"pseudo_resistance"}, must={"optimise", "augment"},
      options_present={"augment": {"brexpiprazole"}, "optimise": {"address adherence"}}, options_absent={"augment": {"aripiprazole"}}),
    # ---------------------------------------------------------------- combination and MGH (§3, §4)
    V("a failed combination counts toward TRD", "§3 counting combination trials; §4 C and Maudsley agents",
      [episode(ONSET), ad("sertraline", 100, *T1), combo([("venlafaxine", 225), ("mirtazapine", 30)], *T2)],
      status="trd", thase_rush=2, maudsley=maud(6), mgh=1.5, failed_adequate=2, mentions_absent={"combine": {"mirtazapine"}},
      options_present={"augment": {"aripiprazole"}}),
    V("a first-step combination failure is one failed trial", "§3 inadequate_response = exactly 1 failed trial; §4 C",
      [episode(ONSET), combo([("sertraline", 100), ("mirtazapine", 30)], *T1)],
      status="inadequate_response", thase_rush=2, maudsley=maud(5), mgh=0.5, failed_adequate=1),
    V("MGH: dose optimised above the starting dose earns +0.5", "§4 MGH +0.5 per optimised trial",
      [episode(ONSET), ad("sertraline", 50, *T1, max_dose=150), ad("fluoxetine", 20, *T2, max_dose=20)],
      status="trd", thase_rush=1, mgh=2.5),
    V("MGH: augmentation and combination +0.5 each", "§4 MGH; §6 failed options not offered",
      [episode(ONSET), *two_failures(), aug("aripiprazole", 5, *T3), combo([("venlafaxine", 225), ("bupropion", 300)], *T4)],
      status="trd", thase_rush=2, mgh=3.0, maudsley=maud(7),
      options_absent={"augment": {"aripiprazole"}}, mentions_absent={"combine": {"bupropion"}}),
    V("failed adequate psychotherapy is not an antidepressant trial", "§1 psychotherapy adequacy; §3 counts antidepressant trials; §6 never again",
      [episode(ONSET), ad("sertraline", 100, *T1), therapy(*T2, sessions=12)],
      status="inadequate_response", failed_adequate=1, thase_rush=1,
      options_absent={"*": {"CBT", "IPT", "behavioural activation"}}),
    # ---------------------------------------------------------------- psychotherapy that failed adequately (§1, §6)
    # 8 sessions is adequate (§1, convention). One failed adequate antidepressant trial: inadequate_response,
    # whose §6 row adds psychotherapy, but it already failed adequately: never recommended again.
    # Maudsley 1 (onset to 5 May: 4 months) + 3 + 1 + 0 + 0 = 5; MGH 1 (psychotherapy is not scored).
    # Changed (trd-rules 2026.12, §6): `raise_dose` became `optimise_dose`, offered only for a current agent
    # below its usual maximum (here sertraline 100 of 200 mg/day, the latest trial, nothing started after).
    V("after one failure, psychotherapy that failed adequately is not offered again",
      "§1 psychotherapy at least 8 sessions; §3 inadequate_response; §6 never recommend what failed adequately",
      [episode(ONSET), therapy(*T1, sessions=8), ad("sertraline", 100, *T2)],
      status="inadequate_response", thase_rush=1, maudsley=maud(5), mgh=1, failed_adequate=1, adequate=[True, True],
      must={"optimise_dose", "switch", "pseudo_resistance_checks"},
      options_absent={"*": {"CBT", "IPT", "behavioural activation"}}),
    # Changed (2026.12, §1): psychotherapy adequacy is 8 sessions only (the "or 6 weeks" is gone), so 5 sessions
    # over 56 days is not adequate: a pseudo-resistance (sessions), and psychotherapy is offered again. TRD
    # (2 distinct agents); Maudsley 1 (onset to 5 July: 6 months) + 3 + 1 + 0 + 0 = 5; MGH 2.
    V("TRD with a psychotherapy of 5 sessions over 8 weeks: not adequate, offered again",
      "§1 psychotherapy at least 8 sessions; §3 trd; §6 trd (add psychotherapy); §7",
      [episode(ONSET), *two_failures(), therapy(*T3, sessions=5)],
      status="trd", thase_rush=2, maudsley=maud(5), mgh=2, referral=True, reasons={"trd"}, adequate=[True, True, False],
      must={"augment", "combine", "switch", "esketamine_or_ketamine", "rtms", "ect", "psychotherapy", "optimise"},
      flags={"pseudo_resistance"}, options_present={"psychotherapy": {"CBT", "IPT", "ISTDP", "group DBT"}},
      capabilities={"psychotherapy"}),
    V("only a psychotherapy failed adequately: the status reason says so", "§3 no_adequate_failure (antidepressant trials count)",
      [episode(ONSET), therapy(*T1, sessions=10)],
      status="no_adequate_failure", thase_rush=0, mgh=0, failed_adequate=0,
      reason_lacks={"no failed adequate trial yet"}, reason_mentions={"psychotherapy"}),
    V("only an augmentation failed adequately: the status reason says so", "§3 no_adequate_failure (augmentation does not count)",
      [episode(ONSET), aug("aripiprazole", 5, *T1)],
      status="no_adequate_failure", thase_rush=0, mgh=0.5, failed_adequate=0,
      reason_lacks={"no failed adequate trial yet"}, reason_mentions={"augmentation"}),
    V("nothing failed adequately: the status reason says no failed adequate trial yet", "§3 no_adequate_failure",
      [episode(ONSET), ad("sertraline", 100, *T1, adherence=60)],
      status="no_adequate_failure", reason_mentions={"no failed adequate trial yet"}),
    # ---------------------------------------------------------------- more edges
    V("sertraline, then sertraline + mirtazapine combination: two distinct agents -> TRD", "§3 trd counting combination trials",
      [episode(ONSET), ad("sertraline", 100, *T1), combo([("sertraline", 100), ("mirtazapine", 30)], *T2)],
      status="trd", thase_rush=2, maudsley=maud(5), mgh=1.5),
    # Changed (2026.12, §1 roles; §4): a combination containing an augmenter (lithium) also counts as an
    # augmentation trial, so Maudsley's augmentation point is 1: 1 + 3 + 1 + 1 + 0 = 6.
    V("sertraline, then sertraline + lithium recorded as a combination: still one antidepressant agent", "§3 trd = distinct antidepressant agents; §2 augmenters; §1 roles",
      [episode(ONSET), ad("sertraline", 100, *T1), combo([("sertraline", 100), ("lithium", 800)], *T2)],
      status="inadequate_response", thase_rush=1, maudsley=maud(6), must_not={"augment"}),
    V("vortioxetine failed within a combination: not offered again", "§6 never recommend what already failed adequately",
      [episode(ONSET), ad("sertraline", 100, *T1), combo([("vortioxetine", 20), ("bupropion", 300)], *T2)],
      status="trd", thase_rush=2, options_absent={"*": {"vortioxetine"}}),
    V("failed T3 augmentation: liothyronine not offered again", "§6 augmentation options; §2 T3 alias",
      [episode(ONSET), *two_failures(), aug("T3", 0.05, *T3)],
      status="trd", mgh=2.5, options_absent={"augment": {"liothyronine", "T3"}}, options_present={"augment": {"lithium"}}),
    # Review case (c). Changed: this row expected in_remission by the letter of §3, which hid the later
    # failure. §3 as this project reads it (convention: the latest evidence decides): the PHQ-9 of 3 on
    # 1 April is after T1 (ended 6 March), but T2 ended later (5 May) in no_response, so the trial is
    # the latest evidence and it is not a remission. Two failed adequate trials of distinct agents
    # (sertraline, venlafaxine): trd. C = {SSRI, SNRI}, Thase-Rush II; Maudsley 1 (onset to 5 May:
    # 4 months) + 3 + 1 (2 agents) + 0 + 0 = 5; MGH 1 + 1 = 2 (no dose raised). §7 referral for trd;
    # moderate, not psychotic: ECT among the §6 trd strategies, not first. Changed (2026.12, §7): the
    # referral names every modality a recommendation advises, so ect, rtms, esketamine, ketamine and
    # psychotherapy. The status reason says what was overtaken.
    V("a PHQ-9 of 3 after the first failed trial, then a later second failure: TRD, not remission",
      "§3 in_remission (convention: the latest evidence decides; after = on or after a completed trial's end); §3 trd; §4; §6 trd; §7",
      [episode(ONSET), ad("sertraline", 100, *T1), phq9(3, 0, "2024-04-01"), ad("venlafaxine", 225, *T2)],
      status="trd", thase_rush=2, maudsley=maud(5), mgh=2, failed_adequate=2, referral=True, reasons={"trd"},
      must=TRD_CORE | {"ect"}, must_not={"continue_and_monitor"}, options_absent={"switch": {"SSRI", "SNRI"}},
      capabilities={"ect", "rtms", "esketamine", "ketamine", "psychotherapy"}, no_flags={"possible_relapse"},
      reason_mentions={"earlier PHQ-9 of 3"}),
    # Review case (c), a variant: T2 failed but was not adequate (adherence 60 %, §1), still a later
    # trial that did not end in remission, so the PHQ-9 of 3 no longer decides. One failed adequate
    # trial (sertraline): inadequate_response; T2 raises pseudo-resistance (adherence) and §6 optimise.
    # Thase-Rush I; Maudsley 1 (4 months) + 3 + 1 + 0 + 0 = 5; MGH 1 (T2 inadequate, not scored).
    # Routine, not trd, not psychotic, no augment/combine in the §6 inadequate_response row: no referral.
    # Changed (trd-rules 2026.12, §6): `raise_dose` became `optimise_dose`, offered only for a current agent
    # below its usual maximum (here sertraline 100 of 200 mg/day, the latest trial, nothing started after).
    V("a PHQ-9 of 3 after a failed trial, then a later inadequate failure: not in remission",
      "§3 in_remission (convention: the latest evidence decides); §1 inadequate trial that failed; §3 inadequate_response; §6",
      [episode(ONSET), ad("sertraline", 100, *T1), phq9(3, 0, "2024-04-01"), ad("venlafaxine", 225, *T2, adherence=60)],
      status="inadequate_response", thase_rush=1, maudsley=maud(5), mgh=1, failed_adequate=1, adequate=[True, False],
      referral=False, must={"optimise", "pseudo_resistance_checks", "optimise_dose", "switch", "psychotherapy"},
      must_not={"continue_and_monitor"}, flags={"pseudo_resistance"}, flag_mentions={"pseudo_resistance": "adherence"}),
    # ---------------------------------------------------------------- in_remission: the latest evidence decides (§3, convention)
    # Changed (this and the next two rows): they expected in_remission by the letter of §3 whatever
    # followed. Now the PHQ-9 on 1 April, after T1 ended in remission (6 March), is the latest evidence:
    # 15 is not < 5, so not in remission. Nothing failed: no_adequate_failure, stage 0, no Maudsley,
    # MGH 0; routine, moderate, not psychotic: no referral, and §6 gives lifestyle only. 15 >= 10 after a
    # remission: the possible_relapse flag, now beside a non-remission status.
    V("remission outcome, then a PHQ-9 of 15: not in remission, flagged as a possible relapse",
      "§3 in_remission (convention: the latest evidence decides); §3 no_adequate_failure; possible relapse flag (PHQ-9 >= 10, convention)",
      [episode(ONSET), ad("sertraline", 100, *T1, outcome="remission"), phq9(15, 0, "2024-04-01")],
      status="no_adequate_failure", thase_rush=0, maudsley=None, mgh=0, failed_adequate=0, referral=False,
      flags={"possible_relapse"}, flag_mentions={"possible_relapse": "§3"}, must={"lifestyle"},
      must_not={"continue_and_monitor", "pseudo_resistance_checks"}, reason_mentions={"ended in remission"}),
    V("remission outcome, then a PHQ-9 of 10: not in remission, flagged (threshold is inclusive)",
      "§3 (convention: the latest evidence decides); possible relapse at PHQ-9 >= 10 (convention)",
      [episode(ONSET), ad("sertraline", 100, *T1, outcome="remission"), phq9(10, 0, "2024-04-01")],
      status="no_adequate_failure", flags={"possible_relapse"}, must_not={"continue_and_monitor"}),
    # A PHQ-9 of 9 is not < 5, so not in remission either; below the relapse threshold: no flag.
    V("remission outcome, then a PHQ-9 of 9: not in remission, no relapse flag",
      "§3 (convention: the latest evidence decides); possible relapse at PHQ-9 >= 10 (convention)",
      [episode(ONSET), ad("sertraline", 100, *T1, outcome="remission"), phq9(9, 0, "2024-04-01")],
      status="no_adequate_failure", no_flags={"possible_relapse"}, must_not={"continue_and_monitor"}),
    # A PHQ-9 of 3 after a remission agrees with it: in_remission, no flag.
    V("remission outcome, then a PHQ-9 of 3: in remission", "§3 in_remission (either evidence says remission)",
      [episode(ONSET), ad("sertraline", 100, *T1, outcome="remission"), phq9(3, 0, "2024-04-01")],
      status="in_remission", referral=False, must={"continue_and_monitor", "lifestyle"}, no_flags={"possible_relapse"}),
    # Review case (a). Severe episode (clinician), T1 ended in remission on 6 March, then a PHQ-9 of 24
    # with item 9 = 2 on 1 April. The PHQ-9 is the latest evidence and not < 5: not in remission;
    # nothing failed: no_adequate_failure (stage 0, no Maudsley, MGH 0). Item 9 = 2: urgent (§5), so
    # referral advised (§5, §7) with crisis resources (suicidality flag). Severe baseline with
    # suicidality, no ECT course failed: ECT first (§5), and the referral names `ect` (§7). 24 >= 10
    # after a remission: possible_relapse.
    V("severe, remission, then PHQ-9 24 with item 9 = 2: urgent, ECT first, referral names ECT",
      "§3 (convention: the latest evidence decides); §5 suicidality, ECT first; §7 capabilities",
      [episode(ONSET, severity="severe"), ad("sertraline", 100, *T1, outcome="remission"), phq9(24, 2, "2024-04-01")],
      status="no_adequate_failure", thase_rush=0, maudsley=None, mgh=0, urgency="urgent", referral=True,
      reasons={"suicid"}, capabilities={"mood_disorder_clinic", "ect"}, first="ect", options_present={"ect": {"ect"}},
      must_not={"continue_and_monitor"}, flags={"possible_relapse", "suicidality"}),
    # Review case (a), psychotic features: same story with a psychotic severe episode and no
    # suicidality (item 9 = 0: routine). Not in remission (PHQ-9 24 is the latest evidence);
    # no_adequate_failure. Psychotic features: ECT first (§5) and referral (§7) naming `ect`.
    V("psychotic, remission, then PHQ-9 24: ECT first, referral names ECT",
      "§3 (convention: the latest evidence decides); §5 psychotic features, ECT first; §7",
      [episode(ONSET, severity="severe", psychotic=True), ad("sertraline", 100, *T1, outcome="remission"), phq9(24, 0, "2024-04-01")],
      status="no_adequate_failure", thase_rush=0, maudsley=None, mgh=0, urgency="routine", referral=True,
      reasons={"psychotic"}, capabilities={"mood_disorder_clinic", "ect"}, first="ect",
      must_not={"continue_and_monitor"}, flags={"possible_relapse", "psychotic_features"}),
    # Review case (b). Sertraline and venlafaxine failed adequately (TRD), mirtazapine ended in remission
    # on 5 July, then a PHQ-9 of 20 on 1 August: the latest evidence, not < 5, so not in remission. Two
    # failed adequate trials of distinct agents: trd (7 months: not chronic). Thase-Rush II ({SSRI, SNRI});
    # Maudsley 1 (onset to 1 August: 7 months) + 3 + 1 + 0 + 0 = 5; MGH 2. §7 referral for trd; §6 trd
    # strategies with ECT (moderate, not first). 20 >= 10 after a remission: possible_relapse.
    V("TRD, remission on a third agent, then PHQ-9 20: TRD again with referral",
      "§3 (convention: the latest evidence decides); §3 trd; §4; §6 trd; §7; possible relapse (convention)",
      [episode(ONSET), *two_failures(), ad("mirtazapine", 30, *T3, outcome="remission"), phq9(20, 0, "2024-08-01")],
      status="trd", thase_rush=2, maudsley=maud(5), mgh=2, failed_adequate=2, referral=True, reasons={"trd"},
      must=TRD_CORE | {"ect"}, must_not={"continue_and_monitor"}, options_absent={"switch": {"SSRI", "SNRI"}},
      flags={"possible_relapse"}),
    # Same-day tie: T1 ended in remission on 6 March and a PHQ-9 of 12 was taken that day. The PHQ-9
    # decides (convention: a measurement on the day a trial ended is the newer evidence): 12 is not < 5,
    # not in remission; no_adequate_failure; 12 >= 10 after the remission: possible_relapse.
    V("same day: a trial ends in remission and a PHQ-9 of 12 is taken: the PHQ-9 decides",
      "§3 (convention: the latest evidence decides; on the same day the PHQ-9 decides); possible relapse (convention)",
      [episode(ONSET), ad("sertraline", 100, *T1, outcome="remission"), phq9(12, 0, "2024-03-06")],
      status="no_adequate_failure", thase_rush=0, maudsley=None, mgh=0, referral=False,
      flags={"possible_relapse"}, must_not={"continue_and_monitor"}),
    # in_remission with psychotic features: T1 ended in remission, nothing since. §5 has no exception for
    # remission: ECT listed first (CANMAT 2016), then continue_and_monitor; psychotic features advise
    # referral (§7), naming `ect`. Stage 0, no Maudsley (nothing failed), MGH 0.
    V("in remission with psychotic features: ECT still first, referral names ECT",
      "§3 in_remission; §5 psychotic features, ECT first (every status); §7",
      [episode(ONSET, severity="severe", psychotic=True), ad("sertraline", 100, *T1, outcome="remission")],
      status="in_remission", thase_rush=0, maudsley=None, mgh=0, referral=True, reasons={"psychotic"},
      capabilities={"mood_disorder_clinic", "ect"}, first="ect", options_present={"ect": {"ect"}},
      must={"continue_and_monitor", "lifestyle"}, flags={"psychotic_features"}),
    # in_remission with psychotic features after an adequate ECT course (8 sessions >= 6, §1) failed:
    # sertraline then ended in remission (latest evidence). Changed (2026.12, §5, §6): the failed ECT is in
    # `tried`, apart from the recommendations, and the antidepressant plus antipsychotic comes first. So
    # the referral (psychotic features, §7) does not name `ect`. MGH +3 for the failed ECT; no
    # antidepressant class failed: Thase-Rush 0.
    V("in remission with psychotic features after a failed ECT course: ECT shown as tried",
      "§3 in_remission; §5 unless an adequate ECT course already failed; §4 MGH; §7",
      [episode(ONSET, severity="severe", psychotic=True), ect(*T1, sessions=8), ad("sertraline", 100, *T2, outcome="remission")],
      status="in_remission", thase_rush=0, mgh=3, referral=True, reasons={"psychotic"},
      capabilities_absent={"ect"}, first="antidepressant_plus_antipsychotic", options_absent={"*": {"ect"}}, must={"continue_and_monitor"},
      must_not={"ect"}, tried={"ect"}),
    # in_remission and urgent: severe episode, T1 ended in remission, then a PHQ-9 of 4 with item 9 = 1.
    # The PHQ-9 is the latest evidence and < 5: in_remission. Item 9 >= 1: urgent, so referral advised
    # (§5, §7); severe baseline with suicidality: ECT first (§5), named in the referral. No relapse flag.
    V("in remission but urgent (PHQ-9 4, item 9 = 1, severe): referral, ECT first",
      "§3 in_remission; §5 suicidality always advises referral; §5 ECT first; §7",
      [episode(ONSET, severity="severe"), ad("sertraline", 100, *T1, outcome="remission"), phq9(4, 1, "2024-04-01")],
      status="in_remission", urgency="urgent", referral=True, reasons={"suicid"}, capabilities={"ect"}, first="ect",
      must={"continue_and_monitor"}, flags={"suicidality"}, no_flags={"possible_relapse"}),
    # in_remission and urgent, moderate: a clinician flags suicide risk on a MADRS after the remission.
    # 2026.12 (§3): a MADRS now counts as evidence too; 8 <= 10 is in remission, so the expectation
    # (in_remission) stands for a new reason. Urgent: referral advised (§5); moderate, not psychotic,
    # urgent (not emergency): ECT not first and not named.
    V("in remission, moderate, clinician-flagged risk: referral advised, no ECT",
      "§3 in_remission (PHQ-9 evidence only); §5 flagged risk -> urgent, referral; §5 ECT first only if psychotic or severe",
      [episode(ONSET), ad("sertraline", 100, *T1, outcome="remission"), madrs(8, "2024-04-01", risk="flagged")],
      status="in_remission", urgency="urgent", referral=True, reasons={"suicid"}, capabilities_absent={"ect"},
      must={"continue_and_monitor"}, must_not={"ect"}, flags={"suicidality"}),
    # No trial has completed, so neither clause of §3 can hold: a PHQ-9 during the first trial is a
    # response check (§8 week 4), not "after a trial". Nothing failed: no_adequate_failure, stage 0.
    V("a PHQ-9 of 3 during a first, unfinished trial: not yet in remission",
      "§3 in_remission needs a completed trial (after = on or after a completed trial's end, convention); §3 no_adequate_failure",
      [episode(ONSET), ad("sertraline", 100, "2024-01-10"), phq9(3, 0, "2024-02-07")],
      status="no_adequate_failure", thase_rush=0, maudsley=None, mgh=0, referral=False,
      must_not={"continue_and_monitor", "pseudo_resistance_checks"}),
    # Same-day tie, the other way: T1 failed on 6 March and a PHQ-9 of 4 was taken that day. The PHQ-9
    # decides (convention): < 5, in_remission.
    V("a PHQ-9 of 4 on the day a failed trial ended counts as after it",
      "§3 in_remission (on or after the trial's end; on the same day the PHQ-9 decides: convention)",
      [episode(ONSET), ad("sertraline", 100, *T1), phq9(4, 0, "2024-03-06")],
      status="in_remission", thase_rush=1, referral=False, must={"continue_and_monitor"}),
    V("a new episode starts from zero", "§3 computed from the current episode only; §4 months from the new onset",
      [episode("2023-01-01"), ad("sertraline", 100, "2023-01-10", "2023-03-07"), ad("venlafaxine", 225, "2023-03-10", "2023-05-05"),
       ad("mirtazapine", 30, "2023-05-10", "2023-07-05", outcome="remission"),
       episode("2024-06-01"), ad("escitalopram", 20, "2024-06-10", "2024-08-05")],
      status="inadequate_response", thase_rush=1, maudsley=maud(5), mgh=1, failed_adequate=1),
    V("psychotherapy stopped after 4 sessions in 3 weeks: pseudo-resistance", "§1 psychotherapy at least 8 sessions or 6 weeks",
      [episode(ONSET), therapy("2024-01-10", "2024-01-31", sessions=4)],
      status="no_adequate_failure", maudsley=None, flags={"pseudo_resistance"}, adequate=[False]),
]
# fmt: on

# ================================================================ trd-rules 2026.12 (issue 11)
# Each row names the CLINICAL.md section it tests; the arithmetic is in the comment above it.
# Worked by hand from CLINICAL.md 2026.12. Defaults: the patient is female, born 1980 (one TRD
# risk factor, female sex, CLINICAL 3: never two unless a row adds one); onset 1 January 2024.
CAPS_TRD = {"mood_disorder_clinic", "psychotherapy", "esketamine", "ketamine", "rtms", "ect"}
ALL_CHECKS = [
    "adherence_review",
    "interacting_medicines",
    "recent_stressors",
    "substance_alcohol_use",
    "bipolar_screen",
    "thyroid_function",
    "vitamin_d",
    "sleep_apnoea_screen",
    "medical_illness",
]


def low_week(first="2024-01-01", moods=(2, 3, 3, 2, 4, 3, 3)):
    start = d(first)
    return [journal(start + timedelta(days=i), m) for i, m in enumerate(moods)]


# fmt: off
VIGNETTES_2026_12: list[V] = [
    # ---------------------------------------------------------------- §1 missing data: adequacy unknown
    # Adherence not recorded: the rule needs it, so adequacy_unknown, never a failure of either kind:
    # no pseudo-resistance, no workup (no failure), nothing staged.
    V("2026.12: adherence not recorded: adequacy unknown, not a failure", "§1 missing data",
      [episode(ONSET), ad("sertraline", 100, *T1, adherence=None)],
      status="no_adequate_failure", adequacy=["adequacy_unknown"], thase_rush=0, maudsley=None, mgh=0, workup=None,
      flags={"adequacy_unknown"}, flag_mentions={"adequacy_unknown": "adherence not recorded"}, no_flags={"pseudo_resistance"},
      must_not={"pseudo_resistance_checks", "optimise"}),
    V("2026.12: dose not recorded: adequacy unknown", "§1 missing data (dose)",
      [episode(ONSET), ad("sertraline", None, *T1)],
      status="no_adequate_failure", adequacy=["adequacy_unknown"], flag_mentions={"adequacy_unknown": "dose of sertraline not recorded"},
      no_flags={"pseudo_resistance"}),
    V("2026.12: unknown agent: adequacy unknown, reported, no pseudo-resistance", "§1 missing data (unknown agent); §2",
      [episode(ONSET), ad("hypericum", 900, *T1)],
      status="no_adequate_failure", adequacy=["adequacy_unknown"], flags={"adequacy_unknown", "unknown_agent"}, no_flags={"pseudo_resistance"},
      trial_agents={"hypericum"}),
    # Decision: a recorded shortfall (adherence 60 % < 80 %) makes a trial not adequate even where
    # another field is unknown: the failure is then an inadequate one (pseudo-resistance).
    V("2026.12: unknown agent with adherence 60 %: the recorded shortfall decides", "§1 inadequate trial that failed",
      [episode(ONSET), ad("hypericum", 900, *T1, adherence=60)],
      status="no_adequate_failure", adequacy=["not_adequate"], flags={"pseudo_resistance", "unknown_agent"},
      flag_mentions={"pseudo_resistance": "adherence"}),
    # MADRS baseline, PHQ-9 final of 15: different instruments and not in remission: undetermined.
    V("2026.12: outcome undetermined (MADRS baseline, PHQ-9 final 15): adequacy unknown", "§1 outcome; §1 missing data",
      [episode(ONSET), ad("sertraline", 100, *T1, outcome=None, baseline=("MADRS", 30), final=("PHQ-9", 15))],
      status="no_adequate_failure", outcomes=[None], adequacy=["adequacy_unknown"],
      flag_mentions={"adequacy_unknown": "outcome undetermined"}, no_flags={"pseudo_resistance"}),
    # ---------------------------------------------------------------- §1 adequacy of the other kinds
    V("2026.12: psychotherapy of 7 sessions is not adequate", "§1 psychotherapy at least 8 sessions",
      [episode(ONSET), therapy(*T1, sessions=7)],
      status="no_adequate_failure", adequacy=["not_adequate"], flags={"pseudo_resistance"}, flag_mentions={"pseudo_resistance": "7 sessions"}),
    V("2026.12: psychotherapy with no session count: adequacy unknown", "§1 psychotherapy; missing data",
      [episode(ONSET), course("psychotherapy", *T1, sessions=None)],
      adequacy=["adequacy_unknown"], flag_mentions={"adequacy_unknown": "sessions not recorded"}, no_flags={"pseudo_resistance"}),
    # Esketamine 8 sessions, 10 May to 31 May = 21 days: adequate, failed -> tried; only IV ketamine offered.
    # TRD (sertraline, venlafaxine); Maudsley 1 (4 months) + 3 + 1 + 0 + 0 = 5; MGH 2.
    V("2026.12: esketamine 8 sessions over 21 days failed adequately: tried, only IV ketamine offered", "§1 esketamine adequacy; §6 never again; §7",
      [episode(ONSET), *two_failures(), course("esketamine", "2024-05-10", "2024-05-31", sessions=8)],
      status="trd", adequacy=["adequate", "adequate", "adequate"], maudsley=maud(5), mgh=2, tried={"esketamine"},
      options={"esketamine_or_ketamine": ["IV ketamine (off-label)"]}, capabilities_exact=CAPS_TRD - {"esketamine"}),
    # 10 May to 30 May = 20 days < 21: not adequate (pseudo-resistance), esketamine still offered.
    V("2026.12: esketamine 8 sessions over 20 days: not adequate, offered again", "§1 esketamine at least 21 days",
      [episode(ONSET), *two_failures(), course("esketamine", "2024-05-10", "2024-05-30", sessions=8)],
      status="trd", adequacy=["adequate", "adequate", "not_adequate"], flags={"pseudo_resistance"},
      options={"esketamine_or_ketamine": ["esketamine with an oral SSRI/SNRI", "IV ketamine (off-label)"], "optimise": ["complete the course"]}),
    V("2026.12: esketamine 7 sessions over 28 days: not adequate", "§1 esketamine at least 8 sessions",
      [episode(ONSET), *two_failures(), course("esketamine", "2024-05-10", "2024-06-07", sessions=7)],
      adequacy=["adequate", "adequate", "not_adequate"], flag_mentions={"pseudo_resistance": "7 sessions"}),
    V("2026.12: IV ketamine 6 infusions failed adequately: tried, esketamine still offered", "§1 ketamine at least 6 infusions; §6",
      [episode(ONSET), *two_failures(), course("ketamine", "2024-05-10", "2024-05-22", sessions=6)],
      adequacy=["adequate", "adequate", "adequate"], tried={"ketamine"},
      options={"esketamine_or_ketamine": ["esketamine with an oral SSRI/SNRI"]}, capabilities_exact=CAPS_TRD - {"ketamine"}),
    V("2026.12: IV ketamine 5 infusions: not adequate", "§1 ketamine at least 6 infusions",
      [episode(ONSET), *two_failures(), course("ketamine", "2024-05-10", "2024-05-22", sessions=5)],
      adequacy=["adequate", "adequate", "not_adequate"], flag_mentions={"pseudo_resistance": "5 infusions"}),
    V("2026.12: rTMS 20 sessions failed adequately: tried, not offered, not a capability", "§1 rtms at least 20 sessions; §6; §7",
      [episode(ONSET), *two_failures(), course("rtms", *T3, sessions=20)],
      adequacy=["adequate", "adequate", "adequate"], tried={"rtms"}, must_not={"rtms"}, capabilities_exact=CAPS_TRD - {"rtms"}),
    V("2026.12: rTMS 19 sessions: not adequate, offered again", "§1 rtms at least 20 sessions",
      [episode(ONSET), *two_failures(), course("rtms", *T3, sessions=19)],
      adequacy=["adequate", "adequate", "not_adequate"], must={"rtms"}, flags={"pseudo_resistance"}),
    # Thase-Rush III (SSRI, SNRI, TCA) and a completed VNS without benefit (adequate: completed with an
    # outcome): the specialised centre offers DBS and clinical trials, not VNS.
    V("2026.12: VNS completed with no response: tried; the centre offers DBS and trials", "§1 vns adequacy (convention); §6; §7",
      [episode(ONSET), *two_failures(), ad("nortriptyline", 100, *T3), course("vns", *T4)],
      status="trd", thase_rush=3, tried={"vns"}, options={"specialised_centre": ["DBS", "clinical trials"]},
      capabilities={"dbs", "clinical_trials"}, capabilities_absent={"vns"}),
    V("2026.12: VNS completed without an outcome: adequacy unknown", "§1 vns completed with an outcome; missing data",
      [episode(ONSET), *two_failures(), ad("nortriptyline", 100, *T3), course("vns", *T4, outcome=None)],
      adequacy=["adequate", "adequate", "adequate", "adequacy_unknown"], options_present={"specialised_centre": {"VNS"}}),
    V("2026.12: ECT with no session count: adequacy unknown, no pseudo-resistance", "§1 ect; missing data",
      [episode(ONSET), course("ect", *T1, sessions=None)],
      adequacy=["adequacy_unknown"], mgh=0, no_flags={"pseudo_resistance"}),
    # Lithium 600 mg is adequate by dose only; the output adds the serum-level note. MGH 2 + 0.5 = 2.5.
    V("2026.12: lithium at 600 mg: adequate by dose, serum level is the real criterion", "§1 lithium adequacy; §4 MGH",
      [episode(ONSET), *two_failures(), aug("lithium", 600, *T3)],
      adequacy=["adequate", "adequate", "adequate"], mgh=2.5, tried={"lithium"}, flag_mentions={"lithium_serum_level": "serum level"},
      options_absent={"augment": {"lithium"}}),
    V("2026.12: lithium at 599 mg: not adequate", "§1 lithium 600 mg; §2",
      [episode(ONSET), *two_failures(), aug("lithium", 599, *T3)],
      adequacy=["adequate", "adequate", "not_adequate"], mgh=2, flags={"pseudo_resistance"}),
    # Started at 25 mg (below 50), raised to 100: adequate, but time at dose unknown. MGH 1 + 0.5 = 1.5.
    V("2026.12: started below the minimum, raised above it: adequate, time at dose unknown", "§1 time_at_dose_unknown; §4 MGH +0.5",
      [episode(ONSET), ad("sertraline", 25, *T1, max_dose=100)],
      status="inadequate_response", adequacy=["adequate"], mgh=1.5, maudsley=maud(5), flags={"time_at_dose_unknown"},
      options={"optimise_dose": ["sertraline: 100 mg/day recorded, usual maximum 200 mg/day"]}),
    # Venlafaxine failed; sertraline stopped for intolerance after 56 days: both in tried, never offered;
    # no current agent (the latest trial ended in intolerance), so no optimise_dose. Switch: not SNRI (failed).
    V("2026.12: intolerance after 8 weeks: in tried, never offered again", "§1 intolerance at any duration (convention); §6",
      [episode(ONSET), ad("venlafaxine", 225, *T1), ad("sertraline", 100, *T2, outcome="intolerance")],
      status="inadequate_response", tried={"venlafaxine", "sertraline"}, flags={"intolerance"}, options_absent={"*": {"sertraline"}},
      must_not={"optimise_dose"}, options={"switch": ["SSRI", "NDRI", "NaSSA", "multimodal"]}),
    # ---------------------------------------------------------------- §1 dates
    # Started 20 Dec 2023, onset 1 Jan 2024, ended 20 Jan: counted from the onset, 19 days < 28.
    V("2026.12: a trial started before onset counts from the onset", "§1 dates (convention)",
      [episode(ONSET), ad("sertraline", 100, "2023-12-20", "2024-01-20")],
      status="no_adequate_failure", adequacy=["not_adequate"], flag_mentions={"pseudo_resistance": "19 days"}),
    V("2026.12: a trial that ended before onset is not part of the episode", "§1 dates",
      [episode(ONSET), ad("sertraline", 100, "2023-10-01", "2023-12-01")],
      status="no_adequate_failure", adequate=[], thase_rush=0, mgh=0),
    # ---------------------------------------------------------------- §2 names
    V("2026.12: brand names in old events resolve to the generic", "§2 brands, release forms",
      [episode(ONSET), ad("Zoloft", 100, *T1, as_entered=True), ad("Effexor XR", 225, *T2, as_entered=True)],
      status="trd", thase_rush=2, failed_adequate=2, trial_agents={"sertraline", "venlafaxine"}, no_flags={"unknown_agent"},
      options_absent={"switch": {"SSRI", "SNRI"}}),
    V("2026.12: a salt word and release form resolve (Wellbutrin XL, bupropion hydrochloride)", "§2 salts, release forms",
      [episode(ONSET), ad("Wellbutrin XL", 300, *T1, as_entered=True), ad("sertraline hydrochloride", 100, *T2, as_entered=True)],
      status="trd", thase_rush=2, trial_agents={"bupropion", "sertraline"}, no_flags={"unknown_agent"},
      mentions_absent={"combine": {"bupropion"}}),
    # ---------------------------------------------------------------- §1 per-agent maximum doses
    # Venlafaxine started at 75 and reached 225 (>= 150) in the combination: adequate. TRD (sertraline,
    # venlafaxine, mirtazapine distinct); C = {SSRI, SNRI, NaSSA}: Thase-Rush II; Maudsley 1 + 3 + 2 (3
    # agents) + 0 + 0 = 6; MGH 1 + 0.5 = 1.5.
    V("2026.12: a combination's per-agent maximum makes it adequate", "§1 each agent's maximum daily dose; §4",
      [episode(ONSET), ad("sertraline", 100, *T1), combo([("venlafaxine", 75), ("mirtazapine", 30)], *T2, max_doses={"venlafaxine": 225})],
      status="trd", adequate=[True, True], thase_rush=2, maudsley=maud(6), mgh=1.5, flags={"time_at_dose_unknown"}),
    V("2026.12: without the per-agent maximum, venlafaxine 75 mg falls short", "§1 every agent at or above its minimum",
      [episode(ONSET), ad("sertraline", 100, *T1), combo([("venlafaxine", 75), ("mirtazapine", 30)], *T2)],
      status="inadequate_response", adequate=[True, False], flag_mentions={"pseudo_resistance": "venlafaxine"}),
    # ---------------------------------------------------------------- §3 chronic_resistant
    # Onset 1 Jan 2023; sertraline, venlafaxine, then escitalopram + aripiprazole (a combination with an
    # augmenter: also an augmentation trial) all failed; PHQ-9 16 on 1 Mar 2024 = 425 days > 365.
    # Maudsley 2 (14 months) + 3 + 2 (3 agents) + 1 + 0 = 8; MGH 1 + 1 + 0.5 = 2.5.
    V("2026.12: a failed combination with an augmenter establishes chronic_resistant", "§1 roles; §3 chronic_resistant; §4",
      [episode("2023-01-01"), ad("sertraline", 100, "2023-01-10", "2023-03-07"), ad("venlafaxine", 225, "2023-03-10", "2023-05-05"),
       combo([("escitalopram", 20), ("aripiprazole", 5)], "2023-05-10", "2023-07-05"), phq9(16, 0, "2024-03-01")],
      status="chronic_resistant", thase_rush=2, maudsley=maud(8), mgh=2.5, options_absent={"augment": {"aripiprazole"}}),
    # Buspirone augmentation does not establish chronic_resistant; Maudsley counts it as augmentation used:
    # 2 + 3 + 1 + 1 + 0 = 7; MGH 2 + 0.5 = 2.5.
    V("2026.12: buspirone does not establish chronic_resistant", "§3 buspirone excluded; §6 buspirone note",
      [episode("2023-01-01"), ad("sertraline", 100, "2023-01-10", "2023-03-07"), ad("venlafaxine", 225, "2023-03-10", "2023-05-05"),
       aug("buspirone", 30, "2023-05-10", "2023-07-05"), phq9(16, 0, "2024-03-01")],
      status="trd", maudsley=maud(7), mgh=2.5, flags={"buspirone_recorded"}, flag_mentions={"buspirone_recorded": "chronic_resistant"}),
    # 1 Jan 2023 to 1 Jan 2024 is 365 days: not more than 365. Maudsley 1 (12 months) + 3 + 1 + 1 + 0 = 6.
    V("2026.12: 365 days is not chronic", "§3 chronic = more than 365 days (convention)",
      chronic_story("2024-01-01"), status="trd", maudsley=maud(6)),
    # To 2 Jan 2024: 366 days > 365, chronic_resistant; still 12 whole months (Maudsley 1 + 3 + 1 + 1 + 0 = 6).
    V("2026.12: 366 days with 12 whole months is chronic", "§3 chronic counted in days, not Maudsley months",
      chronic_story("2024-01-02"), status="chronic_resistant", maudsley=maud(6), reasons={"chronic_resistant"}),
    # ---------------------------------------------------------------- §3 remission from MADRS / HAM-D-17
    V("2026.12: a MADRS of 8 after the trials decides remission", "§3 in_remission (b): PHQ-9, MADRS or HAM-D-17",
      [episode(ONSET), *two_failures(), madrs(8, "2024-06-01")], status="in_remission", thase_rush=2, must={"continue_and_monitor"}),
    V("2026.12: a HAM-D-17 of 8 after the trials is not remission", "§3 in_remission; §1 HAM-D-17 <= 7",
      [episode(ONSET), *two_failures(), hamd(8, "2024-06-01")], status="trd"),
    V("2026.12: PHQ-9 3 and MADRS 14 on one date: not all in remission", "§3 several scores on that date must all be (convention)",
      [episode(ONSET), *two_failures(), phq9(3, 0, "2024-06-01"), madrs(14, "2024-06-01")], status="trd"),
    V("2026.12: PHQ-9 3 and HAM-D-17 6 on one date: in remission", "§3 several scores on that date, all in remission",
      [episode(ONSET), *two_failures(), phq9(3, 0, "2024-06-01"), hamd(6, "2024-06-01")], status="in_remission"),
    V("2026.12: remission, then a MADRS of 14: not in remission, no PHQ-9 relapse flag", "§3 the latest evidence decides",
      [episode(ONSET), ad("sertraline", 100, *T1, outcome="remission"), madrs(14, "2024-04-01")],
      status="no_adequate_failure", no_flags={"possible_relapse"}, must_not={"continue_and_monitor"}),
    # ---------------------------------------------------------------- §3 at risk of TRD
    # Female, born 1955: 2024 - 1955 = 69 >= 65. Two factors at inadequate_response: early_specialist_review.
    V("2026.12: female and 69: at risk, early specialist review", "§3 at risk of TRD; §6 early_specialist_review",
      [patient("female", 1955), episode(ONSET), ad("sertraline", 100, *T1)],
      status="inadequate_response", flags={"at_risk_of_trd"}, flag_mentions={"at_risk_of_trd": "older_age"},
      strategies=["pseudo_resistance_checks", "optimise_dose", "switch", "psychotherapy", "early_specialist_review", "lifestyle"],
      referral=False),
    V("2026.12: male, 64: no risk factor", "§3 older age >= 65 (convention)",
      [patient("male", 1960), episode(ONSET), ad("sertraline", 100, *T1)],
      status="inadequate_response", no_flags={"at_risk_of_trd"}, must_not={"early_specialist_review"}),
    V("2026.12: male, 65: one factor, no early review", "§3 older age; §6 needs 2 factors",
      [patient("male", 1959), episode(ONSET), ad("sertraline", 100, *T1)],
      flags={"at_risk_of_trd"}, flag_mentions={"at_risk_of_trd": "1 TRD risk factor"}, must_not={"early_specialist_review"}),
    V("2026.12: eating disorder and chronic pain: two factors", "§3 comorbidity and medical illness; §6",
      [patient("male"), episode(ONSET), comorbidity("eating_disorder", "2024-01-05"), comorbidity("chronic_pain", "2024-01-05"),
       ad("sertraline", 100, *T1)],
      status="inadequate_response", flag_mentions={"at_risk_of_trd": "medical_illness"}, must={"early_specialist_review"}),
    V("2026.12: a comorbidity later recorded absent is not a factor", "§1 latest per condition",
      [patient("male"), episode(ONSET), comorbidity("eating_disorder", "2024-01-05"), comorbidity("eating_disorder", "2024-02-01", present=False),
       ad("sertraline", 100, *T1)],
      no_flags={"at_risk_of_trd"}),
    V("2026.12: the latest comorbidity record by date stands, whatever the entry order", "§1 latest per condition",
      [patient("male"), episode(ONSET), comorbidity("sleep_disorder", "2024-02-01"), comorbidity("sleep_disorder", "2024-01-05", present=False),
       ad("sertraline", 100, *T1)],
      flag_mentions={"at_risk_of_trd": "comorbidity"}),
    V("2026.12: first onset at 16 and 2 prior episodes: two factors", "§3 early onset < 18, recurrence >= 2 (conventions)",
      [patient("male"), episode(ONSET, first_onset_age=16, prior=2), ad("sertraline", 100, *T1)],
      flag_mentions={"at_risk_of_trd": "frequent_recurrence"}, must={"early_specialist_review"}),
    V("2026.12: two earlier episodes on record count as recurrence", "§3 the larger of prior_episodes and episodes on record",
      [patient("male"), episode("2021-01-01"), episode("2022-06-01"), episode(ONSET, prior=1), ad("sertraline", 100, *T1)],
      status="inadequate_response", flag_mentions={"at_risk_of_trd": "frequent_recurrence"}, must_not={"early_specialist_review"}),
    # Onset 1 Jan 2023, PHQ-9 on 5 Jan 2024: 369 days > 365: long episode.
    V("2026.12: an episode of 369 days is a risk factor", "§3 long episode (more than 365 days)",
      [patient("male"), episode("2023-01-01"), ad("sertraline", 100, "2023-01-10", "2023-03-07"), phq9(12, 0, "2024-01-05")],
      status="inadequate_response", flag_mentions={"at_risk_of_trd": "long_episode"}),
    V("2026.12: at TRD the risk flag is not shown", "§3 at risk only at no_adequate_failure or inadequate_response",
      [patient("female", 1950), episode(ONSET), *two_failures()], status="trd", no_flags={"at_risk_of_trd"}),
    V("2026.12: at risk never changes status, urgency or referral", "§3 it never changes status, staging, urgency or referral",
      [patient("female", 1950), episode(ONSET)], status="no_adequate_failure", urgency="routine", referral=False,
      flags={"at_risk_of_trd"}, strategies=["lifestyle"]),
    # ---------------------------------------------------------------- §4 staging
    V("2026.12: Thase-Rush V with bilateral ECT: no note", "§4 Thase-Rush V (bilateral)",
      [episode(ONSET), *four_classes(), ect(*T5, sessions=10, placement="bilateral")], thase_rush=5, thase_note=None),
    V("2026.12: Thase-Rush V with right unilateral ECT: bilateral not confirmed", "§4 any placement counts (convention), noted",
      [episode(ONSET), *four_classes(), ect(*T5, sessions=10, placement="right_unilateral")], thase_rush=5,
      thase_note="bilateral ECT not confirmed"),
    # Two failed ECT courses: MGH 2 + 3 once = 5 (not 8). Maudsley 1 (8 months to 4 Sep) + 3 + 1 + 0 + 1 = 6.
    V("2026.12: MGH adds 3 for ECT once per episode", "§4 MGH +3 once per episode (Fava)",
      [episode(ONSET), *two_failures(), ect(*T3), ect(*T4)], mgh=5, maudsley=maud(6), thase_rush=2),
    V("2026.12: only an ECT course failed: Maudsley not staged, MGH 3", "§4 Maudsley needs a failed antidepressant trial",
      [episode(ONSET), ect(*T1)], status="no_adequate_failure", maudsley=None, mgh=3, tried={"ect"}),
    # ---------------------------------------------------------------- §5 urgency
    # PHQ-9 27 without item 9: the other eight sum to at most 24, so item 9 = 3: emergency; ECT first at
    # any severity (acute suicidality).
    V("2026.12: PHQ-9 27 without item 9: emergency, ECT first", "§5 total 27 forces item 9 = 3; §5 ECT first in emergency",
      [episode(ONSET), phq9(27, None, "2024-01-05")],
      urgency="emergency", referral=True, flags={"suicide_item_not_recorded", "suicidality"}, strategies=["ect", "lifestyle"],
      capabilities_exact={"mood_disorder_clinic", "ect"}),
    V("2026.12: PHQ-9 25 without item 9: urgent", "§5 total >= 25 forces item 9 >= 1",
      [episode(ONSET), phq9(25, None, "2024-01-05")],
      urgency="urgent", referral=True, flags={"suicide_item_not_recorded"}, strategies=["lifestyle"], capabilities_exact={"mood_disorder_clinic"}),
    V("2026.12: PHQ-9 24 without item 9: routine, item not recorded", "§5 total 24 forces nothing",
      [episode(ONSET), phq9(24, None, "2024-01-05")], urgency="routine", referral=False, flags={"suicide_item_not_recorded"}),
    V("2026.12: clinician active intent, then a same-day self-report of 0: emergency", "§5 highest on one date; self-report never lowers",
      [episode(ONSET), madrs(30, "2024-02-01", risk="active_intent"), self_phq9([1, 1, 1, 1, 1, 1, 1, 1, 0], "2024-02-01")],
      urgency="emergency", referral=True),
    V("2026.12: a same-day self-report of 0, then clinician active intent: emergency", "§5 whatever the arrival order",
      [episode(ONSET), self_phq9([1, 1, 1, 1, 1, 1, 1, 1, 0], "2024-02-01"), madrs(30, "2024-02-01", risk="active_intent")],
      urgency="emergency", referral=True),
    V("2026.12: two same-day clinician PHQ-9s (item 9 = 2, then 0): urgent", "§5 highest on one date",
      [episode(ONSET), phq9(18, 2, "2024-02-01"), phq9(10, 0, "2024-02-01")], urgency="urgent"),
    V("2026.12: a later self-report of 0 does not lower a clinician's flag", "§5 self-report raises, never lowers (convention)",
      [episode(ONSET), madrs(25, "2024-02-01", risk="flagged"), self_phq9([0] * 9, "2024-03-01")],
      urgency="urgent", urgency_mentions={"does not lower"}),
    V("2026.12: a later self-report raises a clinician's none to emergency", "§5 a self-report can raise",
      [episode(ONSET), hamd(10, "2024-02-01", risk="none"), self_phq9([2, 2, 2, 2, 2, 2, 2, 2, 3], "2024-03-01")],
      urgency="emergency", first="ect"),
    V("2026.12: self-reports alone: a later one lowers", "§5 only a clinician rating is protected",
      [episode(ONSET), self_phq9([1, 1, 1, 1, 1, 1, 1, 1, 2], "2024-02-01"), self_phq9([0] * 9, "2024-03-01")], urgency="routine"),
    V("2026.12: WSAS never changes urgency", "§5 nothing else changes urgency; §7 WSAS",
      [episode(ONSET), phq9(14, 2, "2024-02-01"), wsas(30, "2024-03-01")], urgency="urgent", reasons={"suicid", "WSAS"}),
    # Item 9 = 1 on 5 Jan; sertraline ends 1 May = 117 days later (26 + 29 + 31 + 30 + 1), no later rating: stale.
    V("2026.12: an urgent rating 117 days old asks for reassessment", "§5 stale > 90 days (convention)",
      [episode(ONSET), phq9(14, 1, "2024-01-05"), ad("sertraline", 100, "2024-01-10", "2024-05-01")],
      urgency="urgent", flag_fields={"reassess_suicide_risk": {"rating_on": "2024-01-05", "age_days": 117}}),
    V("2026.12: exactly 90 days is not stale", "§5 more than 90 days",
      [episode(ONSET), phq9(14, 1, "2024-01-05"), ad("sertraline", 100, "2024-01-10", "2024-04-04")],
      urgency="urgent", no_flags={"reassess_suicide_risk"}),
    V("2026.12: 91 days is stale", "§5 more than 90 days",
      [episode(ONSET), phq9(14, 1, "2024-01-05"), ad("sertraline", 100, "2024-01-10", "2024-04-05")],
      urgency="urgent", flag_fields={"reassess_suicide_risk": {"age_days": 91}}),
    V("2026.12: a later self-report, even one that does not lower it, means not stale", "§5 stale only with no later rating",
      [episode(ONSET), madrs(20, "2024-01-05", risk="flagged"), self_phq9([0] * 9, "2024-02-01"), ad("sertraline", 100, "2024-01-10", "2024-05-01")],
      urgency="urgent", no_flags={"reassess_suicide_risk"}),
    # Item 9 = 3 on 1 Feb 2023, new episode on 1 Jan 2024: urgency is carried per patient (emergency), 334
    # days old (365 - 31) and stale; ECT first (emergency).
    V("2026.12: urgency carries across episodes and goes stale", "§5 carried per patient; stale",
      [episode("2023-01-01"), phq9(20, 3, "2023-02-01"), episode(ONSET)],
      urgency="emergency", flag_fields={"reassess_suicide_risk": {"age_days": 334}}, strategies=["ect", "lifestyle"]),
    V("2026.12: emergency in a moderate episode: ECT first", "§5 ECT first in acute suicidality at any severity",
      [episode(ONSET), phq9(20, 3, "2024-01-05")], urgency="emergency", first="ect", capabilities={"ect"}),
    # ---------------------------------------------------------------- §5 psychotic features, ECT declined or running
    V("2026.12: psychotic features: ECT, then antidepressant plus antipsychotic; no esketamine", "§5 psychotic features",
      [episode(ONSET, "severe", True)],
      strategies=["ect", "antidepressant_plus_antipsychotic", "lifestyle"], not_offered={"esketamine", "ketamine"},
      options={"antidepressant_plus_antipsychotic": ["olanzapine", "quetiapine", "aripiprazole", "risperidone"]}),
    V("2026.12: psychotic features, ECT declined: antidepressant plus antipsychotic first", "§5; §6 declined",
      [episode(ONSET, "severe", True), declined("ect", "2024-01-05")],
      strategies=["antidepressant_plus_antipsychotic", "lifestyle"], declined={"ect"}, capabilities_exact={"mood_disorder_clinic"}),
    # ECT course running since 10 Jan, PHQ-9 on 20 Jan: day 10 < 21: continue; ECT never re-recommended.
    V("2026.12: during an ECT course, ECT is not recommended again: continue", "§5 a running course follows §6; §6 continue_current_trial",
      [episode(ONSET, "severe", True), ect("2024-01-10"), phq9(20, 0, "2024-01-20")],
      strategies=["antidepressant_plus_antipsychotic", "continue_current_trial", "lifestyle"], adequacy=["running"]),
    # Day 26 >= 21, no response recorded: review the course.
    V("2026.12: an ECT course past 21 days with no response shown: review", "§6 review_current_trial (ECT 21 days)",
      [episode(ONSET, "severe", True), ect("2024-01-10"), phq9(20, 0, "2024-02-05")],
      strategies=["antidepressant_plus_antipsychotic", "review_current_trial", "lifestyle"]),
    # Sertraline and aripiprazole (augmentation) failed: the antipsychotic options drop aripiprazole.
    # Severe psychotic: Maudsley 1 + 5 + 1 + 1 + 0 = 8.
    V("2026.12: psychotic features: the antipsychotic options drop a failed aripiprazole", "§5 options not failed",
      [episode(ONSET, "severe", True), ad("sertraline", 100, *T1), aug("aripiprazole", 5, *T2)],
      status="inadequate_response", maudsley=maud(8), tried={"aripiprazole", "sertraline"},
      options={"antidepressant_plus_antipsychotic": ["olanzapine", "quetiapine", "risperidone"]}),
    # ---------------------------------------------------------------- §6 never recommend
    # Sertraline + aripiprazole combination failed, then venlafaxine: TRD (distinct sertraline, venlafaxine).
    # Maudsley 1 + 3 + 1 + 1 (combination with an augmenter) + 0 = 6; MGH 0.5 + 1 = 1.5.
    V("2026.12: aripiprazole failed inside a combination is never re-offered", "§6 any role; §1 roles; §4",
      [episode(ONSET), combo([("sertraline", 100), ("aripiprazole", 5)], *T1), ad("venlafaxine", 225, *T2)],
      status="trd", maudsley=maud(6), mgh=1.5, tried={"aripiprazole"}, options_absent={"*": {"aripiprazole"}}),
    # Mirtazapine failed as augmentation, then vortioxetine failed (the current agent): no combination names
    # mirtazapine. TRD (sertraline, venlafaxine, vortioxetine); C = {SSRI, SNRI, multimodal}: II.
    # Maudsley 1 (8 months) + 3 + 2 (3 agents) + 1 + 0 = 7; MGH 1 + 1 + 0.5 + 1 = 3.5.
    V("2026.12: mirtazapine failed as augmentation: no SSRI/SNRI plus mirtazapine", "§6 nor a strategy naming it",
      [episode(ONSET), *two_failures(), aug("mirtazapine", 30, *T3), ad("vortioxetine", 20, *T4)],
      status="trd", thase_rush=2, maudsley=maud(7), mgh=3.5, options={"combine": ["SSRI plus trazodone", "SSRI plus bupropion"]}),
    V("2026.12: failed at 200 mg: no optimise_dose", "§6 optimise_dose only below the usual maximum",
      [episode(ONSET), ad("sertraline", 200, *T1)], status="inadequate_response", must_not={"optimise_dose"}),
    V("2026.12: optimise_dose names both doses", "§6 optimise_dose (NG222 1.9)",
      [episode(ONSET), ad("sertraline", 100, *T1)],
      options={"optimise_dose": ["sertraline: 100 mg/day recorded, usual maximum 200 mg/day"]}),
    V("2026.12: optimise_dose for lithium reads check serum level", "§6 optimise_dose, lithium",
      [episode(ONSET), ad("sertraline", 100, *T1), aug("lithium", 800, *T2)],
      status="inadequate_response", options={"optimise_dose": ["lithium: check serum level (800 mg/day recorded)"]}),
    # Sertraline failed; venlafaxine running since 10 Mar, PHQ-9 on 20 Apr (day 41 >= 28), no baseline:
    # review; no switch to SNRI (current) or SSRI (failed); optimise venlafaxine 225 of 375.
    V("2026.12: on venlafaxine, no switch to SNRI", "§6 a current agent's class is no switch target; review_current_trial",
      [episode(ONSET), ad("sertraline", 100, *T1), ad("venlafaxine", 225, "2024-03-10"), phq9(16, 0, "2024-04-20")],
      status="inadequate_response",
      strategies=["review_current_trial", "pseudo_resistance_checks", "optimise_dose", "switch", "psychotherapy", "lifestyle"],
      options={"switch": ["NDRI", "NaSSA", "multimodal"],
               "optimise_dose": ["venlafaxine: 225 mg/day recorded, usual maximum 375 mg/day"]}),
    V("2026.12: a young running trial: continue, only workup and lifestyle beside it", "§6 continue_current_trial (28 days)",
      [episode(ONSET), ad("sertraline", 100, *T1), ad("venlafaxine", 225, "2024-03-10"), phq9(16, 0, "2024-03-20")],
      strategies=["continue_current_trial", "pseudo_resistance_checks", "lifestyle"], options={"pseudo_resistance_checks": ALL_CHECKS}),
    V("2026.12: ketamine running 10 days: continue", "§6 review age ketamine 14 days",
      [episode(ONSET), *two_failures(), course("ketamine", "2024-05-10"), phq9(15, 0, "2024-05-20")],
      status="trd", strategies=["continue_current_trial", "pseudo_resistance_checks", "lifestyle"],
      capabilities_exact={"mood_disorder_clinic"}),
    V("2026.12: ketamine running 15 days: review; ketamine is not a new strategy", "§6 review_current_trial; a running modality",
      [episode(ONSET), *two_failures(), course("ketamine", "2024-05-10"), phq9(15, 0, "2024-05-25")],
      status="trd", must={"review_current_trial", "augment"}, options={"esketamine_or_ketamine": ["esketamine with an oral SSRI/SNRI"]}),
    # Baseline PHQ-9 20, PHQ-9 9 on day 41: 55 % lower, 9 not < 5: response, not remission.
    V("2026.12: response on the running trial: optimise to remission", "§6 optimise_to_remission; §7 augmentation recommended",
      [episode(ONSET), ad("sertraline", 100, "2024-01-10", baseline=("PHQ-9", 20)), phq9(9, 0, "2024-02-20")],
      status="no_adequate_failure", strategies=["optimise_to_remission", "lifestyle"], referral=True,
      options={"optimise_to_remission": ["sertraline: 100 mg/day recorded, usual maximum 200 mg/day", "aripiprazole", "brexpiprazole",
                                         "cariprazine", "CBT", "IPT", "behavioural activation"]},
      capabilities_exact={"mood_disorder_clinic", "psychotherapy"}),
    # WSAS 30 -> 10 is not a response: WSAS never enters outcome (§7), so the trial is reviewed.
    V("2026.12: a WSAS baseline shows no response", "§7 WSAS never enters outcome; §6 review_current_trial",
      [episode(ONSET), ad("sertraline", 100, "2024-01-10", baseline=("WSAS", 30)), wsas(10, "2024-02-20")],
      strategies=["review_current_trial", "lifestyle"], referral=False),
    V("2026.12: 40 % lower on the running trial is no response: review", "§6 review_current_trial",
      [episode(ONSET), ad("sertraline", 100, "2024-01-10", baseline=("PHQ-9", 20)), phq9(12, 0, "2024-02-20")],
      strategies=["review_current_trial", "lifestyle"]),
    V("2026.12: a completed trial ended in response after a failure: optimise to remission, then the menu", "§6 optimise_to_remission",
      [episode(ONSET), ad("venlafaxine", 225, *T1), ad("sertraline", 100, *T2, outcome="response")],
      status="inadequate_response",
      strategies=["optimise_to_remission", "pseudo_resistance_checks", "optimise_dose", "switch", "psychotherapy", "lifestyle"]),
    # TRD, mirtazapine ended in response (the current agent): optimise to remission first; no combination
    # adds mirtazapine (current); switch drops SSRI, SNRI (failed) and NaSSA (current).
    V("2026.12: a responder with TRD: optimise to remission before the menu", "§6 optimise_to_remission; current agent",
      [episode(ONSET), *two_failures(), ad("mirtazapine", 30, *T3, outcome="response")],
      status="trd", maudsley=maud(5),
      strategies=["optimise_to_remission", "pseudo_resistance_checks", "augment", "combine", "switch", "switch", "psychotherapy",
                  "esketamine_or_ketamine", "rtms", "ect", "lifestyle"],
      options={"combine": ["SSRI plus trazodone", "SSRI plus bupropion"], "switch": ["NDRI", "multimodal", "TCA", "MAOI"]}),
    # ---------------------------------------------------------------- §6 declined
    V("2026.12: augmentation declined: no augment", "§6 declined",
      [episode(ONSET), *two_failures(), declined("augmentation", "2024-05-10")],
      status="trd", must_not={"augment"}, must={"combine"}, declined={"augmentation"}),
    V("2026.12: esketamine declined: only IV ketamine", "§6 declined; §7 nothing declined adds a capability",
      [episode(ONSET), *two_failures(), declined("esketamine", "2024-05-10")],
      options={"esketamine_or_ketamine": ["IV ketamine (off-label)"]}, capabilities_absent={"esketamine"}, declined={"esketamine"}),
    V("2026.12: a declined brand (Abilify) removes aripiprazole", "§6 declined agent; §2 brands",
      [episode(ONSET), *two_failures(), declined("Abilify", "2024-05-10")],
      options_absent={"*": {"aripiprazole"}}, declined={"aripiprazole"}),
    V("2026.12: ECT declined, then accepted: recommended again", "§6 the latest record per strategy stands",
      [episode(ONSET), *two_failures(), declined("ect", "2024-05-06"), declined("ect", "2024-05-20", declined=False)],
      must={"ect"}, capabilities={"ect"}),
    V("2026.12: a refusal in an earlier episode does not carry over", "§6 declined per episode",
      [episode("2023-01-01", "severe", True), declined("ect", "2023-02-01"), episode(ONSET, "severe", True)], first="ect"),
    # 4 failed agents (two classes: Thase-Rush II) and ECT declined: the specialised centre.
    V("2026.12: four failed agents and ECT declined: specialised centre", "§6 >= 4 failed agents and ECT failed or declined",
      [episode(ONSET), ad("sertraline", 100, *T1), ad("fluoxetine", 40, *T2), ad("venlafaxine", 225, *T3), ad("duloxetine", 60, *T4),
       declined("ect", "2024-09-05")],
      status="trd", thase_rush=2, must={"specialised_centre"}, must_not={"ect"}, capabilities={"vns", "dbs", "clinical_trials"}),
    # ---------------------------------------------------------------- §6 never an MAOI with an SSRI, SNRI or TCA
    V("2026.12: on phenelzine: no combination, no MAOI switch", "§6 never an MAOI with an SSRI, SNRI or TCA; current class",
      [episode(ONSET), *two_failures(), ad("phenelzine", 60, "2024-05-10"), phq9(18, 0, "2024-06-20")],
      status="trd", must={"review_current_trial"}, must_not={"combine"}, options={"switch": ["NDRI", "NaSSA", "multimodal", "TCA"]}),
    V("2026.12: on vortioxetine: vortioxetine is no switch target", "§6 a current agent as a switch target",
      [episode(ONSET), *two_failures(), ad("vortioxetine", 10, "2024-05-10"), phq9(18, 0, "2024-06-20")],
      status="trd", options_absent={"switch": {"vortioxetine", "multimodal"}}),
    # ---------------------------------------------------------------- §6 pseudo-resistance workup
    V("2026.12: workup: normal and abnormal checks, the rest open", "§6 workup",
      [episode(ONSET), ad("sertraline", 100, *T1), workup("adherence_review", "normal", "2024-02-01"),
       workup("thyroid_function", "abnormal", "2024-03-01")],
      status="inadequate_response", workup={"adherence_review": "normal", "thyroid_function": "abnormal", "vitamin_d": "open"},
      flags={"workup_abnormal", "workup_open"}, flag_mentions={"workup_abnormal": "thyroid_function"},
      options={"pseudo_resistance_checks": [c for c in ALL_CHECKS if c not in {"adherence_review", "thyroid_function"}]}),
    V("2026.12: a positive bipolar screen says review the diagnosis, status unchanged", "§6 workup; only a revision changes status",
      [episode(ONSET), ad("sertraline", 100, *T1), workup("bipolar_screen", "abnormal", "2024-03-01")],
      status="inadequate_response", flag_mentions={"workup_abnormal": "review the diagnosis"}),
    # Adherence reviewed 1 Feb (after T1 began); T2 began 10 Mar and failed: adherence review is open again,
    # vitamin D (once per episode) stays normal.
    V("2026.12: per-failure checks are redone after a new failure; once-per-episode ones are not", "§6 workup (convention)",
      [episode(ONSET), ad("sertraline", 100, *T1), workup("adherence_review", "normal", "2024-02-01"),
       workup("vitamin_d", "normal", "2024-02-01"), ad("venlafaxine", 225, *T2)],
      status="trd", workup={"adherence_review": "open", "vitamin_d": "normal"}),
    V("2026.12: no workup before any failure", "§6 after any failure",
      [episode(ONSET), workup("thyroid_function", "abnormal", "2024-01-05")], workup=None, no_flags={"workup_abnormal"}),
    V("2026.12: a check from an earlier episode does not count", "§6 once per episode",
      [episode("2023-01-01"), workup("vitamin_d", "normal", "2023-02-01"), episode(ONSET), ad("sertraline", 100, *T1)],
      workup={"vitamin_d": "open"}),
    V("2026.12: every check done: no pseudo-resistance recommendation", "§6 the open checks",
      [episode(ONSET), ad("sertraline", 100, *T1), *[workup(ch, "normal", "2024-03-01") for ch in ALL_CHECKS]],
      must_not={"pseudo_resistance_checks"}, no_flags={"workup_open", "workup_abnormal"}),
    # ---------------------------------------------------------------- §6 mood journal
    # Seven entries 1-7 Jan, moods 2 3 3 2 4 3 3: sum 20, mean 2.857 -> 2.9 <= 3; lowest 2.
    V("2026.12: seven journal entries with mean mood 2.9: low mood", "§6 journal_low_mood (convention)",
      [episode(ONSET), *low_week()], journal={"mean_mood": 2.9, "lowest_mood": 2}, flags={"journal_low_mood"},
      flag_mentions={"journal_low_mood": "consider a PHQ-9"}, urgency="routine", status="no_adequate_failure"),
    V("2026.12: six entries are not enough", "§6 at least 7 entries",
      [episode(ONSET), *low_week(moods=(1, 1, 1, 1, 1, 1))], journal={"mean_mood": 1.0}, no_flags={"journal_low_mood"}),
    # Entries 1-7 Jan (mood 1) and 30 Jan (mood 8): the window is 17-30 Jan, one entry.
    V("2026.12: the journal shows the 14 days ending at the latest entry", "§6 journal window",
      [episode(ONSET), *low_week(moods=(1,) * 7), journal("2024-01-30", 8)],
      journal={"mean_mood": 8.0, "lowest_mood": 8, "window_ends_on": "2024-01-30"}, no_flags={"journal_low_mood"}),
    V("2026.12: a later entry for the same date replaces it", "§6 one per date",
      [episode(ONSET), journal("2024-01-05", 1), journal("2024-01-05", 9)], journal={"mean_mood": 9.0, "lowest_mood": 9}),
    # Sertraline running since 10 Jan; nausea on 8, 11, 12 Jan, headache on 11 Jan.
    V("2026.12: side effects counted, and those since the current trial began", "§6 journal tolerability",
      [episode(ONSET), ad("sertraline", 100, "2024-01-10"), journal("2024-01-08", 5, ["nausea"]),
       journal("2024-01-11", 5, ["nausea", "headache"]), journal("2024-01-12", 5, ["nausea"], ["poor_sleep"])],
      journal={"side_effects": {"headache": 1, "nausea": 3}, "side_effects_on_current_trial": {"headache": 1, "nausea": 2},
               "triggers": {"poor_sleep": 1}},
      strategies=["continue_current_trial", "lifestyle"]),
    V("2026.12: the journal never changes status or urgency", "§6 the journal never changes status, outcome, staging or urgency",
      [episode(ONSET), *two_failures(), *low_week("2024-05-06")], status="trd", urgency="routine", maudsley=maud(5),
      flags={"journal_low_mood"}),
    V("2026.12: journal entries do not move the assessment date", "§1 assessment date",
      [*duration_story("2024-01-15"), journal("2024-03-01", 5)], maudsley=maud(5)),
    # ---------------------------------------------------------------- §7 referral
    V("2026.12: WSAS 21: daily life seriously impaired, referral", "§7 WSAS > 20",
      [episode(ONSET), wsas(21, "2024-01-10")], referral=True, reasons={"WSAS 21"}, capabilities_exact={"mood_disorder_clinic"}),
    V("2026.12: WSAS 20: no referral", "§7 WSAS > 20", [episode(ONSET), wsas(20, "2024-01-10")], referral=False),
    V("2026.12: WSAS 15 and 25 on one date: the highest counts", "§7 highest on a shared date",
      [episode(ONSET), wsas(15, "2024-01-10"), wsas(25, "2024-01-10")], referral=True, reasons={"WSAS 25"}),
    V("2026.12: the episode's latest WSAS decides", "§7 the episode's latest WSAS",
      [episode(ONSET), wsas(30, "2024-01-10"), wsas(12, "2024-02-10")], referral=False),
    V("2026.12: an augmentation trial started advises referral", "§7 augmentation trial started, running or completed",
      [episode(ONSET), ad("sertraline", 100, *T1), aug("aripiprazole", 5, "2024-03-10")],
      referral=True, reasons={"trial t2 started"}, strategies=["continue_current_trial", "pseudo_resistance_checks", "lifestyle"]),
    V("2026.12: not in remission though: an augmentation that ended in remission advises none", "§7 unless in_remission",
      [episode(ONSET), ad("sertraline", 100, *T1), aug("aripiprazole", 5, *T2, outcome="remission")],
      status="in_remission", referral=False),
    V("2026.12: TRD capabilities are what the recommendations advise", "§7 capabilities",
      [episode(ONSET), *two_failures()], capabilities_exact=CAPS_TRD),
    V("2026.12: Thase-Rush III adds VNS, DBS and clinical trials", "§7 capabilities; §6",
      [episode(ONSET), *two_failures(), ad("nortriptyline", 100, *T3)], capabilities_exact=CAPS_TRD | {"vns", "dbs", "clinical_trials"}),
    V("2026.12: bipolar recorded at opening: §1 wording", "§1 diagnosis wording; §3 diagnosis_review; §7",
      [episode(ONSET, diagnosis="bipolar")], status="diagnosis_review", referral=True,
      reason_mentions={"bipolar disorder (recorded at opening)"}, reasons={"recorded at opening"}),
    V("2026.12: bipolar revised later: revised on the assessment date", "§1 diagnosis wording",
      [episode(ONSET), *two_failures(), revise(diagnosis="bipolar")], status="diagnosis_review",
      reason_mentions={"bipolar disorder (revised on 2024-05-05)"}),
    V("2026.12: another diagnosis reads 'diagnosis revised: review', never suspected bipolar", "§1 diagnosis wording",
      [episode(ONSET), revise(diagnosis="other")], status="diagnosis_review", reason_mentions={"diagnosis revised: review"},
      reason_lacks={"bipolar"}, reasons={"diagnosis revised: review"}),
]
# fmt: on
VIGNETTES += VIGNETTES_2026_12

# Issue 11 review: defects found rule by rule against CLINICAL.md, each row worked by hand.
# fmt: off
VIGNETTES_REVIEW: list[V] = [
    # §5: the other eight items sum to at most 24, so a total of 27 forces item 9 = 3 even when an
    # item 9 of 0 was sent (27 - 24 = 3): the record contradicts itself and urgency fails closed.
    V("review: PHQ-9 27 with item 9 = 0 sent: emergency, not routine", "§5 total forces item 9 (fail closed)",
      [episode(ONSET), phq9(27, 0, "2024-01-05")], urgency="emergency", referral=True, first="ect",
      reasons={"suicidality"}),
    # 25 - 24 = 1: item 9 >= 1, urgent although 0 was sent.
    V("review: PHQ-9 25 with item 9 = 0 sent: urgent", "§5 total >= 25 forces item 9 >= 1 (fail closed)",
      [episode(ONSET), phq9(25, 0, "2024-01-05")], urgency="urgent", referral=True),
    # §6 never recommend a strategy naming an agent stopped for intolerance: NDRI is bupropion alone
    # (§2), so after bupropion was stopped (day 10 < 28: not a failure, but in tried) "switch to NDRI"
    # names it. Sertraline (T2) and venlafaxine (T3) failed adequately: trd; SSRI, SNRI in C.
    V("review: bupropion stopped for intolerance: no switch to NDRI", "§6 never recommend; §2 classes",
      [episode(ONSET), ad("bupropion", 300, "2024-01-10", "2024-01-20", outcome="intolerance"),
       ad("sertraline", 100, *T2), ad("venlafaxine", 225, *T3)],
      status="trd", tried={"bupropion"}, options={"switch": ["NaSSA", "multimodal", "TCA", "MAOI"]},
      options_absent={"*": {"NDRI", "SSRI plus bupropion"}}),
    # Same at inadequate_response (§6 row: switch to another class): bupropion declined, sertraline
    # failed (T1): the switch offers SNRI, NaSSA, multimodal, not NDRI.
    V("review: bupropion declined: no switch to NDRI after one failure", "§6 declined; inadequate_response switch",
      [episode(ONSET), ad("sertraline", 100, *T1), declined("bupropion", "2024-03-07")],
      status="inadequate_response", declined={"bupropion"}, options={"switch": ["SNRI", "NaSSA", "multimodal"]}),
    # §1 lithium: adequacy by dose only (600 mg) and the output adds the serum-level note. At 450 mg
    # (< 600) the trial is not adequate (pseudo-resistance), and the note matters most here: a serum
    # level of 0.5-0.8 mmol/L at 450 mg is a real trial.
    V("review: lithium below 600 mg: pseudo-resistance and the serum-level note", "§1 lithium serum note",
      [episode(ONSET), *two_failures(), aug("lithium", 450, *T3)], status="trd", adequacy=["adequate", "adequate", "not_adequate"],
      flags={"pseudo_resistance", "lithium_serum_level"}, flag_mentions={"lithium_serum_level": "0.5-0.8 mmol/L"}),
    # §2 liothyronine's table unit is the microgram (25-50): its doses read in micrograms, as written,
    # never "0.025 mg" (the review's "liothyronine 25 taken as 25 mg"). Sertraline failed (T1); T3 at
    # 25 micrograms (0.025 mg) running since 10 Mar, PHQ-9 on 20 Apr (day 41 >= 28): review, and
    # optimise_dose names 25 of 50 micrograms.
    V("review: liothyronine doses read in micrograms", "§2 units; §6 optimise_dose names both doses",
      [episode(ONSET), ad("sertraline", 100, *T1), aug("liothyronine", 0.025, "2024-03-10"), phq9(16, 0, "2024-04-20")],
      status="inadequate_response",
      options={"optimise_dose": ["liothyronine: 25 microgram/day recorded, usual maximum 50 microgram/day"]}),
    # 12.5 micrograms < 25 for 56 days: not adequate, the shortfall named in micrograms.
    V("review: liothyronine below its minimum, in micrograms", "§1 pseudo-resistance names the shortfall; §2 units",
      [episode(ONSET), *two_failures(), aug("liothyronine", 0.0125, *T3)], adequacy=["adequate", "adequate", "not_adequate"],
      flag_mentions={"pseudo_resistance": "12.5 microgram/day is below the minimum 25 microgram/day"}),
    # §5 every PHQ-9 without item 9 carries suicide_item_not_recorded, whatever the entry order of
    # the day's PHQ-9s: a total of 14 without item 9 and a 12 with item 9 = 0, both on 1 Feb.
    V("review: a same-day PHQ-9 without item 9 is flagged, entered first", "§5 suicide_item_not_recorded; any order",
      [episode(ONSET), phq9(14, None, "2024-02-01"), phq9(12, 0, "2024-02-01")], urgency="routine",
      flags={"suicide_item_not_recorded"}),
    V("review: a same-day PHQ-9 without item 9 is flagged, entered last", "§5 suicide_item_not_recorded; any order",
      [episode(ONSET), phq9(12, 0, "2024-02-01"), phq9(14, None, "2024-02-01")], urgency="routine",
      flags={"suicide_item_not_recorded"}),
    # §4 severity from the episode's first PHQ-9 when the clinician gave none; two on that first date
    # (22 = severe, 18 = moderate): the highest decides whatever the entry order, so with item 9 = 1
    # (urgent) the severe baseline puts ECT first (§5), in either order.
    V("review: two first-day PHQ-9s, severe entered first: ECT first", "§4 severity from the first PHQ-9; §5 severe + urgent",
      [episode(ONSET, None), phq9(22, 1, "2024-01-05"), phq9(18, 1, "2024-01-05")], urgency="urgent", first="ect"),
    V("review: two first-day PHQ-9s, severe entered last: ECT first", "§4 severity from the first PHQ-9; §5 any order",
      [episode(ONSET, None), phq9(18, 1, "2024-01-05"), phq9(22, 1, "2024-01-05")], urgency="urgent", first="ect"),
    # §6 response on the running trial: baseline PHQ-9 20; on day 41 PHQ-9s of 12 and 9 on one date.
    # The highest decides whatever the order: (20 - 12) / 20 = 40 % < 50 %: no response, review.
    V("review: same-day scores on a running trial: the highest decides the response", "§6 review_current_trial; any order",
      [episode(ONSET), ad("sertraline", 100, "2024-01-10", baseline=("PHQ-9", 20)), phq9(12, 0, "2024-02-20"), phq9(9, 0, "2024-02-20")],
      strategies=["review_current_trial", "lifestyle"]),
]
# fmt: on
VIGNETTES += VIGNETTES_REVIEW


def _opts(assessment, strategy):
    return {
        o
        for r in assessment["recommendations"]
        if strategy == "*" or r["strategy"] == strategy
        for o in r["options"]
    }


def check(v: V, a: dict) -> list[str]:
    problems: list[str] = []

    def expect(what, want, got):
        if want is not ANY and want != got:
            problems.append(f"{what}: expected {want!r}, got {got!r}")

    expect("status", v.status, a["status"])
    for word in v.reason_mentions:
        if word.lower() not in a["status_reason"].lower():
            problems.append(f"status reason lacks {word!r}: {a['status_reason']!r}")
    for word in v.reason_lacks:
        if word.lower() in a["status_reason"].lower():
            problems.append(f"status reason says {word!r}, which is false here: {a['status_reason']!r}")
    expect("Thase-Rush stage", v.thase_rush, a["stages"]["thase_rush"]["stage"])
    m = a["stages"]["maudsley"]
    expect("Maudsley", v.maudsley, None if m is None else (m["score"], m["band"]))
    expect("MGH", v.mgh, a["stages"]["mgh"]["score"])
    expect("urgency", v.urgency, a["urgency"])
    expect("failed adequate trials", v.failed_adequate, a["failed_adequate_trials"])
    expect("adequate", v.adequate, [t["adequate"] for t in a["trials"]])
    expect("outcomes", v.outcomes, [t["outcome"] for t in a["trials"]])
    expect("referral advised", v.referral, a["referral"]["advised"])
    reasons = " | ".join(a["referral"]["reasons"]).lower()
    for word in v.reasons:
        if word.lower() not in reasons:
            problems.append(f"referral reasons lack {word!r}: {a['referral']['reasons']}")
    missing_caps = v.capabilities - set(a["referral"]["capabilities"])
    if missing_caps:
        problems.append(f"referral capabilities lack {sorted(missing_caps)}: {a['referral']['capabilities']}")
    named_caps = v.capabilities_absent & set(a["referral"]["capabilities"])
    if named_caps:
        problems.append(
            f"referral capabilities must not name {sorted(named_caps)}: {a['referral']['capabilities']}"
        )
    strategies = [r["strategy"] for r in a["recommendations"]]
    if v.must - set(strategies):
        problems.append(f"missing strategies {sorted(v.must - set(strategies))}; got {strategies}")
    if v.must_not & set(strategies):
        problems.append(f"strategies that must not appear: {sorted(v.must_not & set(strategies))}")
    if v.first is not None and (not strategies or strategies[0] != v.first):
        problems.append(f"first strategy should be {v.first!r}; got {strategies}")
    for strategy, wanted in v.options_present.items():
        lacking = {o for o in wanted if o.lower() not in {x.lower() for x in _opts(a, strategy)}}
        if lacking:
            problems.append(f"{strategy} options lack {sorted(lacking)}: {sorted(_opts(a, strategy))}")
    for strategy, banned in v.options_absent.items():
        offered = {o for o in _opts(a, strategy) if o.lower() in {b.lower() for b in banned}}
        if offered:
            problems.append(f"{strategy} offers {sorted(offered)}, which must not be offered")
    for strategy, words in v.mentions_absent.items():
        offered = {o for o in _opts(a, strategy) for w in words if w.lower() in o.lower()}
        if offered:
            problems.append(f"{strategy} offers {sorted(offered)}, which must not be offered")
    flag_names = {f["flag"] for f in a["flags"]}
    if v.flags - flag_names:
        problems.append(f"missing flags {sorted(v.flags - flag_names)}; got {sorted(flag_names)}")
    if v.no_flags & flag_names:
        problems.append(f"unexpected flags {sorted(v.no_flags & flag_names)}")
    for flag, word in v.flag_mentions.items():
        details = [f.get("detail", "") for f in a["flags"] if f["flag"] == flag]
        if not any(word.lower() in dt.lower() for dt in details):
            problems.append(f"flag {flag} should name {word!r}: {details}")
    reported = {ag for t in a["trials"] for ag in t["agents"]} | {f.get("agent") for f in a["flags"]}
    if v.trial_agents - reported:
        problems.append(f"agents not reported: {sorted(v.trial_agents - reported)}")
    # trd-rules 2026.12
    tried = {t["option"] for t in a["tried"]}
    if v.tried - tried:
        problems.append(f"tried lacks {sorted(v.tried - tried)}: {a['tried']}")
    offered_not = {n["strategy"] for n in a["not_offered"]}
    if v.not_offered - offered_not:
        problems.append(f"not_offered lacks {sorted(v.not_offered - offered_not)}: {a['not_offered']}")
    declined = {x["strategy"] for x in a["declined"]}
    if v.declined - declined:
        problems.append(f"declined lacks {sorted(v.declined - declined)}: {a['declined']}")
    expect(
        "capabilities",
        v.capabilities_exact,
        set(a["referral"]["capabilities"]) if v.capabilities_exact is not ANY else ANY,
    )
    expect("strategies", v.strategies, strategies)
    for strategy, wanted in v.options.items():
        got = next((r["options"] for r in a["recommendations"] if r["strategy"] == strategy), None)
        expect(f"{strategy} options", wanted, got)
    for flag, fields in v.flag_fields.items():
        found = [f for f in a["flags"] if f["flag"] == flag]
        if not found:
            problems.append(f"flag {flag} missing; got {sorted(flag_names)}")
        for key, want in fields.items():
            expect(f"flag {flag}.{key}", want, found[0].get(key) if found else None)
    if v.workup is not ANY:
        got = None if a["workup"] is None else {w["check"]: w["state"] for w in a["workup"]}
        if v.workup is None or got is None:
            expect("workup", v.workup, got)
        else:
            for check, state in v.workup.items():
                expect(f"workup {check}", state, got.get(check))
    if v.journal is not ANY:
        if v.journal is None or a["journal"] is None:
            expect("journal", v.journal, a["journal"])
        else:
            for key, want in v.journal.items():
                expect(f"journal {key}", want, a["journal"].get(key))
    expect("adequacy", v.adequacy, [t["adequacy"] for t in a["trials"]])
    expect("Thase-Rush note", v.thase_note, a["stages"]["thase_rush"].get("note"))
    for word in v.urgency_mentions:
        if word.lower() not in a["urgency_reason"].lower():
            problems.append(f"urgency reason lacks {word!r}: {a['urgency_reason']!r}")
    return problems


def _param(v: V):
    marks = [pytest.mark.xfail(strict=True, reason=v.xfail)] if v.xfail else []
    return pytest.param(v, id=v.name, marks=marks)


def test_there_are_enough_vignettes_and_each_cites_the_spec():
    assert len(VIGNETTES) >= 45
    assert len(VIGNETTES_2026_12) >= 60  # issue 11: one or more per changed or new rule
    assert len({v.name for v in VIGNETTES}) == len(VIGNETTES)
    assert all("§" in v.cites for v in VIGNETTES)


@pytest.mark.parametrize("v", [_param(v) for v in VIGNETTES])
def test_vignette(v: V):
    a = assess(fold(PATIENT, build(v.story)))
    problems = check(v, a)
    assert not problems, f"{v.name} ({v.cites}):\n  " + "\n  ".join(problems)
    # Things that hold for every patient (§5, §6): lifestyle always, never buspirone, every
    # recommendation carries its reasons and evidence, urgent/emergency always advises referral.
    assert "lifestyle" in [r["strategy"] for r in a["recommendations"]]
    assert "buspirone" not in {o.lower() for o in _opts(a, "*")}
    assert all(
        r["rationale"]
        and r["evidence"]
        and r["setting"] in {"primary_care", "specialist", "mood_disorder_clinic"}
        for r in a["recommendations"]
    )
    if a["urgency"] in {"urgent", "emergency"}:
        assert a["referral"]["advised"]
    # trd-rules 2026.12: every assessment names its rule set; tried, declined and not_offered stay
    # apart from the recommendations (optimise_dose may name a current agent: CLINICAL 6 exception).
    assert a["rules_version"] == "trd-rules 2026.12"
    offered = {
        o.lower() for r in a["recommendations"] if r["strategy"] != "optimise_dose" for o in r["options"]
    }
    for t in a["tried"]:
        assert t["option"].lower() not in offered, f"{t['option']} is in tried and recommended"
    strategies = {r["strategy"] for r in a["recommendations"]}
    for n in a["not_offered"]:
        assert n["strategy"] not in offered and n["strategy"] not in strategies
