"""Referrals as BSeR-shaped FHIR R4 (issue 16): each referral a ServiceRequest, its
coordinator task a Task whose status and businessStatus follow the queue's states.
Read at /fhir/ServiceRequest and /fhir/Task; a receiving clinic's system polls its own
tasks with `Task?owner=<its clinic id>`. Visibility is the REST API's: coordinators see the
network's referrals, a clinic its patients' and those sent to it; every answer names the
patients it shows in the access audit."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import or_, select

from care_shared.service import runtime_of
from referral import domain
from referral.access import Actor, current_actor
from referral.adapters.records import Referrals, directory, present
from referral.adapters.tables import tasks
from referral.entrypoints.http import _visible_to

FHIR_JSON = "application/fhir+json"
BUSINESS_STATUS = "https://trd-care.example/fhir/CodeSystem/referral-queue-state"

# The queue's states as FHIR Task.status (R4 task-status) and ServiceRequest.status.
TASK_STATUS = {
    domain.QUEUED: "requested",  # waiting for a coordinator
    domain.UNROUTABLE: "on-hold",  # no clinic can take it yet
    domain.CLAIMED: "received",  # a coordinator holds the lease
    domain.ACCEPTED: "accepted",
    domain.SCHEDULED: "in-progress",
    domain.COMPLETED: "completed",
    domain.CANCELLED: "cancelled",
}
REQUEST_STATUS = {domain.COMPLETED: "completed", domain.CANCELLED: "revoked"}  # else active
PRIORITY = {"routine": "routine", "urgent": "urgent", "emergency": "stat"}

# A missing resource is an OperationOutcome (401 and a bad query parameter stay problem+json).
OUTCOME = {"content": {FHIR_JSON: {"schema": {"type": "object"}}}, "description": "OperationOutcome"}
router = APIRouter(prefix="/fhir", tags=["fhir"], responses={404: OUTCOME})


class FhirResponse(JSONResponse):
    media_type = FHIR_JSON


def _org(clinic_id: str | None) -> dict[str, str] | None:
    return {"reference": f"Organization/{clinic_id}"} if clinic_id else None


def service_request(v: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": v["id"],
        "status": REQUEST_STATUS.get(v["status"], "active"),
        "intent": "order",
        "priority": PRIORITY[v["urgency"]],
        "code": {"text": "Referral to a specialist mood disorder service"},
        "orderDetail": [{"text": c} for c in v["capabilities"]],
        "subject": {"reference": f"Patient/{v['patient_id']}"},
        "reasonCode": [{"text": r} for r in v["reasons"]],
    }
    if v.get("opened_at"):
        out["authoredOn"] = v["opened_at"]
    if v.get("clinic_id"):
        out["performer"] = [_org(v["clinic_id"])]
    if v.get("appointment_at"):
        out["occurrenceDateTime"] = v["appointment_at"]
    return out


def task(v: dict[str, Any], owner: str | None) -> dict[str, Any]:
    state = v["status"] + (" (escalated)" if v.get("escalated") else "")
    out: dict[str, Any] = {
        "resourceType": "Task",
        "id": v["id"],
        "status": TASK_STATUS[v["status"]],
        "businessStatus": {"coding": [{"system": BUSINESS_STATUS, "code": v["status"]}], "text": state},
        "intent": "order",
        "priority": PRIORITY[v["urgency"]],
        "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]},
        "focus": {"reference": f"ServiceRequest/{v['id']}"},
        "for": {"reference": f"Patient/{v['patient_id']}"},
    }
    if v.get("opened_at"):
        out["authoredOn"] = v["opened_at"]
    if owner:
        out["owner"] = _org(owner)
    if v["status"] == domain.SCHEDULED and v.get("appointment_at"):
        out["executionPeriod"] = {"start": v["appointment_at"]}
    if v.get("unroutable_reason"):
        out["statusReason"] = {"text": v["unroutable_reason"]}
    return out


async def _rows(request: Request, actor: Actor, *conditions) -> list[tuple[dict[str, Any], str | None]]:
    """(view as the domain says it stands now, the owner's clinic id) for each visible task."""
    rt = runtime_of(request)
    query = select(tasks.c.referral_id, tasks.c.partner_clinic_id, tasks.c.clinic_id)
    for condition in (_visible_to(actor), *conditions):
        if condition is not None:
            query = query.where(condition)
    async with rt.db.read() as session:
        rows = (await session.execute(query.order_by(tasks.c.opened_at))).all()
        referrals = await Referrals(rt.store).load_many(session, [r.referral_id for r in rows])
        clinics = {c.clinic_id: c for c in await directory(session)}
    now = rt.clock.now()
    found = []
    for row in rows:
        if row.referral_id not in referrals:
            continue
        r, _ = referrals[row.referral_id]
        # The owner is the receiving clinic's own id where its partner key is linked, else the
        # directory clinic's: either is what that clinic's system searches Task?owner= with.
        found.append(
            (
                present(r, clinics.get(r.clinic_id) if r.clinic_id else None, now),
                row.partner_clinic_id or row.clinic_id,
            )
        )
    request.state.audit_patient_ids = [view["patient_id"] for view, _ in found]
    return found


def _bundle(request: Request, found: list[dict[str, Any]]) -> FhirResponse:
    base = str(request.base_url).rstrip("/") + "/fhir"
    return FhirResponse(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(found),
            "entry": [
                {
                    "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
                    "resource": r,
                    "search": {"mode": "match"},
                }
                for r in found
            ],
        }
    )


def _not_found(kind: str) -> FhirResponse:
    return FhirResponse(
        {
            "resourceType": "OperationOutcome",
            "issue": [
                {
                    "severity": "error",
                    "code": "not-found",
                    "diagnostics": f"no such {kind}",
                    "expression": [f"{kind}.id"],
                }
            ],
        },
        status_code=404,
    )


def _id(reference: str | None, kind: str) -> str | None:
    return reference.removeprefix(f"{kind}/") if reference else None


@router.get("/ServiceRequest", summary="Referrals as ServiceRequests (patient=)", response_class=FhirResponse)
async def search_service_requests(
    request: Request,
    patient: str | None = Query(default=None, max_length=44),
    actor: Actor = Depends(current_actor),
) -> FhirResponse:
    pid = _id(patient, "Patient")
    rows = await _rows(request, actor, tasks.c.patient_id == pid if pid else None)
    return _bundle(request, [service_request(v) for v, _ in rows])


@router.get(
    "/ServiceRequest/{referral_id}", summary="One referral as a ServiceRequest", response_class=FhirResponse
)
async def read_service_request(
    referral_id: str, request: Request, actor: Actor = Depends(current_actor)
) -> FhirResponse:
    rows = await _rows(request, actor, tasks.c.referral_id == referral_id)
    return FhirResponse(service_request(rows[0][0])) if rows else _not_found("ServiceRequest")


@router.get(
    "/Task", summary="Coordinator tasks as Tasks (owner=, patient=, status=)", response_class=FhirResponse
)
async def search_tasks(
    request: Request,
    owner: str | None = Query(default=None, max_length=50),
    patient: str | None = Query(default=None, max_length=44),
    status: str | None = Query(default=None, max_length=20, description="a FHIR task status, e.g. requested"),
    actor: Actor = Depends(current_actor),
) -> FhirResponse:
    owner_id, pid = _id(owner, "Organization"), _id(patient, "Patient")
    rows = await _rows(
        request,
        actor,
        or_(tasks.c.partner_clinic_id == owner_id, tasks.c.clinic_id == owner_id) if owner_id else None,
        tasks.c.patient_id == pid if pid else None,
    )
    found = [task(v, o) for v, o in rows]
    if status:
        found = [
            t for t in found if t["status"] == status
        ]  # after `present`: an expired lease is requested again
    request.state.audit_patient_ids = [
        t["for"]["reference"].removeprefix("Patient/") for t in found
    ]  # what it shows
    return _bundle(request, found)


@router.get("/Task/{task_id}", summary="One coordinator task as a Task", response_class=FhirResponse)
async def read_task(task_id: str, request: Request, actor: Actor = Depends(current_actor)) -> FhirResponse:
    rows = await _rows(request, actor, tasks.c.referral_id == task_id)
    return FhirResponse(task(*rows[0])) if rows else _not_found("Task")
