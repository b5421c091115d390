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

import pytest

from pathway.engine import assess, fold
from tests.pathway.builders import (
    PATIENT,
    ad,
    aug,
    build,
    combo,
    ect,
    episode,
    hamd,
    madrs,
    phq9,
    revise,
    therapy,
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
    # A MADRS is not a PHQ-9, so the trial stays the latest evidence: in_remission. Urgent: referral
    # advised (§5); moderate, not psychotic: ECT not first and not named.
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
    expect("capabilities", v.capabilities_exact, set(a["referral"]["capabilities"]) if v.capabilities_exact is not ANY else ANY)
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
    offered = {o.lower() for r in a["recommendations"] if r["strategy"] != "optimise_dose" for o in r["options"]}
    for t in a["tried"]:
        assert t["option"].lower() not in offered, f"{t['option']} is in tried and recommended"
    strategies = {r["strategy"] for r in a["recommendations"]}
    for n in a["not_offered"]:
        assert n["strategy"] not in offered and n["strategy"] not in strategies
