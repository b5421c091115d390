"""referral's composition root: runtime, consumers, routes, and the service's own background
work (the escalation sweep) and stream (the clinics' work queue). Tests build it with their
own settings and clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from care_shared.clock import Clock
from care_shared.contracts import referral as referral_events
from care_shared.seen import seen_router
from care_shared.service import Runtime, build_runtime, create_service_app, current_clinic, runtime_of
from referral.access import actor_for_key
from referral.adapters.work_queue import ensure_task_stream
from referral.entrypoints import fhir
from referral.entrypoints import http as api
from referral.entrypoints.subscribers import on_intake_event, pathway_handler
from referral.entrypoints.sweep import EscalationSweep
from referral.settings import ReferralSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def make_runtime(settings: ReferralSettings | None = None, clock: Clock | None = None) -> Runtime:
    runtime = build_runtime(
        settings or ReferralSettings(), source="/referral", migrations=MIGRATIONS, clock=clock
    )
    runtime.metrics.count_events(
        "care_referral_tasks",
        "Coordinator tasks by step",
        "step",
        {
            referral_events.TaskQueued.event_type: "queued",
            referral_events.TaskClaimed.event_type: "claimed",
            referral_events.ReferralEscalated.event_type: "escalated",
            referral_events.ReferralScheduled.event_type: "scheduled",
            referral_events.ReferralCompleted.event_type: "completed",
            referral_events.ReferralDeclined.event_type: "declined",
        },
    )
    runtime.authenticate = actor_for_key
    # The clinics' work queue is referral's own stream: declared once NATS is there.
    runtime.after_connect.append(
        (
            "task stream",
            lambda: ensure_task_stream(
                runtime.broker.connection.jetstream(), runtime.settings.nats_stream_replicas
            ),
        )
    )
    runtime.consumers.subscribe("access", "INTAKE", "intake.>", on_intake_event)
    runtime.consumers.subscribe(
        "pathway", "PATHWAY", "pathway.>", pathway_handler(runtime.store, runtime.clock)
    )
    return runtime


def create_app(runtime: Runtime | None = None) -> FastAPI:
    runtime = runtime or make_runtime()
    app = create_service_app(
        runtime,
        title="TRD Care Network: referral",
        description=(
            "The clinic directory, specialist referrals routed to the clinic that fits, and the "
            "coordinators' task queue (and its web page at /coordinator). Coordinators and partner "
            "clinics authenticate with `Authorization: Bearer <key>`."
        ),
        routers=[api.router, api.page, seen_router(current_clinic, runtime_of), fhir.router],
    )
    shared_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with shared_lifespan(app):  # migrations, NATS, the task stream, consumers, relay
            sweep = EscalationSweep(runtime, runtime.settings.escalation_sweep_seconds)
            task = asyncio.create_task(sweep.run(), name="escalation-sweep")
            try:
                yield
            finally:
                sweep.stop()
                await task

    app.router.lifespan_context = lifespan
    return app
