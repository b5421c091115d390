"""intake's REST contract: validation, idempotency and clinic isolation (DESIGN.md section 6)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from care_shared.testing.polling import eventually
from tests.integration.intake.conftest import Intake

PROBLEM = "application/problem+json"


def assert_problem(response, status: int, field: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status
    assert body["field"] == field, body
    assert {"type", "title", "detail"} <= body.keys()
    return body


async def test_a_clinic_records_a_patient_episode_trial_and_completion_as_events(intake: Intake) -> None:
    pid = await intake.new_patient()
    await intake.new_episode(pid)
    tid = await intake.new_trial(pid)
    r = await intake.post(
        f"/v1/patients/{pid}/trials/{tid}/completion",
        {"ended_on": "2026-03-15", "max_dose_mg_per_day": 150, "adherence_pct": 90, "outcome": "no_response"},
    )
    assert r.status_code == 201, r.text
    r = await intake.post(
        f"/v1/patients/{pid}/assessments",
        {"instrument": "PHQ-9", "score": 17, "item9": 1, "taken_on": "2026-03-15"},
    )
    assert r.status_code == 201, r.text

    history = (await intake.client.get(f"/v1/patients/{pid}/events", headers=intake.auth())).json()
    assert [e["type"] for e in history] == [
        "care.intake.patient-registered.v2",
        "care.intake.episode-opened.v2",
        "care.intake.trial-started.v2",
        "care.intake.trial-completed.v2",
        "care.intake.assessment-recorded.v2",
    ]
    assert [e["sequence"] for e in history] == [1, 2, 3, 4, 5]

    patient = (await intake.client.get(f"/v1/patients/{pid}", headers=intake.auth())).json()
    assert patient["trials"][0]["outcome"] == "no_response"
    assert patient["version"] == 5

    published = await eventually(
        lambda: _at_least(intake.published_for(pid), 5), what="all five events on the bus"
    )
    assert [e["type"] for e in published] == [e["type"] for e in history]
    first = published[0]
    assert first["specversion"] == "1.0" and first["source"] == "/intake" and first["subject"] == pid
    assert first["traceparent"]
    assert [e["id"] for e in published] == [e["id"] for e in history]
    # On the wire too: UUIDv7 ids (time-ordered) and the stream sequence consumers order by,
    # as the CloudEvents Sequence extension writes it (an orderable string, its type named).
    assert all(uuid.UUID(e["id"]).version == 7 for e in published)
    assert [e["sequence"] for e in published] == [f"{n:010d}" for n in range(1, 6)]
    assert {e["sequencetype"] for e in published} == {"Integer"}
    headers = [h for h, _ in await intake.published_messages(pid)]
    assert {h.get("Content-Type") for h in headers} == {"application/cloudevents+json"}
    assert [e["id"] for e in published] == sorted(e["id"] for e in published)


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("assessments", {"instrument": "PHQ-9", "score": 28, "taken_on": "2026-03-01"}, 422, "score"),
        ("assessments", {"instrument": "PHQ-9", "score": -1, "taken_on": "2026-03-01"}, 422, "score"),
        (
            "assessments",
            {"instrument": "PHQ-9", "score": 20, "item9": 4, "taken_on": "2026-03-01"},
            422,
            "item9",
        ),
        (
            "assessments",
            {"instrument": "MADRS", "score": 20, "item9": 1, "taken_on": "2026-03-01"},
            422,
            "item9",
        ),
        ("assessments", {"instrument": "MADRS", "score": 61, "taken_on": "2026-03-01"}, 422, "score"),
        ("assessments", {"instrument": "HAM-D-17", "score": 53, "taken_on": "2026-03-01"}, 422, "score"),
        ("assessments", {"instrument": "BDI-II", "score": 20, "taken_on": "2026-03-01"}, 422, "instrument"),
        ("assessments", {"instrument": "PHQ-9", "score": 10, "taken_on": "2026-06-16"}, 422, "taken_on"),
        ("assessments", {"instrument": "PHQ-9", "score": 10}, 422, "taken_on"),
        (
            "assessments",
            {"instrument": "PHQ-9", "score": 10, "taken_on": "2026-03-01", "name": "x"},
            422,
            "name",
        ),
        (
            "assessments",
            {"instrument": "PHQ-9", "score": 10, "taken_on": "2026-03-01", "suicide_risk": "maybe"},
            422,
            "suicide_risk",
        ),
        (
            "trials",
            {"kind": "antidepressant", "agent": "sertraline", "started_on": "2026-07-01"},
            422,
            "started_on",
        ),
        ("trials", {"kind": "antidepressant", "started_on": "2026-02-01"}, 422, "agent"),
        ("trials", {"kind": "combination", "agent": "sertraline", "started_on": "2026-02-01"}, 422, "agents"),
        ("trials", {"kind": "lobotomy", "started_on": "2026-02-01"}, 422, "kind"),
        (
            "trials",
            {
                "kind": "antidepressant",
                "agent": "sertraline",
                "dose_mg_per_day": 0,
                "started_on": "2026-02-01",
            },
            422,
            "dose_mg_per_day",
        ),
        (
            "trials",
            {
                "kind": "antidepressant",
                "agent": "sertraline",
                "started_on": "2026-02-01",
                "baseline": {"instrument": "PHQ-9", "score": 30},
            },
            422,
            "baseline.score",
        ),
        ("episodes", {"onset_date": "2026-12-01"}, 422, "onset_date"),
        ("episodes", {"onset_date": "2026-01-01", "severity": "catastrophic"}, 422, "severity"),
        ("episodes", {"onset_date": "2026-01-01", "diagnosis": "flu"}, 422, "diagnosis"),
    ],
)
async def test_bad_input_is_a_problem_naming_the_field_and_nothing_is_stored_or_published(
    intake: Intake, path: str, body: dict, status: int, field: str
) -> None:
    pid = await intake.new_patient()
    await intake.new_episode(pid)
    before = await intake.stored_counts()
    r = await intake.post(f"/v1/patients/{pid}/{path}", body)
    assert_problem(r, status, field)
    assert "score" not in r.json()["detail"] or "between" in r.json()["detail"]
    assert await intake.stored_counts() == before
    await eventually(
        lambda: _exactly(intake.published_for(pid), 2), what="only the two good events on the bus"
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ended_on": "2026-01-15"}, "ended_on"),  # before the trial started
        ({"ended_on": "2026-06-20"}, "ended_on"),  # in the future
        ({"ended_on": "2026-03-15", "adherence_pct": 101}, "adherence_pct"),
        ({"ended_on": "2026-03-15", "adherence_pct": -1}, "adherence_pct"),
        ({"ended_on": "2026-03-15", "outcome": "cured"}, "outcome"),
        ({"ended_on": "2026-03-15", "final": {"instrument": "PHQ-9", "score": 40}}, "final.score"),
        ({"ended_on": "2026-03-15", "sessions": -2}, "sessions"),
    ],
)
async def test_bad_completions_are_rejected(intake: Intake, body: dict, field: str) -> None:
    pid = await intake.new_patient()
    await intake.new_episode(pid)
    tid = await intake.new_trial(pid)
    before = await intake.stored_counts()
    assert_problem(await intake.post(f"/v1/patients/{pid}/trials/{tid}/completion", body), 422, field)
    assert await intake.stored_counts() == before


async def test_unknown_patient_and_trial_are_404_and_completing_twice_is_409(intake: Intake) -> None:
    assert_problem(
        await intake.post("/v1/patients/nope/episodes", {"onset_date": "2026-01-01"}), 404, "patient_id"
    )
    r = await intake.client.get("/v1/patients/nope", headers=intake.auth())
    assert_problem(r, 404, "patient_id")
    pid = await intake.new_patient()
    await intake.new_episode(pid)
    assert_problem(
        await intake.post(f"/v1/patients/{pid}/trials/nope/completion", {"ended_on": "2026-03-01"}),
        404,
        "trial_id",
    )
    tid = await intake.new_trial(pid)
    done = {"ended_on": "2026-03-15", "outcome": "response"}
    assert (await intake.post(f"/v1/patients/{pid}/trials/{tid}/completion", done)).status_code == 201
    before = await intake.stored_counts()
    assert_problem(await intake.post(f"/v1/patients/{pid}/trials/{tid}/completion", done), 409, "trial_id")
    assert await intake.stored_counts() == before


async def test_a_trial_needs_an_episode_first(intake: Intake) -> None:
    pid = await intake.new_patient()
    r = await intake.post(
        f"/v1/patients/{pid}/trials",
        {"kind": "antidepressant", "agent": "sertraline", "started_on": "2026-02-01"},
    )
    assert_problem(r, 409, "episode")


async def test_an_unknown_drug_is_accepted_and_flagged(intake: Intake) -> None:
    pid = await intake.new_patient()
    await intake.new_episode(pid)
    r = await intake.post(
        f"/v1/patients/{pid}/trials",
        {"kind": "antidepressant", "agent": "Zuranolone", "dose_mg_per_day": 50, "started_on": "2026-02-01"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["flags"] == ["unknown_agent"]
    assert r.json()["unknown_agents"] == ["zuranolone"]
    # Liothyronine's table unit is the microgram (CLINICAL.md 2): "25" with no unit is 25 micrograms.
    known = await intake.post(
        f"/v1/patients/{pid}/trials",
        {"kind": "augmentation", "agent": "T3", "dose_mg_per_day": 25, "started_on": "2026-02-01"},
    )
    assert known.json()["flags"] == [] and known.json()["agents"][0]["agent"] == "liothyronine"
    assert known.json()["agents"][0]["dose_mg_per_day"] == 0.025


async def test_future_is_judged_in_the_patients_own_time_zone(intake: Intake) -> None:
    # 2026-06-15 12:00 UTC is already 2026-06-16 in Auckland, still the 15th in London.
    auckland = await intake.new_patient(timezone="Pacific/Auckland")
    london = await intake.new_patient(timezone="Europe/London")
    body = {"instrument": "PHQ-9", "score": 9, "taken_on": "2026-06-16"}
    assert (await intake.post(f"/v1/patients/{auckland}/assessments", body)).status_code == 201
    assert_problem(await intake.post(f"/v1/patients/{london}/assessments", body), 422, "taken_on")


async def test_patient_registration_rules(intake: Intake) -> None:
    base = {"external_id": "mrn-tz", "birth_year": 1980, "sex": "female", "timezone": "Europe/London"}
    assert_problem(await intake.post("/v1/patients", {**base, "timezone": "Mars/Olympus"}), 422, "timezone")
    assert_problem(await intake.post("/v1/patients", {**base, "birth_year": 2027}), 422, "birth_year")
    assert_problem(await intake.post("/v1/patients", {**base, "sex": "x"}), 422, "sex")
    assert_problem(
        await intake.post("/v1/patients", {k: v for k, v in base.items() if k != "external_id"}),
        422,
        "external_id",
    )
    assert (await intake.post("/v1/patients", base)).status_code == 201
    dup = assert_problem(await intake.post("/v1/patients", base), 409, "external_id")
    assert dup["patient_id"]
    # Another clinic may use the same reference for its own patient.
    assert (await intake.post("/v1/patients", base, intake.key_b)).status_code == 201


async def test_malformed_json_is_a_400_problem(intake: Intake) -> None:
    r = await intake.client.post(
        "/v1/patients", content=b"{nope", headers={**intake.auth(), "content-type": "application/json"}
    )
    assert_problem(r, 400, "body")


async def test_episode_revision_to_bipolar_is_an_event_and_a_no_change_is_not(intake: Intake) -> None:
    pid = await intake.new_patient()
    eid = await intake.new_episode(pid)
    r = await intake.client.patch(
        f"/v1/patients/{pid}/episodes/{eid}", json={"diagnosis": "bipolar"}, headers=intake.auth()
    )
    assert r.status_code == 200 and r.json()["changed"] is True
    before = await intake.stored_counts()
    r = await intake.client.patch(
        f"/v1/patients/{pid}/episodes/{eid}", json={"diagnosis": "bipolar"}, headers=intake.auth()
    )
    assert r.status_code == 200 and r.json()["changed"] is False
    assert await intake.stored_counts() == before
    r = await intake.client.patch(
        f"/v1/patients/{pid}/episodes/nope", json={"diagnosis": "mdd"}, headers=intake.auth()
    )
    assert_problem(r, 404, "episode_id")
    patient = (await intake.client.get(f"/v1/patients/{pid}", headers=intake.auth())).json()
    assert patient["episodes"][0]["diagnosis"] == "bipolar"


async def test_idempotency_key_returns_the_first_answer_and_appends_nothing(intake: Intake) -> None:
    body = {"external_id": "mrn-idem", "birth_year": 1975, "sex": "male", "timezone": "Europe/Paris"}
    first = await intake.post("/v1/patients", body, **{"Idempotency-Key": "k-1"})
    assert first.status_code == 201
    before = await intake.stored_counts()
    again = await intake.post("/v1/patients", body, **{"Idempotency-Key": "k-1"})
    assert again.status_code == 201
    assert again.json() == first.json()
    assert await intake.stored_counts() == before
    changed = await intake.post("/v1/patients", {**body, "birth_year": 1976}, **{"Idempotency-Key": "k-1"})
    assert_problem(changed, 422, "Idempotency-Key")
    # Keys belong to a clinic: clinic B's "k-1" is its own.
    assert (
        await intake.post("/v1/patients", body, intake.key_b, **{"Idempotency-Key": "k-1"})
    ).status_code == 201


async def test_concurrent_retries_with_one_key_store_one_event(intake: Intake) -> None:
    pid = await intake.new_patient()
    await intake.new_episode(pid)
    before = await intake.stored_counts()
    body = {"instrument": "PHQ-9", "score": 12, "taken_on": "2026-03-01"}
    responses = await asyncio.gather(
        *(
            intake.post(f"/v1/patients/{pid}/assessments", body, **{"Idempotency-Key": "same"})
            for _ in range(6)
        )
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert await intake.stored_counts() == before + 1


async def test_concurrent_commands_on_one_patient_all_land_in_order(intake: Intake) -> None:
    pid = await intake.new_patient()
    await intake.new_episode(pid)
    body = {"instrument": "PHQ-9", "score": 12, "taken_on": "2026-03-01"}
    responses = await asyncio.gather(
        *(intake.post(f"/v1/patients/{pid}/assessments", body) for _ in range(5))
    )
    assert {r.status_code for r in responses} == {201}
    history = (await intake.client.get(f"/v1/patients/{pid}/events", headers=intake.auth())).json()
    assert [e["sequence"] for e in history] == list(range(1, 8))


async def test_a_clinic_sees_and_changes_only_its_own_patients(intake: Intake) -> None:
    pid = await intake.new_patient()
    await intake.new_episode(pid)
    tid = await intake.new_trial(pid)
    before = await intake.stored_counts()
    other = intake.key_b
    for r in [
        await intake.client.get(f"/v1/patients/{pid}", headers=intake.auth(other)),
        await intake.client.get(f"/v1/patients/{pid}/events", headers=intake.auth(other)),
        await intake.post(f"/v1/patients/{pid}/episodes", {"onset_date": "2026-01-01"}, other),
        await intake.post(f"/v1/patients/{pid}/trials", {"kind": "ect", "started_on": "2026-02-01"}, other),
        await intake.post(f"/v1/patients/{pid}/trials/{tid}/completion", {"ended_on": "2026-03-01"}, other),
        await intake.post(
            f"/v1/patients/{pid}/assessments",
            {"instrument": "PHQ-9", "score": 3, "taken_on": "2026-03-01"},
            other,
        ),
    ]:
        body = assert_problem(r, 404, "patient_id")
        assert pid not in r.text.replace(body.get("instance", ""), "")
    assert await intake.stored_counts() == before


async def test_no_key_or_a_wrong_key_is_401(intake: Intake) -> None:
    r = await intake.client.get("/v1/patients/x")
    assert_problem(r, 401, "Authorization")
    assert r.headers["www-authenticate"] == "Bearer"
    r = await intake.client.post("/v1/patients", json={}, headers={"Authorization": "Bearer trd_wrong"})
    assert_problem(r, 401, "Authorization")


async def _at_least(awaitable, n: int):
    items = await awaitable
    return items if len(items) >= n else None


async def _exactly(awaitable, n: int):
    items = await awaitable
    return items if len(items) == n else None


async def test_a_rotated_key_stops_working_and_the_new_one_works(intake: Intake) -> None:
    from intake.clinics import rotate_key

    pid = await intake.new_patient()
    rotated = await rotate_key(intake.runtime, intake.key_a)
    r = await intake.client.get(f"/v1/patients/{pid}", headers=intake.auth(intake.key_a))
    assert_problem(r, 401, "Authorization")
    assert (
        await intake.client.get(f"/v1/patients/{pid}", headers=intake.auth(rotated["api_key"]))
    ).status_code == 200
