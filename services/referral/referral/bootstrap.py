"""referral's composition root."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from care_shared.clock import Clock
from care_shared.seen import seen_router
from care_shared.service import Runtime, build_runtime, create_service_app, current_clinic, runtime_of
from referral.handlers import on_intake_event, on_pathway_event
from referral.settings import ReferralSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def make_runtime(settings: ReferralSettings | None = None, clock: Clock | None = None) -> Runtime:
    runtime = build_runtime(settings or ReferralSettings(), source="/referral", migrations=MIGRATIONS, clock=clock)
    runtime.consumers.subscribe("access", "INTAKE", "intake.>", on_intake_event)
    runtime.consumers.subscribe("pathway", "PATHWAY", "pathway.>", on_pathway_event)
    return runtime


def create_app(runtime: Runtime | None = None) -> FastAPI:
    return create_service_app(
        runtime or make_runtime(),
        title="TRD Care Network: referral",
        description="Routes specialist referrals to the right clinic and queues tasks for coordinators.",
        routers=[seen_router(current_clinic, runtime_of)],
    )
