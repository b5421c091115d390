"""notify's composition root."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from care_shared.clock import Clock
from care_shared.seen import seen_router
from care_shared.service import Runtime, build_runtime, create_service_app, current_clinic, runtime_of
from notify.handlers import recorder
from notify.settings import NotifySettings

MIGRATIONS = Path(__file__).parent / "migrations"


def make_runtime(settings: NotifySettings | None = None, clock: Clock | None = None) -> Runtime:
    runtime = build_runtime(settings or NotifySettings(), source="/notify", migrations=MIGRATIONS, clock=clock)
    for upstream, stream in (("intake", "INTAKE"), ("pathway", "PATHWAY"), ("referral", "REFERRAL")):
        runtime.consumers.subscribe(upstream, stream, f"{upstream}.>", recorder(f"notify-{upstream}"))
    return runtime


def create_app(runtime: Runtime | None = None) -> FastAPI:
    return create_service_app(
        runtime or make_runtime(),
        title="TRD Care Network: notify",
        description="Patient reminders by e-mail and SMS, with quiet hours, opt-out and crisis resources.",
        routers=[seen_router(current_clinic, runtime_of)],
    )
