"""A patient's events as FHIR R4 resources (pure: events in, JSON-ready dicts out).

Mapping (issue 16, CLINICAL.md 1):
- PatientRegistered -> Patient (the clinic's external id as identifier; birth year only).
- EpisodeOpened/Revised -> Condition, coded ICD-10 F32/F33 by severity and psychotic features.
- a pharmacological trial -> one MedicationStatement per agent (RxNorm where verified, ATC).
- any other trial (psychotherapy, esketamine, ketamine, ECT, rTMS, VNS, DBS) -> Procedure.
- AssessmentRecorded -> Observation (the PHQ-9 panel with its nine items as components
  where items exist); a patient-reported one also -> QuestionnaireResponse.
Facts FHIR has no element for (trial kind, outcome, adherence, sessions, ECT placement,
clinician suicide risk) travel in extensions under EXT, so a read-back carries every fact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from care_shared import codes, drugs
from care_shared.contracts import EventData
from care_shared.contracts.intake import (
    PHQ9_ITEM_LOINC,
    PHQ9_PANEL_LOINC,
    PHQ9_TOTAL_LOINC,
    AgentDose,
    AssessmentRecorded,
    AssessmentSource,
    EpisodeOpened,
    EpisodeRevised,
    Instrument,
    PatientRegistered,
    TrialCompleted,
    TrialKind,
    TrialStarted,
)

EXT = "https://trd-care.example/fhir/StructureDefinition/"
IDENTIFIER_SYSTEM = "https://trd-care.example/fhir/clinic/{clinic_id}/patient"
PHQ9_QUESTIONNAIRE = "http://loinc.org/q/44249-1"
PHARMACOLOGICAL = frozenset({TrialKind.ANTIDEPRESSANT, TrialKind.AUGMENTATION, TrialKind.COMBINATION})
# FHIR administrative gender: intersex has no code of its own there.
GENDER = {"female": "female", "male": "male", "intersex": "other", "unknown": "unknown"}


@dataclass
class Chart:
    """What the resources are built from: the patient's facts in stream order."""

    registered: PatientRegistered
    episodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    trials: dict[str, tuple[TrialStarted, TrialCompleted | None]] = field(default_factory=dict)
    assessments: list[AssessmentRecorded] = field(default_factory=list)


def chart_of(history: list[EventData]) -> Chart | None:
    chart: Chart | None = None
    for e in history:
        match e:
            case PatientRegistered():
                chart = Chart(e)
            case EpisodeOpened() if chart:
                chart.episodes[e.episode_id] = e.model_dump()
            case EpisodeRevised() if chart and e.episode_id in chart.episodes:
                chart.episodes[e.episode_id].update(e.model_dump(exclude_none=True))
            case TrialStarted() if chart:
                chart.trials[e.trial_id] = (e, None)
            case TrialCompleted() if chart and e.trial_id in chart.trials:
                chart.trials[e.trial_id] = (chart.trials[e.trial_id][0], e)
            case AssessmentRecorded() if chart:
                chart.assessments.append(e)
    return chart


def _ref(kind: str, rid: str) -> dict[str, str]:
    return {"reference": f"{kind}/{rid}"}


def _ext(name: str, value_key: str, value: Any) -> dict[str, Any]:
    return {"url": EXT + name, value_key: value}


def patient(chart: Chart) -> dict[str, Any]:
    p = chart.registered
    out: dict[str, Any] = {
        "resourceType": "Patient",
        "id": p.patient_id,
        "identifier": [{"system": IDENTIFIER_SYSTEM.format(clinic_id=p.clinic_id), "value": p.external_id}],
        "gender": GENDER[p.sex],
        "birthDate": f"{p.birth_year:04d}",  # FHIR date allows a year alone: all intake keeps
        "extension": [_ext("timezone", "valueCode", p.timezone), _ext("sex", "valueCode", str(p.sex))],
    }
    if p.country:
        out["address"] = [{"country": p.country}]
    return out


def condition(chart: Chart, episode: dict[str, Any]) -> dict[str, Any]:
    recurrent = bool(episode.get("prior_episodes"))
    coded = codes.episode_code(episode.get("severity"), episode["psychotic_features"], recurrent)
    diagnosis = str(episode["diagnosis"])
    code: dict[str, Any]
    if diagnosis == "mdd":
        code = {
            "coding": [{"system": codes.ICD10, "code": coded["icd10"], "display": coded["display"]}],
            "text": coded["display"],
        }
    else:  # off the unipolar pathway (CLINICAL.md 1): no depressive-episode code claimed
        code = {"text": "bipolar disorder" if diagnosis == "bipolar" else "diagnosis revised: review"}
    extension = [
        _ext("diagnosis", "valueCode", diagnosis),
        _ext("psychotic-features", "valueBoolean", episode["psychotic_features"]),
    ]
    if episode.get("severity"):
        extension.append(_ext("severity", "valueCode", str(episode["severity"])))
    for name, key in (("prior-episodes", "prior_episodes"), ("age-at-first-onset", "age_at_first_onset")):
        if episode.get(key) is not None:
            extension.append(_ext(name, "valueInteger", episode[key]))
    out: dict[str, Any] = {
        "resourceType": "Condition",
        "id": episode["episode_id"],
        "extension": extension,
        "clinicalStatus": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
            ]
        },
        "verificationStatus": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}
            ]
        },
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                        "code": "problem-list-item",
                    }
                ]
            }
        ],
        "code": code,
        "subject": _ref("Patient", chart.registered.patient_id),
        "onsetDateTime": episode["onset_date"].isoformat(),
    }
    if episode.get("severity"):
        out["severity"] = {"text": str(episode["severity"])}
    return out


def _medication(agent: str) -> dict[str, Any]:
    coding = []
    row = codes.agent_codes(agent)
    if row and row["verified"]:
        coding.append({"system": codes.RXNORM, "code": row["rxnorm"], "display": agent})
    if drug := drugs.lookup(agent):
        coding.append({"system": codes.ATC, "code": drug.atc, "display": agent})
    return {"coding": coding, "text": agent} if coding else {"text": agent}


def _dose(mg: float, text: str, sequence: int) -> dict[str, Any]:
    return {
        "sequence": sequence,
        "text": text,
        "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
        "doseAndRate": [
            {"doseQuantity": {"value": mg, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}}
        ],
    }


def _trial_extensions(started: TrialStarted, completed: TrialCompleted | None) -> list[dict[str, Any]]:
    out = [
        _ext("trial-id", "valueString", started.trial_id),
        _ext("trial-kind", "valueCode", str(started.kind)),
    ]
    if started.baseline:
        out.append(_ext("baseline", "valueString", f"{started.baseline.instrument}:{started.baseline.score}"))
    if completed:
        if completed.outcome:
            out.append(_ext("outcome", "valueCode", str(completed.outcome)))
        if completed.adherence_pct is not None:
            out.append(_ext("adherence-pct", "valueDecimal", completed.adherence_pct))
        if completed.sessions is not None:
            out.append(_ext("sessions", "valueInteger", completed.sessions))
        if completed.final:
            out.append(_ext("final", "valueString", f"{completed.final.instrument}:{completed.final.score}"))
        if completed.placement:
            out.append(_ext("ect-placement", "valueCode", str(completed.placement)))
    return out


def _period(started: TrialStarted, completed: TrialCompleted | None) -> dict[str, str]:
    period = {"start": started.started_on.isoformat()}
    if completed:
        period["end"] = completed.ended_on.isoformat()
    return period


def _max_dose(
    agent: AgentDose, index: int, started: TrialStarted, completed: TrialCompleted | None
) -> float | None:
    if completed is None:
        return None
    for m in completed.max_doses:
        if m.agent == agent.agent and m.dose_mg_per_day is not None:
            return m.dose_mg_per_day
    return completed.max_dose_mg_per_day if len(started.agents) == 1 else None


def medication_statements(
    chart: Chart, started: TrialStarted, completed: TrialCompleted | None
) -> list[dict[str, Any]]:
    """One per agent: a combination's agents are one statement each, the trial id in
    `trial-id` ties them (ids `<trial id>-<n>`)."""
    out = []
    for n, agent in enumerate(started.agents, start=1):
        dosage = []
        if agent.dose_mg_per_day is not None:
            dosage.append(_dose(agent.dose_mg_per_day, f"starting dose {agent.dose_mg_per_day:g} mg/day", 1))
        if (top := _max_dose(agent, n, started, completed)) is not None:
            dosage.append(_dose(top, f"maximum dose {top:g} mg/day", 2))
        statement: dict[str, Any] = {
            "resourceType": "MedicationStatement",
            "id": f"{started.trial_id}-{n}",
            "extension": _trial_extensions(started, completed),
            "status": "completed" if completed else "active",
            "category": {"text": str(started.kind)},
            "medicationCodeableConcept": _medication(agent.agent),
            "subject": _ref("Patient", chart.registered.patient_id),
            "effectivePeriod": _period(started, completed),
            "reasonReference": [_ref("Condition", started.episode_id)],
        }
        if dosage:
            statement["dosage"] = dosage
        out.append(statement)
    return out


def procedure(chart: Chart, started: TrialStarted, completed: TrialCompleted | None) -> dict[str, Any]:
    row = codes.modality_code(str(started.kind)) or {"display": str(started.kind)}
    code: dict[str, Any] = {"text": row["display"]}
    if row.get("verified") and row.get("snomed"):
        code["coding"] = [{"system": codes.SNOMED, "code": row["snomed"], "display": row["display"]}]
    out: dict[str, Any] = {
        "resourceType": "Procedure",
        "id": started.trial_id,
        "extension": _trial_extensions(started, completed),
        "status": "completed" if completed else "in-progress",
        "code": code,
        "subject": _ref("Patient", chart.registered.patient_id),
        "performedPeriod": _period(started, completed),
        "reasonReference": [_ref("Condition", started.episode_id)],
    }
    if started.agents:  # esketamine, ketamine: the agent used
        out["usedCode"] = [_medication(a.agent) for a in started.agents]
    if completed and completed.outcome:
        out["outcome"] = {"text": str(completed.outcome)}
    return out


def _loinc(code: str, display: str | None = None) -> dict[str, Any]:
    coding = {"system": codes.LOINC, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding], **({"text": display} if display else {})}


def observation(chart: Chart, a: AssessmentRecorded) -> dict[str, Any]:
    row = codes.instrument_codes(str(a.instrument))
    if a.instrument == Instrument.PHQ9:
        code = _loinc(PHQ9_PANEL_LOINC if a.items else PHQ9_TOTAL_LOINC, row["display"])
    elif row.get("verified") and row.get("loinc_total"):
        code = _loinc(row["loinc_total"], row["display"])
    else:
        code = {"text": str(a.instrument)}
    components = []
    if a.items:
        components = [
            {"code": _loinc(c), "valueInteger": v} for c, v in zip(PHQ9_ITEM_LOINC, a.items, strict=True)
        ]
        components.append({"code": _loinc(PHQ9_TOTAL_LOINC), "valueInteger": a.score})
    elif a.item9 is not None:
        components.append({"code": _loinc(PHQ9_ITEM_LOINC[-1]), "valueInteger": a.item9})
    if a.suicide_risk:
        components.append(
            {
                "code": {"text": "clinician-rated suicide risk"},
                "valueCodeableConcept": {"text": str(a.suicide_risk)},
            }
        )
    out: dict[str, Any] = {
        "resourceType": "Observation",
        "id": a.assessment_id,
        "extension": [
            _ext("instrument", "valueCode", str(a.instrument)),
            _ext("source", "valueCode", str(a.source)),
        ],
        "status": "final",
        "category": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "survey"}
                ]
            }
        ],
        "code": code,
        "subject": _ref("Patient", chart.registered.patient_id),
        "effectiveDateTime": a.taken_on.isoformat(),
        "valueInteger": a.score,
    }
    if components:
        out["component"] = components
    return out


def questionnaire_response(chart: Chart, a: AssessmentRecorded) -> dict[str, Any] | None:
    """Only a patient-reported PHQ-9 with its nine answers is a questionnaire the patient filled."""
    if a.source != AssessmentSource.PATIENT or not a.items:
        return None
    return {
        "resourceType": "QuestionnaireResponse",
        "id": a.assessment_id,
        "questionnaire": PHQ9_QUESTIONNAIRE,
        "status": "completed",
        "subject": _ref("Patient", chart.registered.patient_id),
        "authored": a.taken_on.isoformat(),
        "source": _ref("Patient", chart.registered.patient_id),
        "item": [
            {"linkId": c, "answer": [{"valueInteger": v}]}
            for c, v in zip(PHQ9_ITEM_LOINC, a.items, strict=True)
        ]
        + [{"linkId": PHQ9_TOTAL_LOINC, "answer": [{"valueInteger": a.score}]}],
    }


def resources(chart: Chart) -> dict[str, list[dict[str, Any]]]:
    """Every resource of the patient, by type, in stream order."""
    out: dict[str, list[dict[str, Any]]] = {
        "Patient": [patient(chart)],
        "Condition": [condition(chart, e) for e in chart.episodes.values()],
        "MedicationStatement": [],
        "Procedure": [],
        "Observation": [observation(chart, a) for a in chart.assessments],
        "QuestionnaireResponse": [q for a in chart.assessments if (q := questionnaire_response(chart, a))],
    }
    for started, completed in chart.trials.values():
        if started.kind in PHARMACOLOGICAL:
            out["MedicationStatement"] += medication_statements(chart, started, completed)
        else:
            out["Procedure"].append(procedure(chart, started, completed))
    return out


SEARCHABLE = ("Condition", "MedicationStatement", "Procedure", "Observation", "QuestionnaireResponse")


def searchset(base: str, found: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(found),
        "entry": [
            {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}}
            for r in found
        ],
    }


def operation_outcome(
    status: int, diagnostics: str, expression: str | None = None, code: str | None = None
) -> dict[str, Any]:
    issue: dict[str, Any] = {
        "severity": "error",
        "code": code
        or {
            400: "invalid",
            401: "login",
            403: "forbidden",
            404: "not-found",
            409: "conflict",
            422: "invalid",
        }.get(status, "exception"),
        "diagnostics": diagnostics,
    }
    if expression:
        issue["expression"] = [expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def capability_statement(today: date) -> dict[str, Any]:
    def resource(kind: str, search: bool) -> dict[str, Any]:
        r: dict[str, Any] = {"type": kind, "interaction": [{"code": "read"}] if kind == "Patient" else []}
        if search:
            r["interaction"].append({"code": "search-type"})
            r["searchParam"] = [{"name": "patient", "type": "reference"}]
        if kind == "Patient":
            r["interaction"].append({"code": "search-type"})
            r["searchParam"] = [{"name": "identifier", "type": "token"}, {"name": "_id", "type": "token"}]
            r["operation"] = [
                {
                    "name": "everything",
                    "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                }
            ]
        return r

    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": today.isoformat(),
        "kind": "instance",
        "software": {"name": "TRD Care Network intake"},
        "implementation": {"description": "FHIR R4 read facade over intake's patient records"},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json"],
        "rest": [
            {
                "mode": "server",
                "interaction": [{"code": "transaction"}],
                "security": {
                    "description": "Authorization: Bearer <clinic API key>; a clinic sees only its own patients"
                },
                "resource": [resource("Patient", False)] + [resource(k, True) for k in SEARCHABLE],
            }
        ],
    }
