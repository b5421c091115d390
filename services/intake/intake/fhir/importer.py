"""FHIR import (issue 16): a transaction Bundle (Patient, Condition, MedicationStatement,
Procedure, Observation) becomes the same intake commands as the REST routes: the same request
models validate each entry, the same domain functions decide, in ONE transaction, so a Bundle
with any error stores nothing (all or nothing). An error names the entry and the element.

The Bundle's shape is the one `resources` writes (read back, it imports), plus what an EHR
sends without our extensions: RxNorm or a name for the agent, ICD-10 F32.3/F33.3 for a severe
episode with psychotic features, the PHQ-9 panel's item components.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from care_shared import codes
from care_shared.auth import Clinic
from care_shared.contracts.intake import PHQ9_ITEM_LOINC, PHQ9_PANEL_LOINC, PHQ9_TOTAL_LOINC, AssessmentSource
from care_shared.envelope import new_id
from care_shared.problems import ProblemError
from intake import domain
from intake.api import AssessmentIn, CompletionIn, EpisodeIn, PatientIn, TrialIn, register
from intake.fhir.resources import EXT, GENDER, PHARMACOLOGICAL
from intake.records import PatientRecords, clinical_rules

SEX = {v: k for k, v in GENDER.items() if k != "intersex"} | {"other": "intersex"}
RXNORM_AGENTS = {row["rxnorm"]: agent for agent, row in codes.table()["agents"].items() if row["verified"]}
MAX_ENTRIES = 200


class EntryError(Exception):
    """An entry that cannot be imported: `expression` is its FHIRPath (Bundle.entry[i]...)."""

    def __init__(self, status: int, diagnostics: str, expression: str) -> None:
        super().__init__(diagnostics)
        self.status, self.diagnostics, self.expression = status, diagnostics, expression


def _ext(resource: dict[str, Any], name: str) -> Any:
    for e in resource.get("extension") or []:
        if isinstance(e, dict) and e.get("url") == EXT + name:
            return next((v for k, v in e.items() if k.startswith("value")), None)
    return None


def _where(i: int, element: str | None = None) -> str:
    return f"Bundle.entry[{i}].resource" + (f".{element}" if element else "")


# REST model fields -> the FHIR element that carried them, for naming the element in errors.
ELEMENTS = {
    "Patient": {
        "external_id": "identifier",
        "birth_year": "birthDate",
        "sex": "gender",
        "timezone": "extension",
        "country": "address",
    },
    "Condition": {
        "onset_date": "onsetDateTime",
        "severity": "severity",
        "prior_episodes": "extension",
        "age_at_first_onset": "extension",
    },
    "MedicationStatement": {
        "agent": "medicationCodeableConcept",
        "agents": "medicationCodeableConcept",
        "dose_mg_per_day": "dosage",
        "started_on": "effectivePeriod.start",
        "ended_on": "effectivePeriod.end",
        "max_dose_mg_per_day": "dosage",
        "max_doses": "dosage",
        "adherence_pct": "extension",
        "sessions": "extension",
        "outcome": "extension",
    },
    "Procedure": {
        "started_on": "performedPeriod.start",
        "ended_on": "performedPeriod.end",
        "sessions": "extension",
        "outcome": "outcome",
        "placement": "extension",
    },
    "Observation": {
        "score": "valueInteger",
        "items": "component",
        "item9": "component",
        "taken_on": "effectiveDateTime",
        "instrument": "code",
        "suicide_risk": "component",
    },
}


def _element(kind: str, field_path: str) -> str:
    head = field_path.split(".")[0].split("[")[0]
    return ELEMENTS.get(kind, {}).get(head, head)


def _model(model, data: dict[str, Any], kind: str, i: int):
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or kind
        raise EntryError(422, f"{loc}: {err['msg']}", _where(i, _element(kind, loc))) from None


def _score(text: Any) -> dict[str, Any] | None:
    if not isinstance(text, str) or ":" not in text:
        return None
    instrument, _, score = text.rpartition(":")
    return {"instrument": instrument, "score": int(score) if score.lstrip("-").isdigit() else score}


def _agent(concept: dict[str, Any]) -> str | None:
    for c in concept.get("coding") or []:
        if c.get("system") == codes.RXNORM and (agent := RXNORM_AGENTS.get(str(c.get("code")))):
            return agent
    return concept.get("text") or next(
        (c.get("display") for c in concept.get("coding") or [] if c.get("display")), None
    )


def _dose(statement: dict[str, Any], sequence: int) -> float | None:
    """The daily dose of `sequence` (1 starting, 2 maximum), in mg as `resources` writes it."""
    for d in statement.get("dosage") or []:
        if d.get("sequence", 1) == sequence:
            try:
                return d["doseAndRate"][0]["doseQuantity"]["value"]
            except (KeyError, IndexError, TypeError):
                return None
    return None


@dataclass
class Trial:
    """One trial, gathered from its MedicationStatements (one per agent) or its Procedure."""

    entry: int
    kind: str
    resource: dict[str, Any]
    agents: list[dict[str, Any]] = field(default_factory=list)
    max_doses: list[dict[str, Any]] = field(default_factory=list)


def _reference(resource: dict[str, Any], i: int, ids: dict[str, str]) -> str:
    ref = (resource.get("subject") or {}).get("reference")
    if not isinstance(ref, str) or ref not in ids:
        raise EntryError(422, "subject must reference the Bundle's Patient", _where(i, "subject"))
    return ids[ref]


async def import_bundle(session, rt, clinic: Clinic, bundle: dict[str, Any]) -> dict[str, Any]:
    """Every entry as intake commands in `session`'s transaction; raises EntryError naming the
    first entry that fails (the caller's transaction then stores nothing)."""
    cursor: list[int] = []  # the entry being read, for naming a malformed one
    try:
        return await _import(session, rt, clinic, bundle, cursor)
    except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:
        # A resource of the wrong shape (a string where an object belongs, ...): name the entry.
        where = f"Bundle.entry[{cursor[-1]}].resource" if cursor else "Bundle"
        raise EntryError(400, f"malformed resource ({type(exc).__name__})", where) from None


async def _import(session, rt, clinic: Clinic, bundle: dict[str, Any], cursor: list[int]) -> dict[str, Any]:
    if (
        not isinstance(bundle, dict)
        or bundle.get("resourceType") != "Bundle"
        or bundle.get("type") != "transaction"
    ):
        raise EntryError(400, "send a Bundle of type transaction", "Bundle.type")
    entries = bundle.get("entry") or []
    if not isinstance(entries, list) or not entries or len(entries) > MAX_ENTRIES:
        raise EntryError(400, f"a transaction Bundle has 1 to {MAX_ENTRIES} entries", "Bundle.entry")
    records = PatientRecords(rt.store)
    ids: dict[str, str] = {}  # fullUrl or Patient/<id> -> the new patient id
    results: list[dict[str, Any]] = []
    trials: dict[str, Trial] = {}
    later: list[tuple[int, dict[str, Any]]] = []

    for i, entry in enumerate(entries):
        cursor.append(i)
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or "resourceType" not in resource:
            raise EntryError(400, "each entry carries a resource", f"Bundle.entry[{i}].resource")
        kind = resource["resourceType"]
        if kind == "Patient":
            identifier = (resource.get("identifier") or [{}])[0]
            data = {
                "external_id": identifier.get("value"),
                "birth_year": int(str(resource.get("birthDate", ""))[:4])
                if str(resource.get("birthDate", ""))[:4].isdigit()
                else None,
                "sex": SEX.get(resource.get("gender"), resource.get("gender")),
                "timezone": _ext(resource, "timezone"),
                "country": ((resource.get("address") or [{}])[0]).get("country"),
            }
            body = _model(PatientIn, data, kind, i)
            out = await _run(register(session, rt, clinic, body), i, kind)
            for key in (
                entry.get("fullUrl"),
                f"Patient/{resource.get('id')}" if resource.get("id") else None,
            ):
                if key:
                    ids[key] = out["id"]
            results.append({"status": "201 Created", "location": f"Patient/{out['id']}"})
        elif kind in ("Condition", "MedicationStatement", "Procedure", "Observation"):
            later.append((i, resource))
            results.append({})
        else:
            raise EntryError(
                422,
                f"{kind} is not imported (Patient, Condition, MedicationStatement, Procedure, Observation)",
                _where(i, "resourceType"),
            )

    async def apply(patient_id: str, i: int, kind: str, decide) -> str:
        patient, version = await records.load(session, clinic, patient_id)
        today = domain.today_for(patient.timezone, rt.clock.now())
        try:
            with clinical_rules():
                event, rid = decide(patient, today)
        except ProblemError as exc:
            raise EntryError(exc.status, exc.detail, _where(i, _element(kind, exc.field or ""))) from None
        await records.append(session, clinic, patient_id, version, event)
        return rid

    episodes: dict[str, str] = {}  # Condition reference -> episode id
    for i, resource in later:
        cursor.append(i)
        kind = resource["resourceType"]
        pid = _reference(resource, i, ids)
        if kind == "Condition":
            severity = _ext(resource, "severity") or (resource.get("severity") or {}).get("text")
            icd = next(
                (
                    c.get("code")
                    for c in (resource.get("code") or {}).get("coding") or []
                    if c.get("system") == codes.ICD10
                ),
                None,
            )
            psychotic = _ext(resource, "psychotic-features")
            data = {
                "onset_date": resource.get("onsetDateTime"),
                "severity": severity,
                "psychotic_features": psychotic if psychotic is not None else icd in ("F32.3", "F33.3"),
                "diagnosis": _ext(resource, "diagnosis") or "mdd",
                "prior_episodes": _ext(resource, "prior-episodes"),
                "age_at_first_onset": _ext(resource, "age-at-first-onset"),
            }
            body = _model(EpisodeIn, {k: v for k, v in data.items() if v is not None}, kind, i)
            episode_id = new_id()
            await apply(
                pid,
                i,
                kind,
                lambda p, today, b=body, e=episode_id: (
                    domain.open_episode(
                        p,
                        episode_id=e,
                        onset_date=b.onset_date,
                        severity=b.severity,
                        psychotic_features=b.psychotic_features,
                        diagnosis=b.diagnosis,
                        today=today,
                        prior_episodes=b.prior_episodes,
                        age_at_first_onset=b.age_at_first_onset,
                    ),
                    e,
                ),
            )
            for key in (f"Condition/{resource.get('id')}", *(u for u in [entries[i].get("fullUrl")] if u)):
                episodes[key] = episode_id
            results[i] = {"status": "201 Created", "location": f"Condition/{episode_id}"}
        elif kind == "Observation":
            await _observation(apply, pid, i, resource)
            results[i] = {"status": "201 Created"}
        else:
            default_kind = "antidepressant" if kind == "MedicationStatement" else None
            trial_kind = _ext(resource, "trial-kind") or default_kind
            if kind == "Procedure" and trial_kind in PHARMACOLOGICAL:
                raise EntryError(422, "a drug trial is a MedicationStatement", _where(i, "extension"))
            key = f"{pid}/{_ext(resource, 'trial-id') or resource.get('id') or i}"
            trial = trials.setdefault(key, Trial(i, trial_kind, resource))
            if kind == "MedicationStatement":
                agent = _agent(resource.get("medicationCodeableConcept") or {})
                if not agent:
                    raise EntryError(
                        422, "name the agent (RxNorm code or text)", _where(i, "medicationCodeableConcept")
                    )
                trial.agents.append({"agent": agent, "dose_mg_per_day": _dose(resource, 1), "unit": "mg"})
                if (top := _dose(resource, 2)) is not None:
                    trial.max_doses.append({"agent": agent, "dose_mg_per_day": top, "unit": "mg"})
            results[i] = {"status": "201 Created"}

    for key, trial in trials.items():
        cursor.append(trial.entry)
        await _trial(apply, key.split("/")[0], trial)
    return {
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": [{"response": r} for r in results],
    }


async def _run(awaitable, i: int, kind: str):
    try:
        return await awaitable
    except ProblemError as exc:
        raise EntryError(exc.status, exc.detail, _where(i, _element(kind, exc.field or ""))) from None


async def _trial(apply, pid: str, t: Trial) -> None:
    r, i = t.resource, t.entry
    kind = r["resourceType"]
    period = r.get("effectivePeriod") or r.get("performedPeriod") or {}
    agents = t.agents
    if kind == "Procedure" and r.get("usedCode"):
        agents = [{"agent": _agent(c), "dose_mg_per_day": None} for c in r["usedCode"]]
    start: dict[str, Any] = {
        "kind": t.kind,
        "started_on": period.get("start"),
        "baseline": _score(_ext(r, "baseline")),
    }
    if len(agents) == 1:
        start |= agents[0]
    elif agents:
        start["agents"] = agents
    body = _model(TrialIn, {k: v for k, v in start.items() if v is not None}, kind, i)
    trial_id = new_id()
    await apply(
        pid,
        i,
        kind,
        lambda p, today: (
            domain.start_trial(
                p,
                trial_id=trial_id,
                kind=body.kind,
                agents=body.agent_doses(),
                started_on=body.started_on,
                baseline=body.baseline,
                today=today,
                single=not body.agents,
            ),
            trial_id,
        ),
    )
    if not period.get("end"):
        return
    outcome = _ext(r, "outcome") or (r.get("outcome") or {}).get("text")
    done: dict[str, Any] = {
        "ended_on": period["end"],
        "adherence_pct": _ext(r, "adherence-pct"),
        "sessions": _ext(r, "sessions"),
        "outcome": outcome,
        "final": _score(_ext(r, "final")),
        "placement": _ext(r, "ect-placement"),
    }
    if len(t.max_doses) == 1 and len(agents) == 1:
        done["max_dose_mg_per_day"], done["unit"] = t.max_doses[0]["dose_mg_per_day"], "mg"
    elif t.max_doses:
        done["max_doses"] = t.max_doses
    c = _model(CompletionIn, {k: v for k, v in done.items() if v is not None}, kind, i)
    await apply(
        pid,
        i,
        kind,
        lambda p, today: (
            domain.complete_trial(
                p,
                trial_id,
                ended_on=c.ended_on,
                max_dose_mg_per_day=c.max_dose_mg_per_day,
                adherence_pct=c.adherence_pct,
                sessions=c.sessions,
                outcome=c.outcome,
                final=c.final,
                today=today,
                unit=c.unit,
                max_doses=[a.entered() for a in c.max_doses] if c.max_doses else None,
                placement=c.placement,
            ),
            trial_id,
        ),
    )


async def _observation(apply, pid: str, i: int, r: dict[str, Any]) -> None:
    coding = [(c.get("system"), c.get("code")) for c in (r.get("code") or {}).get("coding") or []]
    instrument = _ext(r, "instrument") or (
        "PHQ-9"
        if (codes.LOINC, PHQ9_PANEL_LOINC) in coding or (codes.LOINC, PHQ9_TOTAL_LOINC) in coding
        else (r.get("code") or {}).get("text")
    )
    components: dict[str, Any] = {}
    suicide_risk = None
    for comp in r.get("component") or []:
        for c in (comp.get("code") or {}).get("coding") or []:
            if c.get("system") == codes.LOINC:
                components[c.get("code")] = comp.get("valueInteger")
        if (comp.get("code") or {}).get("text") == "clinician-rated suicide risk":
            suicide_risk = (comp.get("valueCodeableConcept") or {}).get("text")
    items = (
        [components.get(code) for code in PHQ9_ITEM_LOINC]
        if all(c in components for c in PHQ9_ITEM_LOINC)
        else None
    )
    data = {
        "instrument": instrument,
        "score": r.get("valueInteger"),
        "items": items,
        "taken_on": r.get("effectiveDateTime"),
        "item9": None if items else components.get(PHQ9_ITEM_LOINC[-1]),
        "suicide_risk": suicide_risk,
    }
    body = _model(AssessmentIn, {k: v for k, v in data.items() if v is not None}, "Observation", i)
    assessment_id = new_id()
    await apply(
        pid,
        i,
        "Observation",
        lambda p, today: (
            domain.record_assessment(
                p,
                assessment_id=assessment_id,
                instrument=body.instrument,
                score=body.score,
                item9=body.item9,
                taken_on=body.taken_on,
                suicide_risk=body.suicide_risk,
                today=today,
                items=body.items,
                source=AssessmentSource.CLINICIAN,
            ),
            assessment_id,
        ),
    )
