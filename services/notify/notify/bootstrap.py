"""notify's composition root: settings, clock, consumers, channels, the delivery loop, routes.
Tests build it with their own settings, clock and channels."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI

from care_shared.clock import Clock, SystemClock
from care_shared.contracts import notify as notify_events
from care_shared.seen import seen_router
from care_shared.service import Runtime, build_runtime, create_service_app, current_clinic, runtime_of
from notify.adapters.channels import ChannelSender, SmsGatewayChannel, SmtpChannel
from notify.entrypoints import http as api
from notify.entrypoints.delivery import DeliveryLoop, DeliveryPolicy
from notify.handlers import recorder
from notify.settings import NotifySettings

MIGRATIONS = Path(__file__).parent / "migrations"


class FileClock:
    """ "Now" read from a file (ISO 8601), for tests that move a real process's time; the
    system clock while the file is absent or empty."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.system = SystemClock()

    def now(self) -> datetime:
        try:
            text = self.path.read_text().strip()
        except FileNotFoundError:
            text = ""
        if not text:
            return self.system.now()
        at = datetime.fromisoformat(text)
        return at if at.tzinfo else at.replace(tzinfo=UTC)


def make_runtime(settings: NotifySettings | None = None, clock: Clock | None = None) -> Runtime:
    settings = settings or NotifySettings()
    if clock is None and settings.notify_clock_file:
        clock = FileClock(settings.notify_clock_file)
    runtime = build_runtime(settings, source="/notify", migrations=MIGRATIONS, clock=clock)
    runtime.metrics.count_events(
        "care_reminders",
        "Reminders by what happened to them",
        "outcome",
        {
            notify_events.ReminderScheduled.event_type: "scheduled",
            notify_events.ReminderMoved.event_type: "moved",
            notify_events.ReminderSent.event_type: "sent",
            notify_events.ReminderFailed.event_type: "failed",
            notify_events.ReminderCancelled.event_type: "cancelled",
        },
    )
    for upstream, stream in (("intake", "INTAKE"), ("pathway", "PATHWAY"), ("referral", "REFERRAL")):
        runtime.consumers.subscribe(
            upstream, stream, f"{upstream}.>", recorder(f"notify-{upstream}", runtime.store, runtime.clock)
        )
    return runtime


def channels_from(settings: NotifySettings) -> list[ChannelSender]:
    channels: list[ChannelSender] = []
    if settings.smtp_host:
        channels.append(SmtpChannel(settings.smtp_host, settings.smtp_port, settings.smtp_sender))
    if settings.sms_gateway_url:
        channels.append(SmsGatewayChannel(settings.sms_gateway_url, token=settings.sms_gateway_token))
    return channels


def delivery_loop(runtime: Runtime, channels: Sequence[ChannelSender] | None = None) -> DeliveryLoop:
    settings: NotifySettings = runtime.settings  # type: ignore[assignment]
    policy = DeliveryPolicy(
        max_attempts=settings.delivery_max_attempts,
        backoff_seconds=tuple(settings.delivery_backoff_seconds),
        lease_seconds=settings.delivery_lease_seconds,
        poll_seconds=settings.delivery_poll_seconds,
    )
    return DeliveryLoop(
        runtime.db,
        runtime.store,
        runtime.clock,
        channels_from(settings) if channels is None else channels,
        policy,
        fault=settings.notify_delivery_fault,
        tracer_provider=runtime.tracer_provider,
        crisis_line=settings.crisis_line,
    )


def create_app(runtime: Runtime | None = None, channels: Sequence[ChannelSender] | None = None) -> FastAPI:
    runtime = runtime or make_runtime()
    app = create_service_app(
        runtime,
        title="TRD Care Network: notify",
        description=(
            "Patient reminders by e-mail and SMS, with quiet hours, opt-out and crisis resources. "
            "Contact details and consent live only here."
        ),
        routers=[api.router, seen_router(current_clinic, runtime_of)],
    )
    loop = delivery_loop(runtime, channels)
    app.state.delivery = loop
    service_lifespan = app.router.lifespan_context

    # The shared lifespan migrates, connects NATS and runs the relay; the delivery loop runs
    # inside it, and stops before it closes the database.
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with service_lifespan(app):
            task = None
            if runtime.settings.delivery_enabled:
                task = asyncio.create_task(loop.run(), name="reminder-delivery")
            try:
                yield
            finally:
                loop.stop()
                if task:
                    await task
                for channel in loop.channels.values():
                    close = getattr(channel, "close", None)
                    if close:
                        await close()

    app.router.lifespan_context = lifespan
    return app
