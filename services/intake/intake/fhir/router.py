"""FHIR R4 routes under `/fhir` (issue 16). The clinic key as everywhere (the edge checks it
before anything is read); another clinic's patient is a 404 OperationOutcome; every read of a
patient is in the access audit (the route names the patients it read)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from care_shared.auth import Clinic
from care_shared.contracts import decode
from care_shared.idempotency import run_command
from care_shared.problems import NotFound, ProblemError
from care_shared.service import current_clinic, runtime_of
from intake.fhir import resources as fhir
from intake.fhir.importer import EntryError, import_bundle
from intake.records import PatientRecords
from intake.tables import patients

FHIR_JSON = "application/fhir+json"
MAX_PATIENTS = 100  # an unfiltered Patient search answers at most this many

# Errors under /fhir are OperationOutcomes (401 and 413 come from the shared edge, as problem+json).
OUTCOME = {"content": {FHIR_JSON: {"schema": {"type": "object"}}}, "description": "OperationOutcome"}
router = APIRouter(
    prefix="/fhir", tags=["fhir"], responses={400: OUTCOME, 404: OUTCOME, 409: OUTCOME, 422: OUTCOME}
)


class FhirResponse(JSONResponse):
    media_type = FHIR_JSON


def _outcome(status: int, diagnostics: str, expression: str | None = None) -> FhirResponse:
    return FhirResponse(fhir.operation_outcome(status, diagnostics, expression), status_code=status)


def _problem_outcome(exc: ProblemError) -> FhirResponse:
    return _outcome(exc.status, exc.detail, exc.field)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


def _patient_id(reference: str) -> str:
    """`patient=` takes an id or `Patient/<id>`."""
    return reference.removeprefix("Patient/")


async def _chart(request: Request, clinic: Clinic, patient_id: str) -> fhir.Chart:
    rt = runtime_of(request)
    request.state.audit_patient_ids = [patient_id]
    async with rt.db.read() as session:
        history = await PatientRecords(rt.store).history(session, clinic, patient_id)
    chart = fhir.chart_of([decode(e.type, e.data) for e in history])
    if chart is None:
        raise NotFound("no such patient", field="patient")
    return chart


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON carries")


@router.post(
    "",
    summary="Import a transaction Bundle (all or nothing)",
    response_class=FhirResponse,
    description="Send an `Idempotency-Key` header: a retry returns the first answer and stores nothing again.",
)
async def import_transaction(request: Request, clinic: Clinic = Depends(current_clinic)) -> FhirResponse:
    try:
        bundle = json.loads(await request.body(), parse_constant=_no_constant)
    except ValueError as exc:
        return _outcome(400, f"the body is not JSON: {exc}", "Bundle")
    rt = runtime_of(request)

    async def command(session):
        return 200, await import_bundle(session, rt, clinic, bundle)

    try:
        _, out = await run_command(rt.db, request, clinic.clinic_id, command)
    except EntryError as exc:
        return _outcome(exc.status, exc.diagnostics, exc.expression)
    except ProblemError as exc:
        return _problem_outcome(exc)
    request.state.audit_patient_ids = [
        e["response"]["location"].removeprefix("Patient/")
        for e in out["entry"]
        if e["response"].get("location", "").startswith("Patient/")
    ]
    return FhirResponse(out)


@router.get("/metadata", summary="CapabilityStatement", response_class=FhirResponse)
async def metadata(request: Request) -> FhirResponse:
    return FhirResponse(fhir.capability_statement(runtime_of(request).clock.now().date()))


@router.get("/Patient/{patient_id}", summary="Read a Patient", response_class=FhirResponse)
async def read_patient(
    patient_id: str, request: Request, clinic: Clinic = Depends(current_clinic)
) -> FhirResponse:
    try:
        return FhirResponse(fhir.patient(await _chart(request, clinic, patient_id)))
    except ProblemError as exc:
        return _problem_outcome(exc)


@router.get(
    "/Patient/{patient_id}/$everything",
    summary="Everything about one patient (searchset Bundle)",
    response_class=FhirResponse,
)
async def patient_everything(
    patient_id: str, request: Request, clinic: Clinic = Depends(current_clinic)
) -> FhirResponse:
    try:
        chart = await _chart(request, clinic, patient_id)
    except ProblemError as exc:
        return _problem_outcome(exc)
    found = [r for kind in fhir.resources(chart).values() for r in kind]
    return FhirResponse(fhir.searchset(_base(request), found))


@router.get(
    "/Patient", summary="Search the clinic's patients (identifier=, _id=)", response_class=FhirResponse
)
async def search_patients(
    request: Request,
    identifier: str | None = None,
    _id: str | None = None,
    clinic: Clinic = Depends(current_clinic),
) -> FhirResponse:
    rt = runtime_of(request)
    query = select(patients.c.patient_id).where(patients.c.clinic_id == clinic.clinic_id)
    if identifier is not None:
        query = query.where(patients.c.external_id == identifier.rpartition("|")[2])  # system|value or value
    if _id is not None:
        query = query.where(patients.c.patient_id == _id)
    async with rt.db.read() as session:
        ids = list(
            (await session.execute(query.order_by(patients.c.registered_at).limit(MAX_PATIENTS))).scalars()
        )
    found: list[dict[str, Any]] = []
    try:
        for pid in ids:
            found.append(fhir.patient(await _chart(request, clinic, pid)))
    except ProblemError as exc:
        return _problem_outcome(exc)
    request.state.audit_patient_ids = ids
    return FhirResponse(fhir.searchset(_base(request), found))


def _search_route(kind: str):
    async def search(
        request: Request, patient: str | None = None, clinic: Clinic = Depends(current_clinic)
    ) -> FhirResponse:
        if not patient:
            # Searches are per patient: a clinic-wide dump of clinical facts is not offered.
            return _outcome(400, f"{kind} search needs patient=", f"{kind}.subject")
        try:
            chart = await _chart(request, clinic, _patient_id(patient))
        except ProblemError as exc:
            return _problem_outcome(exc)
        return FhirResponse(fhir.searchset(_base(request), fhir.resources(chart)[kind]))

    search.__name__ = f"search_{kind.lower()}"
    return search


for _kind in fhir.SEARCHABLE:
    router.add_api_route(
        f"/{_kind}",
        _search_route(_kind),
        methods=["GET"],
        summary=f"Search {_kind} by patient=",
        response_class=FhirResponse,
    )
