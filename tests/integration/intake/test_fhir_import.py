"""Issue 16, FHIR import: a transaction Bundle becomes the same intake commands as the REST
routes (same validation, same idempotency), all or nothing; errors are an OperationOutcome
naming the entry and the element. Round trip: what the facade writes, imported, reads back
with the same facts."""

from __future__ import annotations

import copy
import uuid

import pytest

from tests.integration.intake.conftest import Intake
from tests.integration.intake.test_fhir_read import CHARTS, Chart, enter, fhir_get, valid

FHIR_JSON = "application/fhir+json"


def as_transaction(everything: dict, external_id: str) -> dict:
    """The $everything Bundle as a transaction Bundle for a new patient: the Patient gets a
    urn:uuid fullUrl and a new identifier; every subject points at it."""
    patient_url = f"urn:uuid:{uuid.uuid4()}"
    entries = []
    for e in everything["entry"]:
        r = copy.deepcopy(e["resource"])
        if r["resourceType"] == "QuestionnaireResponse":
            continue  # the Observation carries the same answers
        if r["resourceType"] == "Patient":
            r["identifier"][0]["value"] = external_id
            entries.append(
                {"fullUrl": patient_url, "resource": r, "request": {"method": "POST", "url": "Patient"}}
            )
            continue
        r["subject"] = {"reference": patient_url}
        entries.append(
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": r,
                "request": {"method": "POST", "url": r["resourceType"]},
            }
        )
    return valid({"resourceType": "Bundle", "type": "transaction", "entry": entries})


def facts(everything: dict) -> list[dict]:
    """The resources without what names this copy: ids, references, the identifier's value and
    the trial ids that tie a combination's statements together."""
    out = []
    for e in everything["entry"]:
        r = copy.deepcopy(e["resource"])
        r.pop("id", None)
        for key in ("subject", "reasonReference", "source"):
            r.pop(key, None)
        if r["resourceType"] == "Patient":
            r["identifier"][0].pop("value")
            r["identifier"][0].pop("system")
        r["extension"] = [x for x in r.get("extension", []) if not x["url"].endswith("/trial-id")]
        out.append(r)
    return out


async def import_bundle(
    intake: Intake, bundle: dict, key: str | None = None, status: int = 200, **headers: str
) -> dict:
    r = await intake.client.post(
        "/fhir", json=bundle, headers={**intake.auth(key), "Content-Type": FHIR_JSON, **headers}
    )
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(FHIR_JSON)
    return valid(r.json())


@pytest.mark.parametrize("chart", CHARTS, ids=lambda c: c.name)
async def test_round_trip_carries_the_same_facts(intake: Intake, chart: Chart):
    original = await fhir_get(intake, f"/fhir/Patient/{await enter(intake, chart)}/$everything")
    answer = await import_bundle(intake, as_transaction(original, "imported-1"))
    assert answer["type"] == "transaction-response"
    new_id = answer["entry"][0]["response"]["location"].removeprefix("Patient/")
    imported = await fhir_get(intake, f"/fhir/Patient/{new_id}/$everything")
    assert facts(imported) == facts(original)


async def test_a_bundle_with_one_bad_entry_stores_nothing_and_names_it(intake: Intake):
    original = await fhir_get(intake, f"/fhir/Patient/{await enter(intake, CHARTS[0])}/$everything")
    before = await intake.stored_counts()
    bundle = as_transaction(original, "bad-1")
    last = len(bundle["entry"]) - 1
    assert bundle["entry"][last]["resource"]["resourceType"] == "Observation"
    bundle["entry"][last]["resource"]["valueInteger"] = 99  # WSAS is 0-40
    outcome = await import_bundle(intake, bundle, status=422)
    [issue] = outcome["issue"]
    assert issue["expression"] == [f"Bundle.entry[{last}].resource.valueInteger"], issue
    assert await intake.stored_counts() == before  # not the Patient, not the earlier entries
    assert (await fhir_get(intake, "/fhir/Patient?identifier=bad-1"))["total"] == 0

    bundle = as_transaction(original, "bad-2")
    statement = next(
        i for i, e in enumerate(bundle["entry"]) if e["resource"]["resourceType"] == "MedicationStatement"
    )
    bundle["entry"][statement]["resource"]["dosage"][0]["doseAndRate"][0]["doseQuantity"]["value"] = (
        5000  # sertraline 5 g
    )
    outcome = await import_bundle(intake, bundle, status=422)
    assert outcome["issue"][0]["expression"] == [f"Bundle.entry[{statement}].resource.dosage"]
    assert await intake.stored_counts() == before


async def test_refusals_name_the_element(intake: Intake):
    patient = {
        "resourceType": "Patient",
        "identifier": [{"value": "x"}],
        "gender": "female",
        "birthDate": "1980",
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"fullUrl": "urn:uuid:p", "resource": patient}],
    }
    outcome = await import_bundle(intake, bundle, status=422)  # no time zone
    assert outcome["issue"][0]["expression"] == ["Bundle.entry[0].resource.extension"]
    outcome = await import_bundle(intake, {**bundle, "type": "batch"}, status=400)
    assert outcome["issue"][0]["expression"] == ["Bundle.type"]
    orphan = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "WSAS"},
        "subject": {"reference": "Patient/elsewhere"},
    }
    outcome = await import_bundle(
        intake, {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": orphan}]}, status=422
    )
    assert outcome["issue"][0]["expression"] == ["Bundle.entry[0].resource.subject"]
    r = await intake.client.post("/fhir", content=b'{"resourceType": NaN}', headers=intake.auth())
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome"


async def test_the_same_bundle_twice(intake: Intake):
    original = await fhir_get(intake, f"/fhir/Patient/{await enter(intake, CHARTS[1])}/$everything")
    bundle = as_transaction(original, "twice-1")
    first = await import_bundle(intake, bundle, **{"Idempotency-Key": "bundle-1"})
    count = await intake.stored_counts()
    assert (
        await import_bundle(intake, bundle, **{"Idempotency-Key": "bundle-1"}) == first
    )  # the first answer, nothing again
    assert await intake.stored_counts() == count
    outcome = await import_bundle(intake, bundle, status=409)  # without the key: the patient exists already
    assert outcome["issue"][0]["code"] == "conflict" and outcome["issue"][0]["expression"] == [
        "Bundle.entry[0].resource.identifier"
    ]
    assert await intake.stored_counts() == count


async def test_a_malformed_resource_is_a_400_naming_its_entry(intake: Intake):
    patient = {"resourceType": "Patient", "identifier": "not-a-list", "gender": "female", "birthDate": "1980"}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": patient}]}
    r = await intake.client.post("/fhir", json=bundle, headers=intake.auth())
    assert r.status_code == 400 and r.json()["issue"][0]["expression"] == ["Bundle.entry[0].resource"]
