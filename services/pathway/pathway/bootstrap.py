"""pathway's composition root."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from care_shared.clock import Clock
from care_shared.seen import seen_router
from care_shared.service import Runtime, build_runtime, create_service_app, current_clinic, runtime_of
from pathway import api, cds_hooks
from pathway.handlers import IntakeEventHandler
from pathway.settings import PathwaySettings

MIGRATIONS = Path(__file__).parent / "migrations"


def make_runtime(settings: PathwaySettings | None = None, clock: Clock | None = None) -> Runtime:
    runtime = build_runtime(
        settings or PathwaySettings(), source="/pathway", migrations=MIGRATIONS, clock=clock
    )
    runtime.consumers.subscribe("intake", "INTAKE", "intake.>", IntakeEventHandler(runtime.store))
    return runtime


def create_app(runtime: Runtime | None = None) -> FastAPI:
    return create_service_app(
        runtime or make_runtime(),
        title="TRD Care Network: pathway",
        description=(
            "Each patient's TRD status, staging (Thase-Rush, Maudsley, MGH), urgency and recommended "
            "next strategies, with the reasons and evidence behind every field, computed from intake's "
            "events by the rules in CLINICAL.md. Decision support: it never prescribes."
        ),
        routers=[api.router, seen_router(current_clinic, runtime_of), cds_hooks.router],
    )
