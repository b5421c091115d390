"""Issue 16, FHIR R4 read on intake: every resource and Bundle the facade produces is valid
against the R4B models of `fhir.resources` (a well-kept FHIR model library), for a table of
patients covering every trial kind and instrument; tenant isolation and the read audit hold
as on the REST routes."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from fhir.resources.R4B import get_fhir_model_class

from care_shared.audit import audit_rows
from care_shared.auth import Clinic
from care_shared.contracts.intake import AssessmentSource, Instrument, TrialKind
from care_shared.envelope import new_id
from intake import domain
from intake.records import PatientRecords, clinical_rules
from tests.integration.intake.conftest import NOW, Intake

FHIR_JSON = "application/fhir+json"
PHQ9_ITEMS = [2, 2, 1, 2, 1, 1, 2, 1, 1]  # total 13, item 9 = 1


@dataclass
class Chart:
    """A patient to enter over REST: trials (start body, completion body or None), assessments."""

    name: str
    trials: list[tuple[dict, dict | None]] = field(default_factory=list)
    assessments: list[dict] = field(default_factory=list)
    episode: dict = field(default_factory=dict)


CHARTS = [
    Chart(
        "pharmacological",
        trials=[
            (
                {
                    "kind": "antidepressant",
                    "agent": "Zoloft",
                    "dose_mg_per_day": 50,
                    "started_on": "2026-01-10",
                    "baseline": {"instrument": "PHQ-9", "score": 18},
                },
                {
                    "ended_on": "2026-03-01",
                    "max_dose_mg_per_day": 150,
                    "adherence_pct": 90,
                    "outcome": "no_response",
                },
            ),
            (
                {
                    "kind": "combination",
                    "agents": [
                        {"agent": "escitalopram", "dose_mg_per_day": 10},
                        {"agent": "mirtazapine", "dose_mg_per_day": 15},
                    ],
                    "started_on": "2026-03-05",
                },
                {
                    "ended_on": "2026-04-20",
                    "max_doses": [
                        {"agent": "escitalopram", "dose_mg_per_day": 20},
                        {"agent": "mirtazapine", "dose_mg_per_day": 30},
                    ],
                    "adherence_pct": 85,
                    "final": {"instrument": "PHQ-9", "score": 16},
                },
            ),
            (
                {
                    "kind": "augmentation",
                    "agent": "liothyronine",
                    "dose_mg_per_day": 25,
                    "unit": "microgram",
                    "started_on": "2026-04-25",
                },
                None,
            ),
            (
                {
                    "kind": "antidepressant",
                    "agent": "not-in-the-table",
                    "dose_mg_per_day": 10,
                    "started_on": "2026-04-26",
                },
                None,
            ),
        ],
        assessments=[
            {"instrument": "PHQ-9", "items": PHQ9_ITEMS, "taken_on": "2026-04-01"},
            {"instrument": "PHQ-9", "score": 20, "item9": 0, "taken_on": "2026-04-02"},
            {"instrument": "MADRS", "score": 30, "taken_on": "2026-04-03", "suicide_risk": "flagged"},
            {"instrument": "HAM-D-17", "score": 21, "taken_on": "2026-04-04"},
            {"instrument": "WSAS", "score": 25, "taken_on": "2026-04-05"},
        ],
    ),
    Chart(
        "neurostimulation",
        episode={"severity": "severe", "psychotic_features": True, "prior_episodes": 2},
        trials=[
            (
                {"kind": "ect", "started_on": "2026-01-10"},
                {
                    "ended_on": "2026-02-20",
                    "sessions": 9,
                    "outcome": "partial_response",
                    "placement": "right_unilateral",
                },
            ),
            (
                {"kind": "rtms", "started_on": "2026-02-25"},
                {"ended_on": "2026-04-01", "sessions": 25, "outcome": "no_response"},
            ),
            ({"kind": "vns", "started_on": "2026-04-05"}, None),
            ({"kind": "dbs", "started_on": "2026-04-06"}, None),
        ],
    ),
    Chart(
        "rapid-acting and psychotherapy",
        episode={"severity": None, "diagnosis": "bipolar"},
        trials=[
            (
                {
                    "kind": "esketamine",
                    "agent": "esketamine",
                    "dose_mg_per_day": 56,
                    "started_on": "2026-01-10",
                },
                {"ended_on": "2026-02-10", "sessions": 8, "outcome": "response"},
            ),
            (
                {"kind": "ketamine", "started_on": "2026-02-15"},
                {"ended_on": "2026-03-01", "sessions": 6, "outcome": "intolerance"},
            ),
            (
                {"kind": "psychotherapy", "started_on": "2026-03-05"},
                {"ended_on": "2026-05-01", "sessions": 12, "outcome": "remission"},
            ),
        ],
    ),
]


def test_the_table_covers_every_trial_kind_and_instrument():
    kinds = {start["kind"] for chart in CHARTS for start, _ in chart.trials}
    instruments = {a["instrument"] for chart in CHARTS for a in chart.assessments}
    assert kinds == {str(k) for k in TrialKind}
    assert instruments == {str(i) for i in Instrument}


async def enter(intake: Intake, chart: Chart, key: str | None = None) -> str:
    pid = await intake.new_patient(key, country="GB")
    episode = {
        "onset_date": "2026-01-05",
        "severity": "moderate",
        "psychotic_features": False,
        "diagnosis": "mdd",
        **chart.episode,
    }
    r = await intake.post(
        f"/v1/patients/{pid}/episodes", {k: v for k, v in episode.items() if v is not None}, key
    )
    assert r.status_code == 201, r.text
    for start, completion in chart.trials:
        r = await intake.post(f"/v1/patients/{pid}/trials", start, key)
        assert r.status_code == 201, r.text
        if completion:
            r = await intake.post(f"/v1/patients/{pid}/trials/{r.json()['id']}/completion", completion, key)
            assert r.status_code == 201, r.text
    for a in chart.assessments:
        r = await intake.post(f"/v1/patients/{pid}/assessments", a, key)
        assert r.status_code == 201, r.text
    return pid


async def record_self_report(intake: Intake, pid: str, clinic_id: str) -> str:
    """A patient-reported PHQ-9 (the one-time link is another issue): the domain's own command
    with source=patient, appended to the real store."""
    records = PatientRecords(intake.runtime.store)
    clinic = Clinic(clinic_id)
    async with intake.runtime.db.transaction() as session:
        patient, version = await records.load(session, clinic, pid)
        with clinical_rules():
            event = domain.record_assessment(
                patient,
                assessment_id=new_id(),
                instrument=Instrument.PHQ9,
                score=None,
                item9=None,
                taken_on=NOW.date(),
                suicide_risk=None,
                today=NOW.date(),
                items=PHQ9_ITEMS,
                source=AssessmentSource.PATIENT,
            )
        await records.append(session, clinic, pid, version, event)
    return event.assessment_id


def valid(resource: dict) -> dict:
    """The resource parses as its R4B model (unknown elements, wrong types and bad shapes fail)."""
    model = get_fhir_model_class(resource["resourceType"])
    model.model_validate(resource)
    return resource


async def fhir_get(intake: Intake, path: str, key: str | None = None, status: int = 200) -> dict:
    r = await intake.client.get(path, headers=intake.auth(key))
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(FHIR_JSON)
    return valid(r.json())


async def clinic_a_id(intake: Intake) -> str:
    r = await intake.client.get("/fhir/metadata", headers=intake.auth())
    assert r.status_code == 200
    rows = await audit_rows(intake.runtime.db, limit=1)
    return rows[0]["actor_id"]


@pytest.mark.parametrize("chart", CHARTS, ids=lambda c: c.name)
async def test_every_resource_and_bundle_is_valid_r4(intake: Intake, chart: Chart):
    pid = await enter(intake, chart)
    self_report = await record_self_report(intake, pid, await clinic_a_id(intake))

    everything = await fhir_get(intake, f"/fhir/Patient/{pid}/$everything")
    assert everything["type"] == "searchset"
    by_type: dict[str, list[dict]] = {}
    for entry in everything["entry"]:
        resource = valid(entry["resource"])
        assert entry["fullUrl"].endswith(f"/fhir/{resource['resourceType']}/{resource['id']}")
        by_type.setdefault(resource["resourceType"], []).append(resource)
    assert everything["total"] == len(everything["entry"])

    [patient] = by_type["Patient"]
    assert patient == await fhir_get(intake, f"/fhir/Patient/{pid}")
    assert (patient["id"], patient["birthDate"], patient["gender"], patient["address"]) == (
        pid,
        "1980",
        "female",
        [{"country": "GB"}],
    )

    [condition] = by_type["Condition"]
    expected_icd10 = {"pharmacological": "F32.1", "neurostimulation": "F33.3"}.get(chart.name)
    if expected_icd10:
        assert condition["code"]["coding"][0] == {
            "system": "http://hl7.org/fhir/sid/icd-10",
            "code": expected_icd10,
            "display": condition["code"]["text"],
        }
    else:  # bipolar: off the unipolar pathway, no depressive-episode code claimed
        assert "coding" not in condition["code"] and condition["code"]["text"] == "bipolar disorder"

    drug_trials = [
        s for s, _ in chart.trials if s["kind"] in ("antidepressant", "augmentation", "combination")
    ]
    agents = sum(len(s.get("agents", [None])) for s in drug_trials)
    assert len(by_type.get("MedicationStatement", [])) == agents
    assert len(by_type.get("Procedure", [])) == len(chart.trials) - len(drug_trials)
    for statement in by_type.get("MedicationStatement", []):
        assert statement["subject"] == {"reference": f"Patient/{pid}"}
        assert statement["reasonReference"] == [{"reference": f"Condition/{condition['id']}"}]

    observations = by_type["Observation"]
    assert len(observations) == len(chart.assessments) + 1
    [qr] = by_type["QuestionnaireResponse"]  # only the self-report is a questionnaire the patient filled
    assert qr["id"] == self_report and [i["answer"][0]["valueInteger"] for i in qr["item"][:9]] == PHQ9_ITEMS

    # search by patient= gives the same resources, as searchset Bundles
    for kind in ("Condition", "MedicationStatement", "Procedure", "Observation", "QuestionnaireResponse"):
        for reference in (pid, f"Patient/{pid}"):
            bundle = await fhir_get(intake, f"/fhir/{kind}?patient={reference}")
            assert bundle["type"] == "searchset"
            assert [e["resource"] for e in bundle["entry"]] == by_type.get(kind, [])


async def test_the_facts_of_the_pharmacological_chart(intake: Intake):
    pid = await enter(intake, CHARTS[0])
    bundle = await fhir_get(intake, f"/fhir/MedicationStatement?patient={pid}")
    statements = [e["resource"] for e in bundle["entry"]]
    sertraline = statements[0]
    assert sertraline["medicationCodeableConcept"] == {
        "coding": [
            {
                "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                "code": "36437",
                "display": "sertraline",
            },
            {"system": "http://www.whocc.no/atc", "code": "N06AB06", "display": "sertraline"},
        ],
        "text": "sertraline",
    }
    assert sertraline["status"] == "completed"
    assert sertraline["effectivePeriod"] == {"start": "2026-01-10", "end": "2026-03-01"}
    assert [d["doseAndRate"][0]["doseQuantity"]["value"] for d in sertraline["dosage"]] == [50, 150]
    ext = {
        e["url"].rsplit("/", 1)[1]: next(v for k, v in e.items() if k.startswith("value"))
        for e in sertraline["extension"]
    }
    assert (
        ext["outcome"] == "no_response"
        and ext["adherence-pct"] == 90
        and ext["trial-kind"] == "antidepressant"
    )
    liothyronine = statements[3]
    assert liothyronine["status"] == "active"
    assert (
        liothyronine["dosage"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 0.025
    )  # mg, as events carry
    unknown = statements[4]
    assert unknown["medicationCodeableConcept"] == {"text": "not-in-the-table"}

    observations = [
        e["resource"] for e in (await fhir_get(intake, f"/fhir/Observation?patient={pid}"))["entry"]
    ]
    panel = observations[0]
    assert panel["code"]["coding"][0]["code"] == "44249-1" and panel["valueInteger"] == 13
    assert [c["code"]["coding"][0]["code"] for c in panel["component"]] == [
        "44250-9",
        "44255-8",
        "44259-0",
        "44254-1",
        "44251-7",
        "44258-2",
        "44252-5",
        "44253-3",
        "44260-8",
        "44261-6",
    ]
    total_only = observations[1]
    assert total_only["code"]["coding"][0]["code"] == "44261-6"
    assert total_only["component"] == [
        {"code": {"coding": [{"system": "http://loinc.org", "code": "44260-8"}]}, "valueInteger": 0}
    ]
    madrs = observations[2]
    assert madrs["code"] == {"text": "MADRS"} and madrs["component"][0]["valueCodeableConcept"] == {
        "text": "flagged"
    }


async def test_another_clinics_patient_is_a_404_operation_outcome(intake: Intake):
    pid = await enter(intake, CHARTS[1])
    for path in (
        f"/fhir/Patient/{pid}",
        f"/fhir/Patient/{pid}/$everything",
        f"/fhir/Observation?patient={pid}",
        "/fhir/Patient/no-such-id",
    ):
        outcome = await fhir_get(intake, path, key=intake.key_b, status=404)
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["code"] == "not-found"
    mine = await fhir_get(intake, "/fhir/Patient", key=intake.key_b)
    assert mine["total"] == 0
    theirs = await fhir_get(intake, "/fhir/Patient")
    assert [e["resource"]["id"] for e in theirs["entry"]] == [pid]


async def test_patient_search_by_identifier(intake: Intake):
    pid = await enter(intake, CHARTS[2])
    patient = await fhir_get(intake, f"/fhir/Patient/{pid}")
    identifier = patient["identifier"][0]
    for value in (identifier["value"], f"{identifier['system']}|{identifier['value']}"):
        found = await fhir_get(intake, f"/fhir/Patient?identifier={value}")
        assert [e["resource"]["id"] for e in found["entry"]] == [pid]
    assert (await fhir_get(intake, "/fhir/Patient?identifier=nobody"))["total"] == 0


async def test_a_search_without_patient_is_refused_naming_the_parameter(intake: Intake):
    outcome = await fhir_get(intake, "/fhir/Observation", status=400)
    assert outcome["issue"][0]["expression"] == ["Observation.subject"]


async def test_no_key_is_a_401_before_anything_is_read(intake: Intake):
    for path in ("/fhir/metadata", "/fhir/Patient", "/fhir/Patient/x/$everything"):
        r = await intake.client.get(path)
        assert r.status_code == 401, path


async def test_the_capability_statement(intake: Intake):
    cs = await fhir_get(intake, "/fhir/metadata")
    assert cs["fhirVersion"] == "4.0.1" and cs["format"] == [FHIR_JSON]
    kinds = {r["type"] for r in cs["rest"][0]["resource"]}
    assert kinds == {
        "Patient",
        "Condition",
        "MedicationStatement",
        "Procedure",
        "Observation",
        "QuestionnaireResponse",
    }


async def test_every_fhir_read_is_in_the_access_audit(intake: Intake):
    pid = await enter(intake, CHARTS[1])
    paths = [
        f"/fhir/Patient/{pid}",
        f"/fhir/Patient/{pid}/$everything",
        f"/fhir/Procedure?patient={pid}",
        f"/fhir/Condition?patient=Patient/{pid}",
    ]
    for path in paths:
        await fhir_get(intake, path)
    await fhir_get(intake, f"/fhir/Patient/{pid}", key=intake.key_b, status=404)
    rows = [r for r in await audit_rows(intake.runtime.db, patient_id=pid) if r["route"].startswith("/fhir")]
    assert sorted((r["route"], r["status"]) for r in rows) == sorted(
        [
            ("/fhir/Patient/{patient_id}", 200),
            ("/fhir/Patient/{patient_id}/$everything", 200),
            ("/fhir/Procedure", 200),
            ("/fhir/Condition", 200),
            ("/fhir/Patient/{patient_id}", 404),
        ]
    )
    assert len({r["actor_id"] for r in rows}) == 2  # clinic A's reads and clinic B's refused one
