"""intake's composition root: settings, runtime, routes. Tests build it with their own
settings and clock."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from care_shared.clock import Clock
from care_shared.service import Runtime, build_runtime, create_service_app
from intake import api
from intake.fhir import router as fhir_router
from intake.settings import IntakeSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def make_runtime(settings: IntakeSettings | None = None, clock: Clock | None = None) -> Runtime:
    return build_runtime(settings or IntakeSettings(), source="/intake", migrations=MIGRATIONS, clock=clock)


def create_app(runtime: Runtime | None = None) -> FastAPI:
    return create_service_app(
        runtime or make_runtime(),
        title="TRD Care Network: intake",
        description=(
            "Partner clinics record patients, depressive episodes, treatment trials, symptom "
            "assessments, comorbidities, workup checks, treatment preferences and mood-journal "
            "entries. Every change is an event in the patient's stream, published to the "
            "network through an outbox. Authenticate with `Authorization: Bearer <clinic key>`."
        ),
        routers=[api.router, fhir_router.router],
    )
