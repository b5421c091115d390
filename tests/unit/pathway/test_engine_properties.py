"""Engine properties over random, realistic patient histories (hypothesis).

(a) delivery order: the service's PatientProjection.add, fed shuffled and redelivered events
    (stored as JSON between some of them, as the service does), gives the in-order assessment;
(b) an event that is not an assessment never lowers urgency (CLINICAL.md 5);
(c) nothing that clearly failed adequately is recommended again (CLINICAL.md 6);
(d) facts survive their JSON round trip (they are stored between events) with an identical
    assessment, also when the fold resumes from the stored facts;
(e) flags name no event id and no date: they are compared to decide whether the assessment
    changed (projection.same_assessment), and provenance must not count as a change (the one
    exception is the stale rating's own date, CLINICAL 5);
(f) trd-rules 2026.12: nothing stopped for intolerance or declined is recommended; every urgent
    or emergency assessment advises referral; same-day ratings give the highest urgency whatever
    the order they were entered in.

Histories now include the 2026.12 record kinds: comorbidities, workup checks, preferences, mood
journal entries, patient-reported PHQ-9 panels, WSAS, ECT placement, per-agent maximum doses,
the other trial kinds and brand names as old events carry them.
"""

from __future__ import annotations

import json
import re
from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from care_shared import drugs
from care_shared.contracts.intake import (
    AssessmentRecorded,
    EpisodeOpened,
    EpisodeRevised,
    PatientRegistered,
    Severity,
    Sex,
    SideEffect,
    Trigger,
    WorkupCheck,
)
from pathway.engine import PatientFacts, apply, assess, fold
from pathway.projection import PatientProjection
from tests.unit.pathway.builders import (
    PATIENT,
    Episode,
    Pref,
    Trial,
    ad,
    aug,
    combo,
    comorbidity,
    course,
    declined,
    ect,
    episode,
    hamd,
    journal,
    madrs,
    patient,
    payloads,
    phq9,
    revise,
    self_phq9,
    therapy,
    workup,
    wsas,
)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RANK = {"routine": 0, "urgent": 1, "emergency": 2}

ALL = drugs.all_drugs()
ANTIDEPRESSANTS = sorted(n for n, d in ALL.items() if not d.is_augmenter)
AUGMENTERS = sorted(n for n, d in ALL.items() if d.is_augmenter)
REMISSION_AT_OR_BELOW = {"PHQ-9": 4, "MADRS": 10, "HAM-D-17": 7}  # CLINICAL.md 1
BRANDS = {
    "sertraline": "Zoloft",
    "venlafaxine": "Effexor XR",
    "bupropion": "Wellbutrin XL",
    "fluoxetine": "Prozac",
}
COMORBIDITIES = [
    "eating_disorder",
    "sleep_disorder",
    "substance_use_disorder",
    "chronic_pain",
    "thyroid_disease",
    "other_chronic_medical_illness",
]
DECLINABLE = [
    "ect",
    "esketamine",
    "ketamine",
    "rtms",
    "psychotherapy",
    "augmentation",
    "combination",
    "vns",
    "dbs",
    "aripiprazole",
    "lithium",
    "mirtazapine",
    "bupropion",
    "vortioxetine",
    "Abilify",
]
MAX_SCORE = {"PHQ-9": 27, "MADRS": 60, "HAM-D-17": 52}
OUTCOMES = ["remission", "response", "partial_response", "no_response", "intolerance"]


# ------------------------------------------------------------------ history generator
@st.composite
def doses(draw, agent):
    drug = drugs.lookup(agent)
    base = drug.min_mg_per_day if drug else 100.0
    return round(base * draw(st.sampled_from([0.5, 0.9, 1.0, 1.0, 1.5, 2.0, 2.0, 2.0])), 3)


@st.composite
def scores(draw):
    """(outcome, baseline, final): the clinic's outcome, or scores to derive it from."""
    if draw(st.integers(0, 3)):
        return draw(st.sampled_from(OUTCOMES + ["no_response"] * 4 + ["partial_response"] * 2)), None, None
    instrument = draw(st.sampled_from(sorted(MAX_SCORE)))
    baseline = draw(st.integers(8, MAX_SCORE[instrument]))
    final = draw(st.integers(0, MAX_SCORE[instrument]))
    return None, (instrument, baseline), (instrument, final)


@st.composite
def trial_step(draw, start: date):
    kind = draw(
        st.sampled_from(
            ["antidepressant"] * 5
            + ["augmentation"] * 2
            + ["combination", "ect", "psychotherapy", "esketamine", "ketamine", "rtms", "vns", "dbs"]
        )
    )
    days = draw(st.sampled_from([10, 27, 28, 42, 56, 56, 84, 84]))
    end = start + timedelta(days=days) if draw(st.integers(0, 9)) else None  # sometimes still running
    adherence = draw(st.sampled_from([None, 60, 79, 80, 90, 90, 95, 100]))
    outcome, baseline, final = draw(scores())
    if kind == "antidepressant":
        agent = draw(st.sampled_from(ANTIDEPRESSANTS + ["hypericum"]))
        dose = draw(doses(agent))
        max_dose = draw(st.sampled_from([None, dose, round(dose * 1.5, 3)]))
        brand = agent in BRANDS and draw(st.booleans())  # an old event carrying a brand name
        return ad(
            BRANDS[agent] if brand else agent,
            dose,
            start,
            end,
            adherence=adherence,
            outcome=outcome,
            max_dose=max_dose,
            baseline=baseline,
            final=final,
            as_entered=brand,
        ), days
    if kind == "augmentation":
        agent = draw(st.sampled_from(AUGMENTERS))
        return aug(
            agent, draw(doses(agent)), start, end, adherence=adherence, outcome=outcome or "no_response"
        ), days
    if kind == "combination":
        base = draw(
            st.sampled_from(["sertraline", "escitalopram", "venlafaxine", "duloxetine", "fluoxetine"])
        )
        partner = draw(st.sampled_from(["mirtazapine", "bupropion", "vortioxetine", "nortriptyline"]))
        agents = [(base, draw(doses(base))), (partner, draw(doses(partner)))]
        max_doses = draw(st.sampled_from([None, {base: agents[0][1] * 2}, {partner: agents[1][1] * 2}]))
        return combo(
            agents,
            start,
            end,
            adherence=adherence,
            outcome=outcome,
            baseline=baseline,
            final=final,
            max_doses=max_doses,
        ), days
    sessions = draw(st.sampled_from([None, 2, 5, 6, 8, 12, 19, 20, 24]))
    if kind == "ect":
        if end is None:
            return ect(start), days
        placement = draw(st.sampled_from([None, "bilateral", "right_unilateral", "bifrontal", "unknown"]))
        return ect(start, end, sessions=sessions, outcome=outcome or "no_response", placement=placement), days
    if kind == "psychotherapy":
        end = end or start + timedelta(days=days)
        return therapy(start, end, sessions=sessions, outcome=outcome or "no_response"), days
    return course(kind, start, end, sessions=sessions, outcome=draw(st.sampled_from(OUTCOMES + [None]))), days


@st.composite
def assessment_step(draw, on: date):
    what = draw(st.integers(0, 9))
    if what == 0:
        return self_phq9(draw(st.lists(st.integers(0, 3), min_size=9, max_size=9)), on)
    if what == 1:
        return wsas(draw(st.integers(0, 40)), on)
    if what == 2:
        return hamd(draw(st.integers(0, 52)), on, risk=draw(st.sampled_from([None, "none", "flagged"])))
    if draw(st.integers(0, 3)):
        score = draw(st.integers(0, 27))
        item9 = draw(st.one_of(st.none(), st.integers(max(0, score - 24), min(3, score))))
        risk = draw(st.sampled_from([None, None, "none", "flagged", "active_intent"]))
        return phq9(score, item9, on, risk=risk)
    return madrs(
        draw(st.integers(0, 60)), on, risk=draw(st.sampled_from([None, "none", "flagged", "active_intent"]))
    )


@st.composite
def histories(draw, max_steps: int = 10, allow_new_episode: bool = True):
    onset = date(2023, 1, 1) + timedelta(days=draw(st.integers(0, 400)))
    steps: list = [
        patient(
            draw(st.sampled_from(["female", "male", "unknown"])),
            draw(st.sampled_from([1940, 1958, 1980, 2000])),
        ),
        episode(
            onset,
            draw(st.sampled_from([None, "subsyndromal", "mild", "moderate", "severe"])),
            draw(st.booleans()),
            prior=draw(st.sampled_from([None, 0, 1, 3])),
            first_onset_age=draw(st.sampled_from([None, 15, 30])),
        ),
    ]
    cursor = onset + timedelta(days=draw(st.integers(0, 30)))
    # a resistant backbone: adequate 8-week trials of distinct agents that did not work, so that
    # TRD, chronic and the higher stages are well represented
    backbone = draw(st.lists(st.sampled_from(ANTIDEPRESSANTS), max_size=5, unique=True))
    for agent in backbone:
        steps.append(ad(agent, drugs.lookup(agent).min_mg_per_day * 2, cursor, cursor + timedelta(days=56)))
        cursor += timedelta(days=60)
    for _ in range(draw(st.integers(0, max_steps))):
        what = draw(
            st.sampled_from(
                ["trial"] * 8 + ["assessment"] * 4 + ["revise", "episode"] + ["record"] * 3 + ["journal"] * 2
            )
        )
        if what == "trial":
            step, days = draw(trial_step(cursor))
            steps.append(step)
            cursor += timedelta(days=days + draw(st.integers(0, 10)))
        elif what == "assessment":
            # mostly in date order, sometimes back-dated
            steps.append(draw(assessment_step(cursor + timedelta(days=draw(st.integers(-40, 20))))))
            cursor += timedelta(days=draw(st.integers(0, 30)))
        elif what == "revise":
            change = draw(
                st.sampled_from(
                    [
                        {"diagnosis": "bipolar"},
                        {"severity": "severe"},
                        {"severity": "moderate"},
                        {"psychotic": False},
                        {"psychotic": True},
                        {"severity": "mild", "psychotic": False},
                    ]
                )
            )
            steps.append(revise(**change))
        elif what == "record":
            on = cursor + timedelta(days=draw(st.integers(-30, 10)))
            kind = draw(st.sampled_from(["comorbidity", "workup", "preference"]))
            if kind == "comorbidity":
                steps.append(
                    comorbidity(draw(st.sampled_from(COMORBIDITIES)), on, present=draw(st.booleans()))
                )
            elif kind == "workup":
                steps.append(
                    workup(
                        draw(st.sampled_from([w.value for w in WorkupCheck])),
                        draw(st.sampled_from(["normal", "abnormal"])),
                        on,
                    )
                )
            else:
                steps.append(
                    declined(draw(st.sampled_from(DECLINABLE)), on, declined=draw(st.integers(0, 3)) > 0)
                )
        elif what == "journal":
            for i in range(draw(st.integers(1, 9))):
                steps.append(
                    journal(
                        cursor + timedelta(days=i - draw(st.integers(0, 3))),
                        draw(st.integers(0, 10)),
                        draw(st.lists(st.sampled_from([x.value for x in SideEffect]), max_size=2)),
                        draw(st.lists(st.sampled_from([x.value for x in Trigger]), max_size=2)),
                    )
                )
        elif allow_new_episode and draw(st.integers(0, 3)) == 0:
            cursor += timedelta(days=60)
            steps.append(episode(cursor, draw(st.sampled_from([None, "moderate", "severe"]))))
    return steps


def triples(events) -> list[tuple[str, int, object]]:
    return [(f"ev{i}", i, p) for i, p in enumerate(events, start=1)]


def run(events) -> dict:
    return assess(fold(PATIENT, triples(events)))


# ------------------------------------------------------------------ (a) delivery order
def stored_and_loaded(projection: PatientProjection) -> PatientProjection:
    """What the service does between two events: facts and pending events go to the database as JSON."""
    return PatientProjection(
        PatientFacts.from_json(json.loads(json.dumps(projection.facts.to_json()))),
        json.loads(json.dumps(projection.pending)),
    )


@SETTINGS
@given(steps=histories(), data=st.data())
def test_a_shuffled_and_redelivered_events_give_the_in_order_assessment(steps, data):
    in_order = triples(payloads(steps))
    dupes = data.draw(st.lists(st.sampled_from(in_order), max_size=5))
    delivered = data.draw(st.permutations(in_order + dupes))
    projection = PatientProjection.new(PATIENT)
    for event_id, sequence, payload in delivered:
        # the service's own path: PatientProjection.add, with the event data as it travels (JSON)
        projection.add(sequence, event_id, payload.event_type, payload.to_data())
        if data.draw(st.booleans()):
            projection = stored_and_loaded(projection)
    assert projection.pending == {} and projection.waiting_for is None
    assert projection.facts.applied_through == len(in_order)
    assert projection.assessment() == assess(fold(PATIENT, in_order))


# ------------------------------------------------------------------ (b) urgency
@SETTINGS
@given(steps=histories())
def test_b_urgency_never_falls_on_a_non_assessment_event_as_events_arrive(steps):
    facts = PatientFacts.empty(PATIENT)
    level = "routine"
    for event_id, sequence, payload in triples(payloads(steps)):
        apply(facts, payload, event_id=event_id, sequence=sequence)
        now = assess(facts)["urgency"]
        if not isinstance(payload, AssessmentRecorded):
            assert RANK[now] >= RANK[level], f"{type(payload).__name__} lowered urgency {level} -> {now}"
        level = now


@SETTINGS
@given(steps=histories(), extra=st.data())
def test_b_inserting_a_non_assessment_event_anywhere_never_lowers_urgency(steps, extra):
    events = payloads(steps)
    before = run(events)["urgency"]
    # an unrelated event: a trial, a revision, a new episode or a re-registration
    kind = extra.draw(st.sampled_from(["trial", "revise", "episode", "registered"]))
    current = [e for e in events if isinstance(e, EpisodeOpened)][-1].episode_id
    if kind == "trial":
        step, _ = extra.draw(trial_step(date(2024, 6, 1)))
        new = [
            p.model_copy(
                update={
                    "trial_id": "t-extra",
                    **({"episode_id": current} if hasattr(p, "episode_id") else {}),
                }
            )
            for p in payloads([episode("2024-01-01"), step])
            if not isinstance(p, (PatientRegistered, EpisodeOpened))
        ]
    elif kind == "revise":
        new = [EpisodeRevised(patient_id=PATIENT, episode_id=current, severity=Severity.SEVERE)]
    elif kind == "episode":
        new = [EpisodeOpened(patient_id=PATIENT, episode_id="ep-extra", onset_date=date(2025, 6, 1))]
    else:
        new = [
            PatientRegistered(
                patient_id=PATIENT,
                clinic_id="c1",
                external_id="x1",
                birth_year=1980,
                sex=Sex.FEMALE,
                timezone="UTC",
            )
        ]
    at = extra.draw(st.integers(1, len(events)))  # after the registration
    later = events[:at] + new + events[at:]
    assert RANK[run(later)["urgency"]] >= RANK[before]


# ------------------------------------------------------------------ (c) never again
def _derived(t: Trial) -> str | None:
    """CLINICAL.md 1, worked independently of the engine."""
    if t.outcome:
        return t.outcome
    if t.final is None:
        return None
    instrument, final = t.final
    if final <= REMISSION_AT_OR_BELOW[instrument]:
        return "remission"
    if t.baseline is None or t.baseline[0] != instrument or t.baseline[1] == 0:
        return None
    reduction = (t.baseline[1] - final) / t.baseline[1]
    return "response" if reduction >= 0.5 else "partial_response" if reduction >= 0.25 else "no_response"


def clearly_failed_adequately(t: Trial) -> bool:
    """Adequate under every reading of CLINICAL.md 1 (2026.12), completed, and a failure."""
    if t.end is None or _derived(t) not in {"partial_response", "no_response"}:
        return False
    days = (t.end - t.start).days
    sessions = t.sessions or 0
    if t.kind == "ect":
        return sessions >= 6
    if t.kind == "psychotherapy":
        return sessions >= 8
    if t.kind == "esketamine":
        return sessions >= 8 and days >= 21
    if t.kind == "ketamine":
        return sessions >= 6
    if t.kind == "rtms":
        return sessions >= 20
    if t.kind in {"vns", "dbs"}:
        return True
    if days < 28 or t.adherence is None or t.adherence < 80:
        return False
    for agent, dose in t.agents:
        drug = drugs.lookup(agent)
        if drug is None or dose is None or dose < drug.min_mg_per_day:
            return False
        if t.max_dose is not None and t.max_dose < drug.min_mg_per_day:
            return False
    return True


def current_episode_trials(steps) -> list[Trial]:
    out: list[Trial] = []
    for s in steps:
        if isinstance(s, Episode):
            out = []
        elif isinstance(s, Trial):
            out.append(s)
    return out


PSYCHOLOGICAL_THERAPIES = {"cbt", "ipt", "behavioural activation", "istdp", "group dbt"}  # CLINICAL.md 6


def options(a: dict, strategy: str | None = None, *, but: set[str] = frozenset()) -> set[str]:
    return {
        o.lower()
        for r in a["recommendations"]
        if (strategy is None or r["strategy"] == strategy) and r["strategy"] not in but
        for o in r["options"]
    }


# optimise_dose may name a current agent (CLINICAL 6, the one exception); continue and review name
# the running trials themselves, not a new strategy.
NOT_NEW = {"optimise_dose", "continue_current_trial", "review_current_trial"}
MODALITY_OPTIONS = {  # CLINICAL 6 modality -> (strategy, option) that would recommend it again
    "ect": ("ect", "ect"),
    "rtms": ("rtms", "rtms"),
    "esketamine": ("esketamine_or_ketamine", "esketamine with an oral ssri/snri"),
    "ketamine": ("esketamine_or_ketamine", "iv ketamine (off-label)"),
    "vns": ("specialised_centre", "vns"),
    "dbs": ("specialised_centre", "dbs"),
}


def option_words(a: dict) -> set[str]:
    return {
        w
        for r in a["recommendations"]
        if r["strategy"] not in NOT_NEW
        for o in r["options"]
        if "/day recorded" not in o  # optimise_dose's option inside optimise_to_remission (CLINICAL 6)
        for w in re.split(r"[\s/():,+]+", o.lower())
        if w
    }


def assert_never_offered(a: dict, modality_or_agent: str, why: str) -> None:
    name = modality_or_agent
    if name in MODALITY_OPTIONS:
        strategy, option = MODALITY_OPTIONS[name]
        assert option not in options(a, strategy), f"{why}: {name} recommended"
        assert name not in a["referral"]["capabilities"], f"{why}: {name} named as a capability"
    elif name == "psychotherapy":
        offered = options(a) & PSYCHOLOGICAL_THERAPIES
        assert not offered, f"{why}: psychotherapy, yet {sorted(offered)} offered"
        assert "psychotherapy" not in a["referral"]["capabilities"]
    else:
        generic = drugs.lookup(name).name
        assert generic not in option_words(a), (
            f"{why}: {generic} offered: {[(r['strategy'], r['options']) for r in a['recommendations']]}"
        )


@SETTINGS
@given(steps=histories(max_steps=14))
def test_c_nothing_that_failed_adequately_is_recommended_again(steps):
    a = run(payloads(steps))
    failed = [t for t in current_episode_trials(steps) if clearly_failed_adequately(t)]
    everywhere_but_raise = options(a, but=NOT_NEW)
    for t in failed:
        if t.kind in MODALITY_OPTIONS or t.kind == "psychotherapy":
            assert_never_offered(a, t.kind, "failed adequately")
        for agent, _ in t.agents:
            if t.kind in {"antidepressant", "augmentation", "combination"} and drugs.lookup(agent):
                assert_never_offered(a, agent, "failed adequately in any role")  # CLINICAL 6
        agents = [drugs.normalise_agent(agent) for agent, _ in t.agents]
        if t.kind == "augmentation":
            assert agents[0] not in options(a, "augment"), f"failed augmenter {agents[0]} offered again"
            assert agents[0] not in everywhere_but_raise
        if t.kind == "ect":
            assert "ect" not in options(a), "failed adequate ECT offered again"
        if t.kind == "antidepressant" and agents[0] == "vortioxetine":
            assert "vortioxetine" not in everywhere_but_raise, "failed vortioxetine offered again"
        if t.kind == "antidepressant" and drugs.lookup(agents[0]):
            assert drugs.lookup(agents[0]).drug_class.lower() not in options(a, "switch"), (
                "switch to a failed class"
            )
        if t.kind in {"combination", "augmentation"}:
            for partner in ("mirtazapine", "bupropion"):
                if partner in agents:  # nor a strategy naming it (CLINICAL 6)
                    assert not any(partner in o for o in options(a, "combine")), (
                        f"failed {t.kind} with {partner}, yet a combination with it offered"
                    )
    assert "buspirone" not in everywhere_but_raise
    assert any(r["strategy"] == "lifestyle" for r in a["recommendations"])


# ------------------------------------------------------------------ (d) persistence
def roundtrip(facts: PatientFacts) -> PatientFacts:
    return PatientFacts.from_json(json.loads(json.dumps(facts.to_json())))


@SETTINGS
@given(steps=histories(), data=st.data())
def test_d_facts_survive_the_json_round_trip(steps, data):
    events = triples(payloads(steps))
    facts = fold(PATIENT, events)
    assert assess(roundtrip(facts)) == assess(facts)
    assert roundtrip(facts).to_json() == facts.to_json()
    # the service stores facts between events and resumes from them
    cut = data.draw(st.integers(0, len(events)))
    resumed = roundtrip(fold(PATIENT, events[:cut]))
    for event_id, sequence, payload in events[cut:]:
        resumed = roundtrip(apply(resumed, payload, event_id=event_id, sequence=sequence))
    assert assess(resumed) == assess(facts)


# ------------------------------------------------------------------ (e) flags carry no provenance
@SETTINGS
@given(steps=histories())
def test_e_flags_name_no_event_and_no_date(steps):
    for flag in run(payloads(steps))["flags"]:
        # the stale rating's own date and age are the point of that flag (CLINICAL 5)
        text = json.dumps({k: v for k, v in flag.items() if k not in {"rating_on", "age_days"}})
        assert not re.search(r"\bev\d+\b|\d{4}-\d{2}-\d{2}", text), f"provenance in a flag: {text}"


# ------------------------------------------------------------------ (f) trd-rules 2026.12
def intolerant(t: Trial) -> bool:
    return t.end is not None and _derived(t) == "intolerance"


def declined_now(steps) -> set[str]:
    """The current episode's latest preference per strategy (CLINICAL 6), worked independently."""
    latest: dict[str, tuple] = {}
    for i, s in enumerate(steps):
        if isinstance(s, Episode):
            latest = {}
        elif isinstance(s, Pref):
            key = drugs.lookup(s.strategy).name if drugs.lookup(s.strategy) else s.strategy
            if key not in latest or (s.on, i) > latest[key][:2]:
                latest[key] = (s.on, i, s.declined)
    return {k for k, (_, _, declined_) in latest.items() if declined_}


@SETTINGS
@given(steps=histories(max_steps=14))
def test_f_nothing_stopped_for_intolerance_or_declined_is_recommended(steps):
    a = run(payloads(steps))
    for t in current_episode_trials(steps):
        if intolerant(t) and t.kind in {"antidepressant", "augmentation", "combination"}:
            for agent, _ in t.agents:
                if drugs.lookup(agent):
                    assert_never_offered(a, agent, "stopped for intolerance")
    strategies = {r["strategy"] for r in a["recommendations"]}
    # a class names its agents (NDRI is bupropion alone): a switch class must keep one agent that is
    # neither in tried nor declined (CLINICAL 6: nor a strategy naming it)
    gone = {t["option"] for t in a["tried"]} | {x["strategy"] for x in a["declined"]}
    for cls in options(a, "switch"):
        members = {n for n, d in ALL.items() if d.drug_class.lower() == cls}
        assert not members or members - gone, (
            f"switch to {cls}, yet all of {sorted(members)} are tried or declined"
        )
    for name in declined_now(steps):
        if name == "augmentation":
            assert "augment" not in strategies
        elif name == "combination":
            assert "combine" not in strategies
        else:
            assert_never_offered(a, name, "declined")
        assert name in {x["strategy"] for x in a["declined"]}


@SETTINGS
@given(steps=histories(max_steps=14))
def test_f_every_urgent_or_emergency_assessment_advises_referral(steps):
    a = run(payloads(steps))
    if a["urgency"] in {"urgent", "emergency"}:
        assert a["referral"]["advised"] and any("suicidality" in r for r in a["referral"]["reasons"])
        assert "mood_disorder_clinic" in a["referral"]["capabilities"]


def rating_level(step) -> int | None:
    """CLINICAL 5, worked independently: the urgency one assessment gives, None if no rating."""
    levels = []
    if step.instrument == "PHQ-9":
        if step.item9 is not None:
            levels.append(2 if step.item9 == 3 else 1 if step.item9 >= 1 else 0)
        elif step.score >= 25:
            levels.append(2 if step.score == 27 else 1)
    if step.risk is not None:
        levels.append({"none": 0, "flagged": 1, "active_intent": 2}[step.risk])
    return max(levels) if levels else None


@st.composite
def same_day_ratings(draw):
    day = date(2024, 6, 1)
    # at least one clinician rating on the day, so that the day is the latest clinician date and an
    # earlier clinician rating cannot stand as a floor under the day's self-reports (CLINICAL 5)
    out = [
        madrs(draw(st.integers(0, 60)), day, risk=draw(st.sampled_from(["none", "flagged", "active_intent"])))
    ]
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["phq9", "self", "madrs"]))
        if kind == "phq9":
            score = draw(st.integers(0, 27))
            item9 = draw(st.one_of(st.none(), st.integers(max(0, score - 24), min(3, score))))
            out.append(
                phq9(
                    score, item9, day, risk=draw(st.sampled_from([None, "none", "flagged", "active_intent"]))
                )
            )
        elif kind == "self":
            out.append(self_phq9(draw(st.lists(st.integers(0, 3), min_size=9, max_size=9)), day))
        else:
            out.append(
                madrs(
                    draw(st.integers(0, 60)),
                    day,
                    risk=draw(st.sampled_from(["none", "flagged", "active_intent"])),
                )
            )
    return out


@SETTINGS
@given(steps=histories(max_steps=8, allow_new_episode=False), ratings=same_day_ratings(), data=st.data())
def test_f_same_day_ratings_give_the_highest_urgency_whatever_the_order(steps, ratings, data):
    # earlier ratings only (before the day), then the day's ratings in any order
    before = [s for s in steps if not (hasattr(s, "instrument") and s.on >= date(2024, 6, 1))]
    levels = [lvl for r in ratings if (lvl := rating_level(r)) is not None]
    order = data.draw(st.permutations(ratings))
    a = run(payloads(before + list(order)))
    b = run(payloads(before + list(reversed(order))))
    assert a["urgency"] == b["urgency"]
    if levels:
        assert RANK[a["urgency"]] == max(levels), (a["urgency"], a["urgency_reason"])
