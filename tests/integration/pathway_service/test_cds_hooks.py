"""Issue 16, CDS Hooks 2.0 on pathway: discovery lists both services; patient-view and
order-select requests shaped as the specification's examples answer with cards valid against
the specification's JSON shape (written below as a schema); feedback is recorded as events;
tenant isolation and the read audit hold as on the REST routes.

Real parts: intake and pathway in-process on their own databases (SQLite and PostgreSQL for
intake) and a real nats-server with auth: intake's relay publishes, pathway's durable consumer
builds the assessment the hooks answer from."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jsonschema
import pytest
import sqlalchemy as sa

from care_shared.audit import audit_rows
from care_shared.clock import FixedClock
from care_shared.db import sqlite_url_for
from care_shared.eventstore import events
from care_shared.service import Runtime
from care_shared.testing.nats_server import NatsServer
from care_shared.testing.polling import eventually
from intake.bootstrap import create_app as intake_app
from intake.bootstrap import make_runtime as intake_runtime
from intake.clinics import add_clinic
from intake.settings import IntakeSettings
from pathway.bootstrap import create_app as pathway_app
from pathway.bootstrap import make_runtime as pathway_runtime
from pathway.settings import PathwaySettings
from tests.integration.intake.conftest import NOW

# The CDS Hooks 2.0 shapes (cds-hooks.hl7.org/2.0: Discovery, CDS Service Response, Card,
# Suggestion, Action, Link, Feedback), as JSON Schema.
CODING = {
    "type": "object",
    "required": ["code"],
    "properties": {"system": {"type": "string"}, "code": {"type": "string"}, "display": {"type": "string"}},
}
SOURCE = {
    "type": "object",
    "required": ["label"],
    "properties": {
        "label": {"type": "string", "minLength": 1},
        "url": {"type": "string"},
        "icon": {"type": "string"},
        "topic": CODING,
    },
}
ACTION = {
    "type": "object",
    "required": ["type", "description"],
    "properties": {
        "type": {"enum": ["create", "update", "delete"]},
        "description": {"type": "string"},
        "resource": {"type": "object", "required": ["resourceType"]},
        "resourceId": {"type": "string"},
    },
}
SUGGESTION = {
    "type": "object",
    "required": ["label"],
    "properties": {
        "label": {"type": "string"},
        "uuid": {"type": "string"},
        "isRecommended": {"type": "boolean"},
        "actions": {"type": "array", "items": ACTION},
    },
}
LINK = {
    "type": "object",
    "required": ["label", "url", "type"],
    "properties": {
        "label": {"type": "string"},
        "url": {"type": "string"},
        "type": {"enum": ["absolute", "smart"]},
        "appContext": {"type": "string"},
    },
}
CARD = {
    "type": "object",
    "required": ["summary", "indicator", "source"],
    "additionalProperties": False,
    "properties": {
        "uuid": {"type": "string", "format": "uuid"},
        "summary": {"type": "string", "minLength": 1, "maxLength": 140},
        "detail": {"type": "string"},
        "indicator": {"enum": ["info", "warning", "critical"]},
        "source": SOURCE,
        "suggestions": {"type": "array", "items": SUGGESTION},
        "selectionBehavior": {"enum": ["at-most-one", "any"]},
        "overrideReasons": {"type": "array", "items": CODING},
        "links": {"type": "array", "items": LINK},
    },
    "dependentRequired": {"suggestions": ["selectionBehavior"]},
}
RESPONSE = {
    "type": "object",
    "required": ["cards"],
    "properties": {
        "cards": {"type": "array", "items": CARD},
        "systemActions": {"type": "array", "items": ACTION},
    },
}
DISCOVERY = {
    "type": "object",
    "required": ["services"],
    "properties": {
        "services": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["hook", "description", "id"],
                "properties": {
                    "hook": {"type": "string"},
                    "title": {"type": "string"},
                    "description": {"type": "string"},
                    "id": {"type": "string", "pattern": "^[A-Za-z0-9._~-]+$"},
                    "prefetch": {"type": "object", "additionalProperties": {"type": "string"}},
                    "usageRequirements": {"type": "string"},
                },
            },
        }
    },
}


def check(instance: dict, schema: dict) -> dict:
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(instance)
    return instance


@dataclass
class Network:
    intake: httpx.AsyncClient
    pathway: httpx.AsyncClient
    intake_rt: Runtime
    pathway_rt: Runtime
    key_a: str
    key_b: str

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key_a}"}

    async def post(
        self, client: httpx.AsyncClient, path: str, body: dict, key: str | None = None
    ) -> httpx.Response:
        return await client.post(path, json=body, headers=self.auth(key))

    async def caught_up(self, pid: str) -> None:
        """Wait (with a deadline) until pathway's assessment reflects the patient's latest intake
        event: intake's relay publishes it, pathway's durable consumer applies it."""
        async with self.intake_rt.db.read() as s:
            latest = (
                await s.execute(
                    sa.select(events.c.event_id)
                    .where(events.c.subject == pid)
                    .order_by(events.c.position.desc())
                    .limit(1)
                )
            ).scalar_one()

        async def applied() -> bool:
            r = await self.pathway.get(f"/v1/patients/{pid}/assessment", headers=self.auth())
            return r.status_code == 200 and r.json()["as_of_event"] == latest

        await eventually(applied, what="pathway's assessment of the patient's latest event")


@pytest.fixture
async def network(nats_server: NatsServer, database_url: str, tmp_path: Path) -> AsyncIterator[Network]:
    # intake on the parametrised database, pathway on its own (SQLite) beside it
    irt = intake_runtime(
        IntakeSettings(database_url=database_url, **nats_server.settings("intake")), clock=FixedClock(NOW)
    )
    prt = pathway_runtime(
        PathwaySettings(
            database_url=sqlite_url_for(tmp_path / "pathway.db"), **nats_server.settings("pathway")
        ),
        clock=FixedClock(NOW),
    )
    iapp, papp = intake_app(irt), pathway_app(prt)
    async with iapp.router.lifespan_context(iapp), papp.router.lifespan_context(papp):
        a = await add_clinic(irt, "Clinic A")
        b = await add_clinic(irt, "Clinic B")
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(app=iapp), base_url="http://intake") as ic,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=papp), base_url="http://pathway") as pc,
        ):
            net = Network(ic, pc, irt, prt, a["api_key"], b["api_key"])
            yield net


async def trd_patient(net: Network, *, suicidal: bool = False) -> str:
    """Two failed adequate trials (sertraline, venlafaxine): trd, referral advised."""
    r = await net.post(
        net.intake,
        "/v1/patients",
        {
            "external_id": f"mrn-{uuid.uuid4().hex[:8]}",
            "birth_year": 1980,
            "sex": "female",
            "timezone": "Europe/London",
            "country": "GB",
        },
    )
    pid = r.json()["id"]
    assert (
        await net.post(
            net.intake, f"/v1/patients/{pid}/episodes", {"onset_date": "2026-01-05", "severity": "moderate"}
        )
    ).status_code == 201
    for agent, dose, start, end in (
        ("sertraline", 100, "2026-01-10", "2026-02-20"),
        ("venlafaxine", 225, "2026-02-25", "2026-04-10"),
    ):
        r = await net.post(
            net.intake,
            f"/v1/patients/{pid}/trials",
            {"kind": "antidepressant", "agent": agent, "dose_mg_per_day": dose, "started_on": start},
        )
        assert r.status_code == 201, r.text
        r = await net.post(
            net.intake,
            f"/v1/patients/{pid}/trials/{r.json()['id']}/completion",
            {"ended_on": end, "adherence_pct": 90, "outcome": "no_response"},
        )
        assert r.status_code == 201, r.text
    if suicidal:
        assert (
            await net.post(
                net.intake,
                f"/v1/patients/{pid}/assessments",
                {"instrument": "PHQ-9", "score": 22, "item9": 2, "taken_on": "2026-04-12"},
            )
        ).status_code == 201
    await net.caught_up(pid)
    return pid


def patient_view_request(pid: str) -> dict:
    # Shaped as the specification's patient-view example request.
    return {
        "hookInstance": str(uuid.uuid4()),
        "fhirServer": "https://ehr.example/fhir",
        "hook": "patient-view",
        "context": {"userId": "Practitioner/example", "patientId": pid},
        "prefetch": {"patient": {"resourceType": "Patient", "id": pid}},
    }


def order_select_request(pid: str, orders: list[dict], selections: list[str] | None = None) -> dict:
    # Shaped as the specification's order-select example: selections and a draftOrders Bundle.
    return {
        "hookInstance": str(uuid.uuid4()),
        "fhirServer": "https://ehr.example/fhir",
        "hook": "order-select",
        "context": {
            "userId": "Practitioner/123",
            "patientId": pid,
            "encounterId": "enc-1",
            "selections": selections or [f"MedicationRequest/{o['id']}" for o in orders],
            "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": o} for o in orders]},
        },
    }


def medication_request(rid: str, concept: dict, mg: float, per_day: int = 1, unit: str = "mg") -> dict:
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": "draft",
        "intent": "proposal",
        "subject": {"reference": "Patient/x"},
        "medicationCodeableConcept": concept,
        "dosageInstruction": [
            {
                "timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
                "doseAndRate": [
                    {
                        "doseQuantity": {
                            "value": mg,
                            "unit": unit,
                            "system": "http://unitsofmeasure.org",
                            "code": unit,
                        }
                    }
                ],
            }
        ],
    }


RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


async def test_discovery_lists_both_services(network: Network):
    r = await network.pathway.get("/cds-services")  # discovery is public, as the specification has it
    assert r.status_code == 200
    body = check(r.json(), DISCOVERY)
    assert {(s["hook"], s["id"]) for s in body["services"]} == {
        ("patient-view", "trd-patient-view"),
        ("order-select", "trd-order-select"),
    }
    assert all("{{context.patientId}}" in s["prefetch"]["patient"] for s in body["services"])


async def test_patient_view_answers_status_strategies_and_referral(network: Network):
    pid = await trd_patient(network)
    r = await network.post(network.pathway, "/cds-services/trd-patient-view", patient_view_request(pid))
    assert r.status_code == 200, r.text
    cards = check(r.json(), RESPONSE)["cards"]
    assert cards[0]["indicator"] == "info" and cards[0]["summary"] == "TRD status: trd"
    assert "Thase-Rush:** stage II" in cards[0]["detail"] and "Maudsley:**" in cards[0]["detail"]
    strategies = [c for c in cards if c["summary"].startswith("Consider:")]
    assert 1 <= len(strategies) <= 3
    assessment = (await network.pathway.get(f"/v1/patients/{pid}/assessment", headers=network.auth())).json()
    assert [c["source"]["label"] for c in strategies] == [
        r["evidence"] for r in assessment["recommendations"][:3]
    ]
    [referral] = [c for c in cards if c["summary"].startswith("Referral")]
    action = referral["suggestions"][0]["actions"][0]
    assert action["type"] == "create" and action["resource"]["resourceType"] == "ServiceRequest"
    assert not [c for c in cards if c["indicator"] == "critical"]


async def test_urgent_patient_gets_a_critical_card_with_crisis_resources(network: Network):
    pid = await trd_patient(network, suicidal=True)
    cards = check(
        (
            await network.post(network.pathway, "/cds-services/trd-patient-view", patient_view_request(pid))
        ).json(),
        RESPONSE,
    )["cards"]
    critical = cards[0]
    assert critical["indicator"] == "critical" and "urgent" in critical["summary"]
    assert "116 123" in critical["detail"] and "988" in critical["detail"]


async def test_order_select_warns_on_failed_agent_buspirone_and_low_dose(network: Network):
    pid = await trd_patient(network)
    orders = [
        medication_request(
            "o1", {"coding": [{"system": RXNORM, "code": "36437", "display": "sertraline"}]}, 100
        ),  # failed adequately
        medication_request("o2", {"text": "BuSpar"}, 15, per_day=2),  # buspirone as augmentation
        medication_request("o3", {"text": "escitalopram"}, 5),  # below 10 mg
        medication_request("o4", {"text": "escitalopram"}, 10),  # fine
        medication_request("o5", {"text": "not-a-known-drug"}, 1),  # nothing to check against
    ]
    r = await network.post(
        network.pathway, "/cds-services/trd-order-select", order_select_request(pid, orders)
    )
    assert r.status_code == 200, r.text
    cards = check(r.json(), RESPONSE)["cards"]
    assert [c["summary"] for c in cards] == [
        "sertraline failed an adequate trial in this episode",
        "Buspirone augmentation is not evidence-based for TRD",
        "escitalopram 5 mg/day is below the adequate dose",
    ]
    assert all(c["indicator"] == "warning" for c in cards)
    # only the selected orders are checked
    r = await network.post(
        network.pathway,
        "/cds-services/trd-order-select",
        order_select_request(pid, orders, ["MedicationRequest/o4"]),
    )
    assert r.json()["cards"] == []


async def test_order_select_reads_draft_orders_from_the_prefetch(network: Network):
    pid = await trd_patient(network)
    body = order_select_request(pid, [])
    del body["context"]["draftOrders"], body["context"]["selections"]
    body["prefetch"] = {
        "drafts": {
            "resourceType": "Bundle",
            "entry": [{"resource": medication_request("o1", {"text": "Effexor XR"}, 150)}],
        }
    }
    cards = check(
        (await network.post(network.pathway, "/cds-services/trd-order-select", body)).json(), RESPONSE
    )["cards"]
    assert [c["summary"] for c in cards] == ["venlafaxine failed an adequate trial in this episode"]


async def feedback_events(net: Network) -> list[dict]:
    async with net.pathway_rt.db.read() as s:
        rows = await s.execute(
            sa.select(events.c.data)
            .where(events.c.type == "care.pathway.cds-card-feedback.v1")
            .order_by(events.c.position)
        )
        return [r.data for r in rows]


async def test_feedback_is_recorded_once_without_free_text(network: Network):
    pid = await trd_patient(network)
    cards = (
        await network.post(network.pathway, "/cds-services/trd-patient-view", patient_view_request(pid))
    ).json()["cards"]
    referral = next(c for c in cards if c["summary"].startswith("Referral"))
    strategy = next(c for c in cards if c["summary"].startswith("Consider:"))
    body = {
        "feedback": [
            {
                "card": referral["uuid"],
                "outcome": "accepted",
                "acceptedSuggestions": [{"id": referral["suggestions"][0]["uuid"]}],
                "outcomeTimestamp": "2026-06-15T12:00:00Z",
            },
            {
                "card": strategy["uuid"],
                "outcome": "overridden",
                "overrideReason": {
                    "reason": strategy["overrideReasons"][0],
                    "userComment": "Mrs Example prefers not",
                },
                "outcomeTimestamp": "2026-06-15T12:01:00Z",
            },
        ]
    }
    for _ in range(2):  # the same feedback twice is recorded once
        r = await network.post(network.pathway, "/cds-services/trd-patient-view/feedback", body)
        assert r.status_code == 200, r.text
    recorded = await feedback_events(network)
    assert [(e["card_id"], e["outcome"], e["patient_id"]) for e in recorded] == [
        (referral["uuid"], "accepted", pid),
        (strategy["uuid"], "overridden", pid),
    ]
    assert recorded[0]["accepted_suggestions"] == [referral["suggestions"][0]["uuid"]]
    assert (
        recorded[1]["override_reason_code"] == "patient-declined"
        and recorded[1]["user_comment_given"] is True
    )
    assert "Example" not in str(recorded)

    # another clinic cannot give feedback on clinic A's card, nor on an unknown one
    r = await network.post(
        network.pathway,
        "/cds-services/trd-patient-view/feedback",
        {"feedback": [body["feedback"][0]]},
        key=network.key_b,
    )
    assert r.status_code == 404 and r.json()["field"] == "feedback[0].card"
    r = await network.post(
        network.pathway,
        "/cds-services/trd-patient-view/feedback",
        {"feedback": [{**body["feedback"][0], "card": str(uuid.uuid4())}]},
    )
    assert r.status_code == 404
    assert len(await feedback_events(network)) == 2


async def test_tenant_isolation_auth_and_audit(network: Network):
    pid = await trd_patient(network)
    r = await network.post(
        network.pathway, "/cds-services/trd-patient-view", patient_view_request(pid), key=network.key_b
    )
    assert r.status_code == 404
    r = await network.pathway.post("/cds-services/trd-patient-view", json=patient_view_request(pid))
    assert r.status_code == 401
    bad = patient_view_request(pid)
    del bad["context"]["patientId"]
    r = await network.post(network.pathway, "/cds-services/trd-patient-view", bad)
    assert r.status_code == 422 and r.json()["field"] == "context.patientId"
    r = await network.post(network.pathway, "/cds-services/trd-order-select", patient_view_request(pid))
    assert r.status_code == 422 and r.json()["field"] == "hook"
    await network.post(network.pathway, "/cds-services/trd-patient-view", patient_view_request(pid))
    rows = [(r["route"], r["status"]) for r in await audit_rows(network.pathway_rt.db, patient_id=pid)]
    assert ("/cds-services/trd-patient-view", 200) in rows and ("/cds-services/trd-patient-view", 404) in rows


async def test_an_imported_patient_is_assessed_as_the_same_patient_entered_over_rest(network: Network):
    from pathway.projection import acted_on
    from tests.integration.intake.test_fhir_import import as_transaction

    pid = await trd_patient(network, suicidal=True)
    everything = (await network.intake.get(f"/fhir/Patient/{pid}/$everything", headers=network.auth())).json()
    r = await network.intake.post(
        "/fhir", json=as_transaction(everything, "imported-trd"), headers=network.auth()
    )
    assert r.status_code == 200, r.text
    imported = r.json()["entry"][0]["response"]["location"].removeprefix("Patient/")
    await network.caught_up(imported)
    by_rest, by_fhir = [
        (await network.pathway.get(f"/v1/patients/{p}/assessment", headers=network.auth())).json()
        for p in (pid, imported)
    ]
    assert by_rest["status"] == "trd" and by_rest["urgency"] == "urgent"
    assert without_ids(acted_on(by_fhir)) == without_ids(acted_on(by_rest))


def without_ids(value):
    """The assessment without the trial ids MGH points cite (each copy has its own ids)."""
    if isinstance(value, dict):
        return {k: without_ids(v) for k, v in value.items() if k != "trial_id"}
    if isinstance(value, list):
        return [without_ids(v) for v in value]
    return value
