"""Issue 16, referrals as BSeR-shaped FHIR: each referral a ServiceRequest and its task a Task
(status and businessStatus from the queue's states), valid against the R4B models of
`fhir.resources`; a receiving clinic polls its own tasks with Task?owner=; visibility and
the read audit are the REST API's."""

from __future__ import annotations

from fhir.resources.R4B import get_fhir_model_class

from care_shared.audit import audit_rows
from tests.integration.referral.conftest import Harness, new_patient

FHIR_JSON = "application/fhir+json"


def valid(resource: dict) -> dict:
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    if resource["resourceType"] == "Bundle":
        for e in resource.get("entry", []):
            valid(e["resource"])
    return resource


async def fhir(h: Harness, path: str, key: str | None = None, expect: int = 200, **params) -> dict:
    r = await h.get(path, key, **params)
    assert r.status_code == expect, r.text
    assert r.headers["content-type"].startswith(FHIR_JSON)
    return valid(r.json())


async def test_referral_and_task_follow_the_queue(referral: Harness) -> None:
    h = referral
    receiving, receiving_key = await h.partner_clinic()
    other, other_key = await h.partner_clinic()
    north = await h.add_clinic("North", "north", ["mood_disorder_clinic"], partner=receiving)
    pid = new_patient()
    await h.advise(pid, urgency="urgent", reasons=["status trd", "suicidality: urgent"])
    ref = await h.referral_of(pid, lambda r: r["status"] == "queued")

    sr = await fhir(h, f"/fhir/ServiceRequest/{ref['id']}")
    assert (sr["status"], sr["intent"], sr["priority"]) == ("active", "order", "urgent")
    assert sr["subject"] == {"reference": f"Patient/{pid}"} and sr["performer"] == [
        {"reference": f"Organization/{north}"}
    ]
    assert [c["text"] for c in sr["reasonCode"]] == ["status trd", "suicidality: urgent"]
    assert (await fhir(h, "/fhir/ServiceRequest", patient=f"Patient/{pid}"))["entry"][0]["resource"] == sr

    t = await fhir(h, f"/fhir/Task/{ref['id']}")
    assert (t["status"], t["businessStatus"]["coding"][0]["code"]) == ("requested", "queued")
    assert t["focus"] == {"reference": f"ServiceRequest/{ref['id']}"} and t["owner"] == {
        "reference": f"Organization/{receiving}"
    }

    # the receiving clinic polls its own tasks; another clinic sees none of them
    for owner in (receiving, f"Organization/{receiving}"):
        mine = await fhir(h, "/fhir/Task", receiving_key, owner=owner)
        assert [e["resource"]["id"] for e in mine["entry"]] == [ref["id"]]
    assert (await fhir(h, "/fhir/Task", other_key, owner=receiving))["total"] == 0
    assert (await fhir(h, "/fhir/Task", other_key))["total"] == 0
    await fhir(h, f"/fhir/Task/{ref['id']}", other_key, expect=404)
    await fhir(h, f"/fhir/ServiceRequest/{ref['id']}", other_key, expect=404)

    # the queue moves: claimed, accepted, scheduled, completed
    steps = [
        ("claim", None, "received", "active"),
        ("accept", None, "accepted", "active"),
        ("schedule", {"appointment_at": "2026-07-01T09:30:00+01:00"}, "in-progress", "active"),
        ("complete", None, "completed", "completed"),
    ]
    for action, body, task_status, request_status in steps:
        r = await h.post(f"/v1/tasks/{ref['id']}/{action}", body)
        assert r.status_code in (200, 201), r.text
        t = await fhir(h, f"/fhir/Task/{ref['id']}", receiving_key)
        assert (t["status"], t["businessStatus"]["coding"][0]["code"]) == (task_status, r.json()["status"])
        assert (await fhir(h, f"/fhir/ServiceRequest/{ref['id']}"))["status"] == request_status
    assert (await fhir(h, "/fhir/Task", receiving_key, status="completed"))["total"] == 1

    rows = [
        (r["route"], r["actor_id"])
        for r in await audit_rows(h.runtime.db, patient_id=pid)
        if r["route"].startswith("/fhir")
    ]
    assert ("/fhir/Task", receiving) in rows and ("/fhir/ServiceRequest/{referral_id}", receiving) not in rows
    assert any(route == "/fhir/ServiceRequest/{referral_id}" for route, _ in rows)


async def test_the_fhir_routes_need_a_key(referral: Harness) -> None:
    r = await referral.client.get("/fhir/Task")
    assert r.status_code == 401
