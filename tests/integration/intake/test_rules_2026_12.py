"""intake under trd-rules 2026.12 (CLINICAL.md 1, 2, 6; DESIGN.md 6, the 2026.12 additions):
the new records and fields, brand names and units resolved as data, and every new validation
a problem naming the field with nothing stored and nothing published."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from care_shared.auth import clinic_for_key, record_patient_clinic
from care_shared.eventstore import NewEvent, events, outbox
from care_shared.testing.polling import eventually
from intake.records import patient_stream
from tests.integration.intake.conftest import Intake
from tests.integration.intake.test_api import assert_problem

ONSET = "2026-01-05"  # conftest's episode onset; the clock is 2026-06-15


async def _snapshot(intake: Intake, pid: str) -> tuple[int, int, list[dict]]:
    async with intake.runtime.db.read() as s:
        total = (await s.execute(select(func.count()).select_from(events))).scalar_one()
        top = (await s.execute(select(func.max(events.c.position)))).scalar_one()
    history = (await intake.client.get(f"/v1/patients/{pid}/events", headers=intake.auth())).json()
    return total, top, history


async def _exactly(intake: Intake, pid: str, n: int):
    published = await intake.published_for(pid)
    return published if len(published) == n else None


async def assert_nothing_stored_or_published(
    intake: Intake, pid: str, before: tuple[int, int, list[dict]]
) -> None:
    """The patient's history, the event store and the outbox are as before, and the bus holds
    only the patient's earlier events."""
    assert await _snapshot(intake, pid) == before
    _, top, history = before
    async with intake.runtime.db.read() as s:
        newer = (
            await s.execute(select(func.count()).select_from(outbox).where(outbox.c.position > top))
        ).scalar_one()
    assert newer == 0
    await eventually(lambda: _exactly(intake, pid, len(history)), what="only the earlier events on the bus")


async def patient_with_episode(intake: Intake, **patient) -> str:
    pid = await intake.new_patient(**patient)
    await intake.new_episode(pid)
    return pid


async def last_event(intake: Intake, pid: str) -> dict:
    return (await intake.client.get(f"/v1/patients/{pid}/events", headers=intake.auth())).json()[-1]


# --------------------------------------------------------------------------- refusals

SERTRALINE = {"kind": "antidepressant", "agent": "sertraline", "started_on": "2026-02-01"}
COMBINATION = {"kind": "combination", "started_on": "2026-02-01"}
PHQ9 = {"instrument": "PHQ-9", "taken_on": "2026-03-01"}
ITEMS = [1, 2, 1, 2, 1, 0, 1, 2, 1]  # sum 11, item 9 = 1


@pytest.mark.parametrize(
    ("path", "body", "field", "loinc"),
    [
        # episodes: prior_episodes, age_at_first_onset (patient born 1980, onset 2026: 46)
        ("episodes", {"onset_date": ONSET, "prior_episodes": -1}, "prior_episodes", None),
        ("episodes", {"onset_date": ONSET, "prior_episodes": 101}, "prior_episodes", None),
        ("episodes", {"onset_date": ONSET, "age_at_first_onset": 121}, "age_at_first_onset", None),
        ("episodes", {"onset_date": ONSET, "age_at_first_onset": 47}, "age_at_first_onset", None),
        # dose plausibility (CLINICAL.md 2): above 3 x max or below min / 20, in mg after the unit
        ("trials", {**SERTRALINE, "dose_mg_per_day": 601}, "dose_mg_per_day", None),
        ("trials", {**SERTRALINE, "dose_mg_per_day": 2.4}, "dose_mg_per_day", None),
        ("trials", {**SERTRALINE, "dose_mg_per_day": 100, "unit": "microgram"}, "dose_mg_per_day", None),
        (
            "trials",
            {
                "kind": "augmentation",
                "agent": "liothyronine",
                "dose_mg_per_day": 25,
                "unit": "mg",
                "started_on": "2026-02-01",
            },
            "dose_mg_per_day",
            None,
        ),
        (
            "trials",
            {"kind": "augmentation", "agent": "T3", "dose_mg_per_day": 0.025, "started_on": "2026-02-01"},
            "dose_mg_per_day",
            None,
        ),
        (
            "trials",
            {
                "kind": "antidepressant",
                "agent": "Zoloft",
                "dose_mg_per_day": 5000,
                "started_on": "2026-02-01",
            },
            "dose_mg_per_day",
            None,
        ),
        (
            "trials",
            {
                **COMBINATION,
                "agents": [
                    {"agent": "sertraline", "dose_mg_per_day": 100},
                    {"agent": "Remeron", "dose_mg_per_day": 900},
                ],
            },
            "agents[1].dose_mg_per_day",
            None,
        ),
        (
            "trials",
            {
                **COMBINATION,
                "agents": [
                    {"agent": "Effexor XR", "dose_mg_per_day": 5},
                    {"agent": "mirtazapine", "dose_mg_per_day": 30},
                ],
            },
            "agents[0].dose_mg_per_day",
            None,
        ),
        (
            "trials",
            {"kind": "esketamine", "agent": "Spravato", "dose_mg_per_day": 253, "started_on": "2026-02-01"},
            "dose_mg_per_day",
            None,
        ),
        (
            "trials",
            {
                "kind": "antidepressant",
                "agent": "Zuranolone",
                "dose_mg_per_day": 5e-324,
                "unit": "microgram",
                "started_on": "2026-02-01",
            },
            "dose_mg_per_day",
            None,
        ),
        ("trials", {**SERTRALINE, "dose_mg_per_day": 100, "unit": "gram"}, "unit", None),
        (
            "trials",
            {**COMBINATION, "agents": [{"agent": "sertraline", "unit": "g"}, {"agent": "mirtazapine"}]},
            "agents.0.unit",
            None,
        ),
        (
            "trials",
            {**COMBINATION, "agents": [{"agent": "sertraline", "entered_as": "x"}, {"agent": "mirtazapine"}]},
            "agents.0.entered_as",
            None,
        ),
        (
            "trials",
            {**COMBINATION, "agents": [{"agent": "Zoloft"}, {"agent": "sertraline hydrochloride"}]},
            "agents[1].agent",
            None,
        ),
        # the rapid-acting agents are trials of their own kind (CLINICAL.md 2)
        (
            "trials",
            {"kind": "antidepressant", "agent": "Spravato", "started_on": "2026-02-01"},
            "agent",
            None,
        ),
        ("trials", {"kind": "ketamine", "agent": "sertraline", "started_on": "2026-02-01"}, "agent", None),
        # WSAS is an assessment, never a trial's baseline (CLINICAL.md 7)
        (
            "trials",
            {**SERTRALINE, "baseline": {"instrument": "WSAS", "score": 20}},
            "baseline.instrument",
            None,
        ),
        # PHQ-9 items (CLINICAL.md 1): missing, out of range, disagreeing with a sent total or item9
        ("assessments", {**PHQ9, "items": ITEMS[:8]}, "items[8]", "44260-8"),
        ("assessments", {**PHQ9, "items": [1, 2, 1, None, 1, 0, 1, 2, 1]}, "items[3]", "44254-1"),
        ("assessments", {**PHQ9, "items": [4, 2, 1, 2, 1, 0, 1, 2, 1]}, "items[0]", "44250-9"),
        ("assessments", {**PHQ9, "items": [1, 2, 1, 2, 1, 0, 1, 2, -1]}, "items[8]", "44260-8"),
        ("assessments", {**PHQ9, "items": ITEMS, "score": 12}, "score", "44261-6"),
        ("assessments", {**PHQ9, "items": ITEMS, "item9": 0}, "item9", "44260-8"),
        ("assessments", {**PHQ9, "items": [*ITEMS, 1]}, "items", None),
        ("assessments", {**PHQ9, "items": ITEMS, "instrument": "MADRS"}, "items", None),
        ("assessments", {**PHQ9, "items": ITEMS, "source": "patient"}, "source", None),
        ("assessments", PHQ9, "score", None),
        # a total and item 9 that cannot both hold: the other eight sum to at most 24 (CLINICAL.md 5)
        ("assessments", {**PHQ9, "score": 27, "item9": 0}, "item9", None),
        ("assessments", {**PHQ9, "score": 25, "item9": 0}, "item9", None),
        ("assessments", {"instrument": "WSAS", "score": 41, "taken_on": "2026-03-01"}, "score", None),
        (
            "assessments",
            {"instrument": "WSAS", "score": 20, "item9": 1, "taken_on": "2026-03-01"},
            "item9",
            None,
        ),
        # comorbidities (CLINICAL.md 1)
        (
            "comorbidities",
            {"condition": "depression", "present": True, "recorded_on": "2026-03-01"},
            "condition",
            None,
        ),
        ("comorbidities", {"condition": "chronic_pain", "recorded_on": "2026-03-01"}, "present", None),
        (
            "comorbidities",
            {"condition": "chronic_pain", "present": True, "recorded_on": "2026-06-16"},
            "recorded_on",
            None,
        ),
        (
            "comorbidities",
            {"condition": "chronic_pain", "present": True, "recorded_on": "2026-03-01", "note": "x"},
            "note",
            None,
        ),
        # workup (CLINICAL.md 6): coded, no free text
        ("workup", {"check": "brain_mri", "result": "normal", "done_on": "2026-03-01"}, "check", None),
        (
            "workup",
            {"check": "thyroid_function", "result": "positive", "done_on": "2026-03-01"},
            "result",
            None,
        ),
        (
            "workup",
            {"check": "thyroid_function", "result": "normal", "done_on": "2026-06-16"},
            "done_on",
            None,
        ),
        (
            "workup",
            {"check": "thyroid_function", "result": "abnormal", "done_on": "2026-03-01", "comment": "TSH 9"},
            "comment",
            None,
        ),
        # preferences (CLINICAL.md 6): a modality, augmentation, combination or a section 2 agent
        (
            "preferences",
            {"strategy": "homeopathy", "declined": True, "recorded_on": "2026-03-01"},
            "strategy",
            None,
        ),
        (
            "preferences",
            {"strategy": "Zuranolone", "declined": True, "recorded_on": "2026-03-01"},
            "strategy",
            None,
        ),
        ("preferences", {"strategy": "", "declined": True, "recorded_on": "2026-03-01"}, "strategy", None),
        ("preferences", {"strategy": "ect", "recorded_on": "2026-03-01"}, "declined", None),
        (
            "preferences",
            {"strategy": "ect", "declined": True, "recorded_on": "2026-06-16"},
            "recorded_on",
            None,
        ),
        # journal (CLINICAL.md 6)
        ("journal", {"entry_on": "2026-03-01", "mood": 11}, "mood", None),
        ("journal", {"entry_on": "2026-03-01", "mood": -1}, "mood", None),
        (
            "journal",
            {"entry_on": "2026-03-01", "mood": 5, "side_effects": ["itching"]},
            "side_effects.0",
            None,
        ),
        ("journal", {"entry_on": "2026-03-01", "mood": 5, "triggers": ["nausea"]}, "triggers.0", None),
        (
            "journal",
            {"entry_on": "2026-03-01", "mood": 5, "triggers": ["poor_sleep", "weather"]},
            "triggers.1",
            None,
        ),
        ("journal", {"entry_on": "2026-06-16", "mood": 5}, "entry_on", None),
        ("journal", {"mood": 5}, "entry_on", None),
        ("journal", {"entry_on": "2026-03-01", "mood": 5, "text": "a bad day"}, "text", None),
    ],
)
async def test_each_new_rule_refuses_naming_the_field_and_stores_and_publishes_nothing(
    intake: Intake, path: str, body: dict, field: str, loinc: str | None
) -> None:
    pid = await patient_with_episode(intake)
    before = await _snapshot(intake, pid)
    r = await intake.post(f"/v1/patients/{pid}/{path}", body)
    problem = assert_problem(r, 422, field)
    if loinc:
        assert problem["loinc"] == loinc and loinc in problem["detail"]
    await assert_nothing_stored_or_published(intake, pid, before)


@pytest.mark.parametrize(
    ("body", "field", "loinc"),
    [
        ({"ended_on": "2025-12-20"}, "ended_on", None),  # before the episode's onset (CLINICAL.md 1)
        ({"ended_on": "2026-03-15", "max_dose_mg_per_day": 601}, "max_dose_mg_per_day", None),
        (
            {"ended_on": "2026-03-15", "max_dose_mg_per_day": 200, "unit": "microgram"},
            "max_dose_mg_per_day",
            None,
        ),
        (
            {"ended_on": "2026-03-15", "max_doses": [{"agent": "sertraline", "dose_mg_per_day": 700}]},
            "max_doses[0].dose_mg_per_day",
            None,
        ),
        (
            {"ended_on": "2026-03-15", "max_doses": [{"agent": "sertraline"}]},
            "max_doses[0].dose_mg_per_day",
            None,
        ),
        (
            {"ended_on": "2026-03-15", "max_doses": [{"agent": "Prozac", "dose_mg_per_day": 40}]},
            "max_doses[0].agent",
            None,
        ),
        (
            {
                "ended_on": "2026-03-15",
                "max_dose_mg_per_day": 150,
                "max_doses": [{"agent": "Zoloft", "dose_mg_per_day": 150}],
            },
            "max_dose_mg_per_day",
            None,
        ),
        ({"ended_on": "2026-03-15", "placement": "bilateral"}, "placement", None),  # not an ECT trial
        ({"ended_on": "2026-03-15", "final": {"instrument": "WSAS", "score": 10}}, "final.instrument", None),
    ],
)
async def test_bad_completions_under_the_new_rules(
    intake: Intake, body: dict, field: str, loinc: str | None
) -> None:
    pid = await patient_with_episode(intake)
    # Started before the onset (2026-01-05): it belongs to the episode only if it ends on or after it.
    tid = await intake.new_trial(pid, agent="Zoloft", started_on="2025-12-01")
    before = await _snapshot(intake, pid)
    assert_problem(await intake.post(f"/v1/patients/{pid}/trials/{tid}/completion", body), 422, field)
    await assert_nothing_stored_or_published(intake, pid, before)


async def test_combination_and_ect_completion_refusals(intake: Intake) -> None:
    pid = await patient_with_episode(intake)
    combo = await intake.new_trial(
        pid,
        kind="combination",
        agent=None,
        dose_mg_per_day=None,
        agents=[
            {"agent": "sertraline", "dose_mg_per_day": 100},
            {"agent": "mirtazapine", "dose_mg_per_day": 30},
        ],
    )
    ect = await intake.new_trial(pid, kind="ect", agent=None, dose_mg_per_day=None)
    before = await _snapshot(intake, pid)
    for tid, body, field in [
        (combo, {"ended_on": "2026-03-15", "max_dose_mg_per_day": 150}, "max_dose_mg_per_day"),
        (
            combo,
            {
                "ended_on": "2026-03-15",
                "max_doses": [
                    {"agent": "Zoloft", "dose_mg_per_day": 150},
                    {"agent": "sertraline", "dose_mg_per_day": 150},
                ],
            },
            "max_doses[1].agent",
        ),
        (ect, {"ended_on": "2026-03-15", "placement": "temporal"}, "placement"),
        (ect, {"ended_on": "2026-03-15", "max_dose_mg_per_day": 100}, "max_dose_mg_per_day"),
    ]:
        assert_problem(await intake.post(f"/v1/patients/{pid}/trials/{tid}/completion", body), 422, field)
    await assert_nothing_stored_or_published(intake, pid, before)


@pytest.mark.parametrize(
    ("country", "field"),
    [
        ("XX", "country"),
        ("UK", "country"),
        ("gb", "country"),
        ("GBR", "country"),
        ("", "country"),
        (44, "country"),
    ],
)
async def test_country_must_be_iso_3166_1_alpha_2(intake: Intake, country: object, field: str) -> None:
    async with intake.runtime.db.read() as s:
        before = (await s.execute(select(func.count()).select_from(events))).scalar_one()
    body = {
        "external_id": "mrn-country",
        "birth_year": 1980,
        "sex": "female",
        "timezone": "Europe/London",
        "country": country,
    }
    problem = assert_problem(await intake.post("/v1/patients", body), 422, field)
    if country == "UK":
        assert "GB" in problem["detail"]
    assert await intake.stored_counts() == before


# --------------------------------------------------------------------------- accepted


@pytest.mark.parametrize(
    ("kind", "entered", "generic"),
    [
        ("antidepressant", "Zoloft", "sertraline"),
        ("antidepressant", "Prozac", "fluoxetine"),
        ("antidepressant", "Effexor XR", "venlafaxine"),
        ("antidepressant", "sertraline hydrochloride", "sertraline"),
        ("augmentation", "Lithium carbonate", "lithium"),
        ("augmentation", "T3", "liothyronine"),
    ],
)
async def test_brand_names_release_forms_and_salts_resolve_to_the_generic(
    intake: Intake, kind: str, entered: str, generic: str
) -> None:
    pid = await patient_with_episode(intake)
    r = await intake.post(
        f"/v1/patients/{pid}/trials", {"kind": kind, "agent": entered, "started_on": "2026-02-01"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["agents"] == [{"agent": generic, "entered_as": entered}]
    assert r.json()["unknown_agents"] == [] and r.json()["flags"] == []
    stored = await last_event(intake, pid)
    assert stored["type"] == "care.intake.trial-started.v2"
    assert (
        stored["data"]["agents"][0]["agent"] == generic
        and stored["data"]["agents"][0]["entered_as"] == entered
    )
    published = await eventually(lambda: _exactly(intake, pid, 3), what="the trial on the bus")
    assert published[-1]["data"]["agents"][0]["agent"] == generic


@pytest.mark.parametrize(
    ("agent", "dose", "unit", "mg", "stored_unit"),
    [
        ("liothyronine", 0.025, "mg", 0.025, "mg"),
        ("liothyronine", 25, "microgram", 0.025, "microgram"),
        ("Cytomel", 25, None, 0.025, "microgram"),  # no unit: the table unit (CLINICAL.md 2)
        ("T3", 50, None, 0.05, "microgram"),
        ("T3", 12.5, None, 0.0125, "microgram"),
        ("T3", 0.15, "mg", 0.15, "mg"),  # 3 x the maximum: still plausible
        ("T3", 1.25, "microgram", 0.00125, "microgram"),  # the minimum / 20: still plausible
        ("sertraline", 100, None, 100, "mg"),
        ("sertraline", 100_000, "microgram", 100, "microgram"),
        ("sertraline", 600, "mg", 600, "mg"),
        ("Abilify", 2.5, None, 2.5, "mg"),
        ("Zuranolone", 50_000, None, 50_000, "mg"),  # unknown agents are not checked
    ],
)
async def test_doses_are_converted_exactly_to_mg(
    intake: Intake, agent: str, dose: float, unit: str | None, mg: float, stored_unit: str
) -> None:
    pid = await patient_with_episode(intake)
    kind = "augmentation" if agent in {"liothyronine", "Cytomel", "T3", "Abilify"} else "antidepressant"
    body = {
        "kind": kind,
        "agent": agent,
        "dose_mg_per_day": dose,
        "started_on": "2026-02-01",
        **({"unit": unit} if unit else {}),
    }
    r = await intake.post(f"/v1/patients/{pid}/trials", body)
    assert r.status_code == 201, r.text
    [stored] = (await last_event(intake, pid))["data"]["agents"]
    assert stored["dose_mg_per_day"] == mg and stored["unit"] == stored_unit


async def test_a_completion_records_each_agents_maximum_in_mg(intake: Intake) -> None:
    pid = await patient_with_episode(intake)
    t3 = await intake.new_trial(pid, kind="augmentation", agent="Cytomel", dose_mg_per_day=25)
    r = await intake.post(
        f"/v1/patients/{pid}/trials/{t3}/completion",
        {"ended_on": "2026-03-15", "max_dose_mg_per_day": 50, "outcome": "no_response"},
    )
    assert r.status_code == 201, r.text
    data = (await last_event(intake, pid))["data"]
    assert data["max_dose_mg_per_day"] == 0.05
    assert data["max_doses"] == [{"agent": "liothyronine", "dose_mg_per_day": 0.05, "unit": "microgram"}]

    combo = await intake.new_trial(
        pid,
        kind="combination",
        agent=None,
        dose_mg_per_day=None,
        agents=[{"agent": "Zoloft", "dose_mg_per_day": 100}, {"agent": "Remeron", "dose_mg_per_day": 15}],
    )
    body = {
        "ended_on": "2026-03-15",
        "max_doses": [
            {"agent": "mirtazapine", "dose_mg_per_day": 45},
            {"agent": "Lustral", "dose_mg_per_day": 200000, "unit": "microgram"},
        ],
    }
    r = await intake.post(f"/v1/patients/{pid}/trials/{combo}/completion", body)
    assert r.status_code == 201, r.text
    data = (await last_event(intake, pid))["data"]
    assert data.get("max_dose_mg_per_day") is None  # a combination's maxima are per agent
    assert [
        (d["agent"], d["dose_mg_per_day"], d["unit"], d.get("entered_as")) for d in data["max_doses"]
    ] == [
        ("mirtazapine", 45, "mg", "mirtazapine"),
        ("sertraline", 200, "microgram", "Lustral"),
    ]

    single = await intake.new_trial(pid, agent="Effexor XR", dose_mg_per_day=150)
    r = await intake.post(
        f"/v1/patients/{pid}/trials/{single}/completion",
        {"ended_on": "2026-03-15", "max_doses": [{"agent": "venlafaxine", "dose_mg_per_day": 225}]},
    )
    assert r.status_code == 201, r.text
    data = (await last_event(intake, pid))["data"]
    assert data["max_dose_mg_per_day"] == 225 and data["max_doses"][0]["agent"] == "venlafaxine"


async def test_a_trial_started_before_onset_that_ends_after_it_belongs_to_the_episode(intake: Intake) -> None:
    pid = await patient_with_episode(intake)
    tid = await intake.new_trial(pid, started_on="2025-12-01")
    r = await intake.post(f"/v1/patients/{pid}/trials/{tid}/completion", {"ended_on": ONSET})
    assert r.status_code == 201, r.text


async def test_an_ect_completion_carries_its_placement(intake: Intake) -> None:
    pid = await patient_with_episode(intake)
    tid = await intake.new_trial(pid, kind="ect", agent=None, dose_mg_per_day=None)
    r = await intake.post(
        f"/v1/patients/{pid}/trials/{tid}/completion",
        {"ended_on": "2026-03-15", "sessions": 8, "placement": "right_unilateral", "outcome": "no_response"},
    )
    assert r.status_code == 201, r.text
    assert (await last_event(intake, pid))["data"]["placement"] == "right_unilateral"
    patient = (await intake.client.get(f"/v1/patients/{pid}", headers=intake.auth())).json()
    assert patient["trials"][0]["placement"] == "right_unilateral"


async def test_an_esketamine_trial_may_name_its_agent(intake: Intake) -> None:
    pid = await patient_with_episode(intake)
    r = await intake.post(
        f"/v1/patients/{pid}/trials",
        {"kind": "esketamine", "agent": "Spravato", "dose_mg_per_day": 84, "started_on": "2026-02-01"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["agents"][0]["agent"] == "esketamine" and r.json()["flags"] == []


async def test_a_phq9_sent_as_items_derives_total_and_item9(intake: Intake) -> None:
    pid = await patient_with_episode(intake)
    r = await intake.post(f"/v1/patients/{pid}/assessments", {**PHQ9, "items": ITEMS})
    assert r.status_code == 201, r.text
    data = (await last_event(intake, pid))["data"]
    assert (data["score"], data["item9"], data["items"], data["source"]) == (11, 1, ITEMS, "clinician")
    # A total and item 9 that agree are accepted too.
    items = [3, 3, 3, 3, 3, 3, 3, 3, 3]
    r = await intake.post(
        f"/v1/patients/{pid}/assessments", {**PHQ9, "items": items, "score": 27, "item9": 3}
    )
    assert r.status_code == 201, r.text
    assert (r.json()["score"], r.json()["item9"]) == (27, 3)
    # Without items, a total as before; source is the clinician's over REST.
    r = await intake.post(f"/v1/patients/{pid}/assessments", {**PHQ9, "score": 9})
    assert r.status_code == 201 and r.json().get("items") is None and r.json()["source"] == "clinician"


async def test_wsas_is_an_assessment(intake: Intake) -> None:
    pid = await patient_with_episode(intake)
    r = await intake.post(
        f"/v1/patients/{pid}/assessments", {"instrument": "WSAS", "score": 24, "taken_on": "2026-03-01"}
    )
    assert r.status_code == 201, r.text
    assert (await last_event(intake, pid))["data"]["instrument"] == "WSAS"


async def test_country_and_episode_history_are_recorded(intake: Intake) -> None:
    pid = await intake.new_patient(country="IE")
    await intake.new_episode(pid, prior_episodes=2, age_at_first_onset=16)
    history = (await intake.client.get(f"/v1/patients/{pid}/events", headers=intake.auth())).json()
    assert history[0]["data"]["country"] == "IE"
    assert (history[1]["data"]["prior_episodes"], history[1]["data"]["age_at_first_onset"]) == (2, 16)
    patient = (await intake.client.get(f"/v1/patients/{pid}", headers=intake.auth())).json()
    assert patient["country"] == "IE" and patient["episodes"][0]["prior_episodes"] == 2
    # Optional: a patient without a country, an episode without history.
    other = await intake.new_patient()
    assert (await intake.client.get(f"/v1/patients/{other}", headers=intake.auth())).json()["country"] is None


# --------------------------------------------------------------------------- new routes


async def test_the_new_records_are_events_in_the_patients_stream(intake: Intake) -> None:
    pid = await intake.new_patient()
    eid = await intake.new_episode(pid)
    posts = [
        ("comorbidities", {"condition": "eating_disorder", "present": True, "recorded_on": "2026-02-01"}),
        ("comorbidities", {"condition": "eating_disorder", "present": False, "recorded_on": "2026-04-01"}),
        ("workup", {"check": "thyroid_function", "result": "abnormal", "done_on": "2026-03-01"}),
        ("preferences", {"strategy": "ECT", "declined": True, "recorded_on": "2026-03-02"}),
        ("preferences", {"strategy": "Spravato", "declined": True, "recorded_on": "2026-03-02"}),
        ("preferences", {"strategy": "Abilify", "declined": False, "recorded_on": "2026-03-02"}),
        ("preferences", {"strategy": "Augmentation", "declined": True, "recorded_on": "2026-03-02"}),
        (
            "journal",
            {
                "entry_on": "2026-03-03",
                "mood": 3,
                "side_effects": ["nausea", "insomnia", "nausea"],
                "triggers": ["poor_sleep"],
            },
        ),
        ("journal", {"entry_on": "2026-03-04", "mood": 0}),
    ]
    ids = []
    for path, body in posts:
        r = await intake.post(f"/v1/patients/{pid}/{path}", body)
        assert r.status_code == 201, (path, r.text)
        assert r.json()["id"] and r.json()["event_id"]
        ids.append(r.json()["id"])
    assert len(set(ids)) == len(ids)

    history = (await intake.client.get(f"/v1/patients/{pid}/events", headers=intake.auth())).json()[2:]
    assert [e["type"] for e in history] == [
        "care.intake.comorbidity-recorded.v1",
        "care.intake.comorbidity-recorded.v1",
        "care.intake.workup-check-recorded.v1",
        *["care.intake.treatment-preference-recorded.v1"] * 4,
        "care.intake.journal-entry-recorded.v1",
        "care.intake.journal-entry-recorded.v1",
    ]
    data = [e["data"] for e in history]
    assert data[0] == {
        "patient_id": pid,
        "record_id": ids[0],
        "condition": "eating_disorder",
        "present": True,
        "recorded_on": "2026-02-01",
    }
    assert data[2] == {
        "patient_id": pid,
        "record_id": ids[2],
        "episode_id": eid,
        "check": "thyroid_function",
        "result": "abnormal",
        "done_on": "2026-03-01",
    }
    assert [(d["strategy"], d["declined"], d["episode_id"]) for d in data[3:7]] == [
        ("ect", True, eid),
        ("esketamine", True, eid),
        ("aripiprazole", False, eid),
        ("augmentation", True, eid),
    ]
    assert data[7] == {
        "patient_id": pid,
        "entry_id": ids[7],
        "entry_on": "2026-03-03",
        "mood": 3,
        "side_effects": ["nausea", "insomnia"],
        "triggers": ["poor_sleep"],
        "source": "clinician",
    }
    assert (data[8]["side_effects"], data[8]["triggers"]) == ([], [])

    patient = (await intake.client.get(f"/v1/patients/{pid}", headers=intake.auth())).json()
    assert patient["comorbidities"] == [
        {"condition": "eating_disorder", "present": False, "recorded_on": "2026-04-01"}
    ]
    assert (patient["workup_checks"], patient["preferences"], patient["journal_entries"]) == (1, 4, 2)
    published = await eventually(lambda: _exactly(intake, pid, 11), what="all eleven events on the bus")
    assert [e["type"] for e in published][2:] == [e["type"] for e in history]


async def test_workup_and_preferences_need_the_episode_they_belong_to(intake: Intake) -> None:
    pid = await intake.new_patient()
    before = await _snapshot(intake, pid)
    assert_problem(
        await intake.post(
            f"/v1/patients/{pid}/workup", {"check": "vitamin_d", "result": "normal", "done_on": "2026-03-01"}
        ),
        409,
        "episode",
    )
    assert_problem(
        await intake.post(
            f"/v1/patients/{pid}/preferences",
            {"strategy": "rtms", "declined": True, "recorded_on": "2026-03-01"},
        ),
        409,
        "episode",
    )
    await assert_nothing_stored_or_published(intake, pid, before)
    # Comorbidities and journal entries belong to the patient: no episode needed.
    assert (
        await intake.post(
            f"/v1/patients/{pid}/comorbidities",
            {"condition": "chronic_pain", "present": True, "recorded_on": "2026-03-01"},
        )
    ).status_code == 201
    assert (
        await intake.post(f"/v1/patients/{pid}/journal", {"entry_on": "2026-03-01", "mood": 6})
    ).status_code == 201


NEW_ROUTES = [
    (
        "comorbidities",
        {"condition": "sleep_disorder", "present": True, "recorded_on": "2026-03-01"},
        {"present": False},
    ),
    (
        "workup",
        {"check": "bipolar_screen", "result": "normal", "done_on": "2026-03-01"},
        {"result": "abnormal"},
    ),
    ("preferences", {"strategy": "rtms", "declined": True, "recorded_on": "2026-03-01"}, {"declined": False}),
    ("journal", {"entry_on": "2026-03-01", "mood": 4, "triggers": ["conflict"]}, {"mood": 5}),
]


@pytest.mark.parametrize(("path", "body", "change"), NEW_ROUTES, ids=[r[0] for r in NEW_ROUTES])
async def test_new_routes_honour_the_idempotency_key(
    intake: Intake, path: str, body: dict, change: dict
) -> None:
    pid = await patient_with_episode(intake)
    first = await intake.post(f"/v1/patients/{pid}/{path}", body, **{"Idempotency-Key": "k-new"})
    assert first.status_code == 201, first.text
    before = await intake.stored_counts()
    again = await intake.post(f"/v1/patients/{pid}/{path}", body, **{"Idempotency-Key": "k-new"})
    assert (again.status_code, again.json()) == (201, first.json())
    assert await intake.stored_counts() == before
    assert_problem(
        await intake.post(f"/v1/patients/{pid}/{path}", {**body, **change}, **{"Idempotency-Key": "k-new"}),
        422,
        "Idempotency-Key",
    )
    assert await intake.stored_counts() == before


async def test_new_routes_see_only_the_clinics_own_patients(intake: Intake) -> None:
    pid = await patient_with_episode(intake)
    before = await _snapshot(intake, pid)
    for path, body, _ in NEW_ROUTES:
        r = await intake.post(f"/v1/patients/{pid}/{path}", body, intake.key_b)
        problem = assert_problem(r, 404, "patient_id")
        assert pid not in r.text.replace(problem.get("instance", ""), "")
        assert_problem(await intake.post(f"/v1/patients/nope/{path}", body), 404, "patient_id")
    await assert_nothing_stored_or_published(intake, pid, before)


# --------------------------------------------------------------------------- older events

V1_HISTORY = [
    (
        "care.intake.patient-registered.v1",
        {"external_id": "mrn-v1", "birth_year": 1970, "sex": "male", "timezone": "Europe/Dublin"},
    ),
    (
        "care.intake.episode-opened.v1",
        {
            "episode_id": "ep-v1",
            "onset_date": "2025-06-01",
            "severity": "severe",
            "psychotic_features": False,
            "diagnosis": "mdd",
        },
    ),
    (
        "care.intake.trial-started.v1",
        {
            "trial_id": "tr-v1",
            "episode_id": "ep-v1",
            "kind": "antidepressant",
            "agents": [{"agent": "Zoloft", "dose_mg_per_day": 100}],
            "started_on": "2025-07-01",
            "baseline": {"instrument": "PHQ-9", "score": 20},
            "unknown_agents": [],
        },
    ),
    (
        "care.intake.trial-completed.v1",
        {
            "trial_id": "tr-v1",
            "ended_on": "2025-09-01",
            "max_dose_mg_per_day": 150,
            "adherence_pct": 90,
            "sessions": None,
            "outcome": "no_response",
            "final": None,
        },
    ),
    (
        "care.intake.assessment-recorded.v1",
        {
            "assessment_id": "as-v1",
            "instrument": "PHQ-9",
            "score": 18,
            "item9": 1,
            "taken_on": "2025-09-01",
            "suicide_risk": None,
        },
    ),
    (
        "care.intake.trial-started.v1",
        {
            "trial_id": "tr-v1b",
            "episode_id": "ep-v1",
            "kind": "antidepressant",
            "agents": [{"agent": "Prozac", "dose_mg_per_day": 20}],
            "started_on": "2025-09-02",
            "baseline": None,
            "unknown_agents": [],
        },
    ),
]


async def test_a_stream_of_v1_events_still_reads_and_takes_new_records(intake: Intake) -> None:
    pid = "p-v1-history"
    async with intake.runtime.db.read() as s:
        clinic_id = (await clinic_for_key(s, intake.key_a)).clinic_id
    new = [
        NewEvent(
            type=t,
            subject=pid,
            data={"patient_id": pid, **({"clinic_id": clinic_id} if "patient-registered" in t else {}), **d},
        )
        for t, d in V1_HISTORY
    ]
    async with intake.runtime.db.transaction() as s:
        await intake.runtime.store.append(s, patient_stream(pid), 0, new)
        await record_patient_clinic(s, pid, clinic_id)

    history = (await intake.client.get(f"/v1/patients/{pid}/events", headers=intake.auth())).json()
    assert [e["type"] for e in history] == [t for t, _ in V1_HISTORY]
    assert history[2]["data"]["agents"] == [{"agent": "Zoloft", "dose_mg_per_day": 100}]
    patient = (await intake.client.get(f"/v1/patients/{pid}", headers=intake.auth())).json()
    assert (patient["country"], patient["current_episode_id"], patient["version"]) == (
        None,
        "ep-v1",
        len(V1_HISTORY),
    )
    assert patient["trials"][0]["outcome"] == "no_response"

    r = await intake.post(
        f"/v1/patients/{pid}/preferences", {"strategy": "ect", "declined": True, "recorded_on": "2025-09-02"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["episode_id"] == "ep-v1"
    r = await intake.post(
        f"/v1/patients/{pid}/assessments", {"instrument": "PHQ-9", "items": ITEMS, "taken_on": "2025-10-01"}
    )
    assert r.status_code == 201, r.text
    # A running v1 trial that carries a brand name: its maximum is recorded under the generic.
    r = await intake.post(
        f"/v1/patients/{pid}/trials/tr-v1b/completion",
        {"ended_on": "2025-11-01", "max_doses": [{"agent": "Sarafem", "dose_mg_per_day": 40}]},
    )
    assert r.status_code == 201, r.text
    assert r.json()["max_doses"][0]["agent"] == "fluoxetine" and r.json()["max_dose_mg_per_day"] == 40
    history = (await intake.client.get(f"/v1/patients/{pid}/events", headers=intake.auth())).json()
    assert [e["type"] for e in history][len(V1_HISTORY) :] == [
        "care.intake.treatment-preference-recorded.v1",
        "care.intake.assessment-recorded.v2",
        "care.intake.trial-completed.v2",
    ]
