"""referral's REST API (DESIGN.md section 6): the directory, referrals, and the coordinators'
task queue. Every change is an event in the clinic's or the referral's stream."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import Field
from sqlalchemy import or_, select

from care_shared.auth import Clinic
from care_shared.commands import run_command
from care_shared.contracts.referral import Capability
from care_shared.problems import PROBLEM_JSON, PROBLEM_RESPONSES, InvalidField, NotFound
from care_shared.requests import Strict
from care_shared.service import runtime_of
from referral import domain, handlers
from referral.access import Actor, Coordinator, current_actor, current_coordinator
from referral.adapters.records import (
    Referrals,
    change_directory_clinic,
    clinic_loads,
    directory,
    directory_clinic,
    present,
    register_directory_clinic,
)
from referral.adapters.tables import tasks

router = APIRouter(prefix="/v1")
page = APIRouter()

# A partner clinic's key reads; only a coordinator's changes the directory or works the queue.
COORDINATORS_ONLY: dict[int | str, dict[str, Any]] = {
    403: {
        "description": "A clinic's key: only referral coordinators may do this",
        "content": {PROBLEM_JSON: PROBLEM_RESPONSES[401]["content"][PROBLEM_JSON]},
    }
}

IDEMPOTENCY_NOTE = (
    "Send an `Idempotency-Key` header: a retry returns the first answer and stores nothing again."
)
COORDINATOR_PAGE = Path(__file__).parent / "coordinator.html"
COORDINATOR_ASSETS = {
    "js": Path(__file__).parent / "coordinator.js",
    "css": Path(__file__).parent / "coordinator.css",
}


NAME = {"min_length": 1, "max_length": 120}
REGION = {
    "min_length": 1,
    "max_length": 60,
    "pattern": r"^[a-z0-9][a-z0-9_-]*$",
    "description": "e.g. north, south-east",
}


class ClinicIn(Strict):
    name: str = Field(**NAME)
    region: str = Field(**REGION)
    capabilities: list[Capability] = Field(min_length=1, max_length=len(Capability))
    weekly_capacity: int = Field(ge=0, le=10_000, description="New referrals the clinic takes a week")
    partner_clinic_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=36,
        description="Its partner key's clinic id, so it sees referrals sent to it",
    )


class ClinicPatch(Strict):
    name: str | None = Field(default=None, **NAME)
    region: str | None = Field(default=None, **REGION)
    capabilities: list[Capability] | None = Field(default=None, min_length=1, max_length=len(Capability))
    weekly_capacity: int | None = Field(default=None, ge=0, le=10_000)


class ClaimIn(Strict):
    lease_minutes: int | None = Field(default=None, ge=1, le=240, description="Default 15")


class ScheduleIn(Strict):
    appointment_at: datetime = Field(description="ISO 8601 with a time zone")


class ReasonIn(Strict):
    reason: str = Field(min_length=1, max_length=500)


class RouteIn(Strict):
    clinic_id: str = Field(min_length=1, max_length=36)


def _clinic_out(c: domain.DirectoryClinic, load: domain.ClinicLoad | None = None) -> dict[str, Any]:
    load = load or domain.ClinicLoad()
    return {
        "id": c.clinic_id,
        "name": c.name,
        "region": c.region,
        "capabilities": sorted(c.capabilities),
        "weekly_capacity": c.weekly_capacity,
        "remaining_capacity": c.weekly_capacity - load.routed_this_week,
        "queue": load.queue,
        "partner_clinic_id": c.partner_clinic_id,
    }


# --- the directory ---------------------------------------------------------------------------


@router.get(
    "/clinics", tags=["directory"], summary="The clinic directory, with this week's remaining capacity"
)
async def list_clinics(request: Request, region: str | None = None, actor: Actor = Depends(current_actor)):
    rt = runtime_of(request)
    async with rt.db.read() as session:
        clinics = await directory(session)
        loads = await clinic_loads(session, rt.clock.now())
    return [_clinic_out(c, loads.get(c.clinic_id)) for c in clinics if region is None or c.region == region]


@router.post(
    "/clinics",
    tags=["directory"],
    status_code=201,
    responses=COORDINATORS_ONLY,
    summary="Add a clinic to the directory (coordinators)",
    description=IDEMPOTENCY_NOTE,
)
async def add_clinic(
    body: ClinicIn, request: Request, coordinator: Coordinator = Depends(current_coordinator)
):
    rt = runtime_of(request)

    async def command(session):
        event = await register_directory_clinic(
            session,
            rt.store,
            name=body.name,
            region=body.region,
            capabilities=[str(c) for c in body.capabilities],
            weekly_capacity=body.weekly_capacity,
            partner_clinic_id=body.partner_clinic_id,
            now=rt.clock.now(),
        )
        clinic = await directory_clinic(session, event.clinic_id)
        return 201, _clinic_out(clinic)

    status, out = await run_command(rt.db, request, coordinator.coordinator_id, command)
    return JSONResponse(out, status_code=status)


@router.patch(
    "/clinics/{clinic_id}",
    tags=["directory"],
    responses=COORDINATORS_ONLY,
    summary="Change a directory clinic (coordinators)",
)
async def change_clinic(
    clinic_id: str,
    body: ClinicPatch,
    request: Request,
    coordinator: Coordinator = Depends(current_coordinator),
):
    rt = runtime_of(request)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)

    async def command(session):
        await change_directory_clinic(session, rt.store, clinic_id, {k: v for k, v in changes.items()})
        return 200, _clinic_out(await directory_clinic(session, clinic_id))

    status, out = await run_command(rt.db, request, coordinator.coordinator_id, command)
    return JSONResponse(out, status_code=status)


# --- referrals and tasks -----------------------------------------------------------------------


def _visible_to(actor: Actor):
    """Coordinators see the network's referrals; a clinic its patients' and those sent to it."""
    if isinstance(actor, Clinic):
        return or_(tasks.c.owner_clinic_id == actor.clinic_id, tasks.c.partner_clinic_id == actor.clinic_id)
    return None


async def _shown(request: Request, actor: Actor, *conditions) -> list[tuple[domain.Referral, dict[str, Any]]]:
    """The referrals the queue's rows select (SQL filters on what does not depend on the
    time), each with its view as the domain says it stands now."""
    rt = runtime_of(request)
    query = select(tasks.c.referral_id)
    visible = _visible_to(actor)
    for condition in (visible, *conditions):
        if condition is not None:
            query = query.where(condition)
    async with rt.db.read() as session:
        ids = (await session.execute(query)).scalars().all()
        referrals = await Referrals(rt.store).load_many(session, ids)
        clinics = {c.clinic_id: c for c in await directory(session)}
    now = rt.clock.now()
    shown = [
        (r, present(r, clinics.get(r.clinic_id) if r.clinic_id else None, now)) for r, _ in referrals.values()
    ]
    # The access audit records every patient whose referral this answer shows.
    request.state.audit_patient_ids = [r.patient_id for r, _ in shown]
    return shown


async def _views(request: Request, actor: Actor, *conditions) -> list[dict[str, Any]]:
    return [view for _, view in await _shown(request, actor, *conditions)]


@router.get("/referrals", tags=["referrals"], summary="Referrals, optionally for one patient")
async def list_referrals(
    request: Request,
    patient_id: str | None = Query(default=None, max_length=36),
    actor: Actor = Depends(current_actor),
):
    views = await _views(request, actor, tasks.c.patient_id == patient_id if patient_id else None)
    return sorted(views, key=lambda v: v["opened_at"] or "")


@router.get("/referrals/{referral_id}", tags=["referrals"], summary="One referral, with its history")
async def get_referral(referral_id: str, request: Request, actor: Actor = Depends(current_actor)):
    views = await _views(request, actor, tasks.c.referral_id == referral_id)
    if not views:
        raise NotFound("no such referral", field="referral_id")  # another clinic's looks the same
    return views[0]


TaskStatus = Literal[
    "queued", "unroutable", "claimed", "accepted", "scheduled", "completed", "cancelled", "open"
]


@router.get(
    "/tasks",
    tags=["tasks"],
    summary="The coordinators' queue: emergency, urgent, routine, then oldest first",
    description="`status` defaults to `open` (everything not completed or cancelled). An escalated task moves up one urgency band.",
)
async def list_tasks(
    request: Request,
    status: TaskStatus = "open",
    clinic: str | None = Query(default=None, max_length=36, description="directory clinic id"),
    region: str | None = Query(default=None, max_length=60),
    limit: int = Query(default=200, ge=1, le=1000),
    actor: Actor = Depends(current_actor),
):
    # Prefilter in SQL on what does not depend on the time; an expired lease is a claimed
    # row that shows as queued, so the status filter is applied to the presented view.
    stored = (
        domain.OPEN_STATUSES
        if status == "open"
        else ((status, domain.CLAIMED) if status in domain.WAITING else (status,))
    )
    found = await _shown(
        request,
        actor,
        tasks.c.status.in_(stored),
        tasks.c.clinic_id == clinic if clinic else None,
        tasks.c.region == region if region else None,
    )
    if status != "open":
        found = [(r, v) for r, v in found if v["status"] == status]
    now = runtime_of(request).clock.now()
    shown = [v for _, v in sorted(found, key=lambda rv: domain.queue_key(rv[0], now))[:limit]]
    request.state.audit_patient_ids = [v["patient_id"] for v in shown]  # what the answer shows
    return shown


@router.get("/tasks/{task_id}", tags=["tasks"], summary="One task (a referral, as the queue shows it)")
async def get_task(task_id: str, request: Request, actor: Actor = Depends(current_actor)):
    return await get_referral(task_id, request, actor)


async def _task_command(request: Request, coordinator: Coordinator, task_id: str, decide) -> JSONResponse:
    """One coordinator command on a task through the pipeline: referral.handlers.work_task."""
    rt = runtime_of(request)
    referrals = Referrals(rt.store)

    def audited(patient_id: str) -> None:
        request.state.audit_patient_ids = [patient_id]

    async def command(session):
        now = rt.clock.now()
        after = await handlers.work_task(session, referrals, task_id, now, decide, audited)
        return 200, await referrals.present(session, after, now)

    status, body = await run_command(rt.db, request, coordinator.coordinator_id, command)
    return JSONResponse(body, status_code=status)


async def _routing_inputs(session, now: datetime):
    return await directory(session), await clinic_loads(session, now)


@router.post(
    "/tasks/{task_id}/claim",
    tags=["tasks"],
    responses=COORDINATORS_ONLY,
    summary="Take the task for a while (a lease, 15 minutes by default)",
    description=IDEMPOTENCY_NOTE,
)
async def claim_task(
    task_id: str,
    request: Request,
    body: ClaimIn | None = None,
    coordinator: Coordinator = Depends(current_coordinator),
):
    minutes = (body.lease_minutes if body else None) or int(runtime_of(request).settings.claim_lease_minutes)

    async def decide(session, referral, now):
        return domain.claim(referral, coordinator.coordinator_id, now, timedelta(minutes=minutes))

    return await _task_command(request, coordinator, task_id, decide)


@router.post(
    "/tasks/{task_id}/schedule",
    tags=["tasks"],
    responses=COORDINATORS_ONLY,
    summary="Book the appointment (a later call moves it)",
    description=IDEMPOTENCY_NOTE,
)
async def schedule_task(
    task_id: str, body: ScheduleIn, request: Request, coordinator: Coordinator = Depends(current_coordinator)
):
    async def decide(session, referral, now):
        return domain.schedule(referral, coordinator.coordinator_id, body.appointment_at, now)

    return await _task_command(request, coordinator, task_id, decide)


@router.post(
    "/tasks/{task_id}/accept",
    tags=["tasks"],
    responses=COORDINATORS_ONLY,
    summary="Record that the clinic accepted the referral",
    description=IDEMPOTENCY_NOTE,
)
async def accept_task(
    task_id: str, request: Request, coordinator: Coordinator = Depends(current_coordinator)
):
    async def decide(session, referral, now):
        return domain.accept(referral, coordinator.coordinator_id, now)

    return await _task_command(request, coordinator, task_id, decide)


@router.post(
    "/tasks/{task_id}/complete",
    tags=["tasks"],
    responses=COORDINATORS_ONLY,
    summary="The patient was seen: close the referral",
    description=IDEMPOTENCY_NOTE,
)
async def complete_task(
    task_id: str, request: Request, coordinator: Coordinator = Depends(current_coordinator)
):
    async def decide(session, referral, now):
        return domain.complete(referral, now)

    return await _task_command(request, coordinator, task_id, decide)


@router.post(
    "/tasks/{task_id}/decline",
    tags=["tasks"],
    responses=COORDINATORS_ONLY,
    summary="The clinic declined: re-route to the next fitting clinic",
    description=IDEMPOTENCY_NOTE,
)
async def decline_task(
    task_id: str, body: ReasonIn, request: Request, coordinator: Coordinator = Depends(current_coordinator)
):
    async def decide(session, referral, now):
        clinics, loads = await _routing_inputs(session, now)
        return domain.decline(referral, coordinator.coordinator_id, body.reason, now, clinics, loads)

    return await _task_command(request, coordinator, task_id, decide)


@router.post(
    "/tasks/{task_id}/route",
    tags=["tasks"],
    responses=COORDINATORS_ONLY,
    summary="Route a claimed task by hand (e.g. an unroutable one)",
    description=IDEMPOTENCY_NOTE,
)
async def route_task(
    task_id: str, body: RouteIn, request: Request, coordinator: Coordinator = Depends(current_coordinator)
):
    async def decide(session, referral, now):
        clinic = await directory_clinic(session, body.clinic_id)
        if clinic is None:
            raise InvalidField("no such clinic in the directory", field="clinic_id")
        return domain.route_by_hand(referral, coordinator.coordinator_id, clinic, now)

    return await _task_command(request, coordinator, task_id, decide)


@router.post(
    "/tasks/{task_id}/cancel",
    tags=["tasks"],
    responses=COORDINATORS_ONLY,
    summary="Cancel the referral",
    description=IDEMPOTENCY_NOTE,
)
async def cancel_task(
    task_id: str, body: ReasonIn, request: Request, coordinator: Coordinator = Depends(current_coordinator)
):
    async def decide(session, referral, now):
        return domain.cancel(referral, body.reason, now)

    return await _task_command(request, coordinator, task_id, decide)


@page.get("/coordinator", include_in_schema=False, response_class=HTMLResponse)
async def coordinator_page() -> HTMLResponse:
    # Its script and style are files of their own: the page's CSP allows no inline script.
    return HTMLResponse(COORDINATOR_PAGE.read_text(), headers={"Cache-Control": "no-cache"})


@page.get("/coordinator.js", include_in_schema=False)
async def coordinator_script() -> Response:
    return Response(
        COORDINATOR_ASSETS["js"].read_text(),
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache"},
    )


@page.get("/coordinator.css", include_in_schema=False)
async def coordinator_style() -> Response:
    return Response(
        COORDINATOR_ASSETS["css"].read_text(), media_type="text/css", headers={"Cache-Control": "no-cache"}
    )
