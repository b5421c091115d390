"""What every service's composition root assembles: database, event store, broker with
telemetry, consumers, outbox relay, and a FastAPI app with health, readiness, problem+json
and clinic auth. Each service's `bootstrap.py` adds its own routes and handlers."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request, Response
from faststream.nats import NatsBroker
from faststream.nats.opentelemetry import NatsTelemetryMiddleware
from faststream.nats.security import NatsNKey, NatsSecurity
from nats.errors import Error as NatsError
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from care_shared.asyncapi import asyncapi_document
from care_shared.auth import (
    Clinic,
    bearer_key,
    clinic_for_key,
    record_clinic_key,
    record_patient_clinic,
)
from care_shared.clock import Clock, SystemClock
from care_shared.consumer import ConsumerPolicy, EventConsumers
from care_shared.contracts import EventData
from care_shared.contracts.intake import ClinicKeyRotated, ClinicRegistered
from care_shared.db import Database
from care_shared.envelope import Envelope
from care_shared.eventstore import EventStore
from care_shared.metrics import HttpMetricsMiddleware, ServiceMetrics
from care_shared.migrations import current_revision, head_revision, migrate
from care_shared.nats_auth import inbox_prefix, ssl_context
from care_shared.outbox import OutboxRelay
from care_shared.problems import (
    PROBLEM_RESPONSES,
    Unauthorized,
    connection_lost,
    install_problem_handlers,
    problem_response,
)
from care_shared.settings import ServiceSettings
from care_shared.telemetry import build_tracer_provider, configure_logging
from care_shared.topology import ensure_own_stream

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: ServiceSettings
    source: str
    migrations: Path
    db: Database
    store: EventStore
    broker: NatsBroker
    consumers: EventConsumers
    relay: OutboxRelay
    tracer_provider: TracerProvider
    metrics: ServiceMetrics
    clock: Clock = field(default_factory=SystemClock)
    head: str | None = None


def build_runtime(
    settings: ServiceSettings, *, source: str, migrations: Path, clock: Clock | None = None
) -> Runtime:
    configure_logging(settings)
    # Stable HTTP and database semantic conventions (http.request.method, url.path,
    # db.system.name...) rather than the instrumentations' older default names.
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http,database")
    tracer_provider = build_tracer_provider(settings)
    db = Database.from_settings(settings)
    SQLAlchemyInstrumentor().instrument(engine=db.engine.sync_engine, tracer_provider=tracer_provider)
    broker = NatsBroker(
        settings.nats_servers(),
        security=nats_security(settings),
        inbox_prefix=inbox_prefix(settings.nats_user_name),
        error_cb=report_bus_error,
        max_reconnect_attempts=-1,  # reconnect forever (nats-py gives up after ~2 min by default)
        graceful_timeout=15.0,  # on shutdown, finish in-flight handlers before closing
        middlewares=[NatsTelemetryMiddleware(tracer_provider=tracer_provider)],
        logger=logging.getLogger(f"{settings.service_name}.broker"),
        # FastStream's "Received"/"Processed" line per message is written outside the
        # message's span, so it can carry no trace id: keep it for DEBUG. What an operator
        # needs (failures, redeliveries, dead letters) the consumer logs inside the span.
        log_level=logging.DEBUG,
    )
    policy = ConsumerPolicy(
        max_deliver=settings.consumer_max_deliver,
        ack_wait_seconds=settings.consumer_ack_wait_seconds,
        backoff_seconds=tuple(settings.consumer_backoff_seconds),
        fetch_batch=settings.consumer_fetch_batch,
    )
    metrics = ServiceMetrics(settings.service_name)
    db.on_commit(metrics.on_appended)
    consumers = EventConsumers(
        settings.service_name, broker, db, policy, metrics, inbox=inbox_prefix(settings.nats_user_name)
    )
    relay = OutboxRelay(
        db,
        source,
        lambda: broker.connection.jetstream(),
        batch_size=settings.relay_batch_size,
        poll_seconds=settings.relay_poll_seconds,
        tracer_provider=tracer_provider,
        metrics=metrics,
    )

    async def refresh_backlog() -> None:
        metrics.outbox_backlog.set(await relay.backlog())

    metrics.refreshers += [refresh_backlog, consumers.refresh_lag]
    return Runtime(
        settings=settings,
        source=source,
        migrations=migrations,
        db=db,
        store=EventStore(),
        broker=broker,
        consumers=consumers,
        relay=relay,
        tracer_provider=tracer_provider,
        metrics=metrics,
        clock=clock or SystemClock(),
    )


def nats_security(settings: ServiceSettings) -> NatsSecurity | None:
    """The service's nkey (and TLS, past one machine) for FastStream's broker."""
    tls = ssl_context(settings.nats_ca_file, settings.nats_cert_file, settings.nats_key_file)
    if settings.nats_nkey_file:
        return NatsNKey(settings.nats_nkey_file, ssl_context=tls, use_ssl=tls is not None)
    if tls is not None:
        return NatsSecurity(ssl_context=tls, use_ssl=True)
    return None


async def report_bus_error(exc: Exception) -> None:
    """NATS refuses a forbidden publish or subscribe quietly (the caller only times out); the
    server's -ERR comes here. Said loudly, with the subject (ids only), never the payload."""
    text = str(exc)
    if "permissions violation" in text.lower() or "authorization" in text.lower():
        log.error("NATS refused an operation", extra={"error": text[:300]})
    else:
        log.warning("NATS error", extra={"error": type(exc).__name__})


def _transient(exc: BaseException) -> bool:
    """A failure that passes by itself: the database connection dropped (a restart, a failover,
    an administrator's pg_terminate_backend) or NATS not answering yet."""
    if isinstance(exc, DBAPIError):
        return connection_lost(exc)
    return isinstance(exc, NatsError | TimeoutError | OSError)


async def until_done(what: str, step: Callable[[], Awaitable[None]]) -> None:
    """Run a start-up step again after transient failures, however long they last: a service
    whose database blinked while it migrated should wait and go on, not exit and lose its turn.
    Anything else (a broken migration, a bad configuration) still fails the start at once."""
    delay = 0.2
    while True:
        try:
            await step()
            return
        except Exception as exc:
            if not _transient(exc):
                raise
            log.warning(
                "start-up step failed; retrying",
                extra={"step": what, "error": type(exc).__name__, "retry_in_s": delay},
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def connect_broker(broker: NatsBroker, url: str) -> None:
    """Wait for NATS at start-up, however long it takes: the service is not ready until then."""
    delay = 0.2
    while True:
        try:
            await broker.connect()
            return
        except Exception as exc:
            log.warning("NATS not reachable yet", extra={"error": type(exc).__name__, "retry_in_s": delay})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def create_service_app(
    runtime: Runtime,
    *,
    title: str,
    description: str,
    routers: Sequence[APIRouter] = (),
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with suppress_instrumentation():  # start-up queries are not anybody's request
            await until_done("migrations", lambda: migrate(runtime.db, runtime.migrations))
        runtime.head = head_revision(runtime.migrations)
        await connect_broker(runtime.broker, runtime.settings.nats_url)
        await until_done(
            "streams",
            lambda: ensure_own_stream(
                runtime.broker.connection.jetstream(),
                runtime.settings.service_name,
                runtime.settings.nats_stream_replicas,
            ),
        )
        await runtime.broker.start()
        relay_task = None
        if runtime.settings.relay_enabled:
            relay_task = asyncio.create_task(runtime.relay.run(), name="outbox-relay")
        log.info("service started", extra={"service": runtime.settings.service_name})
        try:
            yield
        finally:
            if relay_task:
                runtime.relay.stop()
                await relay_task
            await runtime.broker.stop()
            await runtime.db.dispose()
            runtime.tracer_provider.shutdown()

    app = FastAPI(title=title, description=description, version="1.0.0", lifespan=lifespan)
    app.state.runtime = runtime
    install_problem_handlers(app)

    @app.get("/healthz", tags=["operations"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="Database, NATS and migrations are ready")
    async def readyz():  # noqa: ANN202
        checks: dict[str, str] = {}
        # Probes are not traced (excluded_urls below), so their queries would each be a
        # root trace of their own, every few seconds from every orchestrator.
        with suppress_instrumentation():
            try:
                async with runtime.db.read() as session:
                    await session.execute(text("SELECT 1"))
                checks["database"] = "ok"
            except Exception as exc:
                checks["database"] = type(exc).__name__
            try:
                revision = await current_revision(runtime.db)
                checks["migrations"] = "ok" if revision and revision == runtime.head else f"at {revision}"
            except Exception as exc:
                checks["migrations"] = type(exc).__name__
        try:
            connected = runtime.broker.connection.is_connected
        except Exception:
            connected = False
        checks["nats"] = "ok" if connected else "disconnected"
        ready = all(v == "ok" for v in checks.values())
        if ready:
            return {"status": "ready", "checks": checks}
        return problem_response(
            503,
            {"type": "about:blank", "title": "Not ready", "status": 503, "checks": checks},
        )

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics",
        response_class=Response,
        responses={
            200: {
                "content": {"text/plain": {"schema": {"type": "string"}}},
                "description": "Prometheus text format",
            }
        },
    )
    async def metrics() -> Response:
        await runtime.metrics.refresh()
        return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/asyncapi.json", tags=["operations"], summary="AsyncAPI 3.0 document of this service's events")
    async def asyncapi() -> dict:
        subscriptions = {d: s for d, s in runtime.consumers.subjects.items()}
        return asyncapi_document(runtime.settings.service_name, f"{title}: events", subscriptions)

    for router in routers:
        app.include_router(router, responses=PROBLEM_RESPONSES)
    app.add_middleware(HttpMetricsMiddleware, metrics=runtime.metrics)
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=runtime.tracer_provider, excluded_urls="healthz,readyz"
    )
    return app


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime


async def current_clinic(request: Request) -> Clinic:
    """FastAPI dependency: the clinic whose API key signs this request."""
    key = bearer_key(request)
    async with runtime_of(request).db.read() as session:
        clinic = await clinic_for_key(session, key)
    if clinic is None:
        raise Unauthorized("unknown or revoked API key", field="Authorization")
    return clinic


async def project_access(session, envelope: Envelope, payload: EventData) -> None:  # noqa: ANN001
    """Keep this service's copy of clinic keys and patient ownership from intake's events."""
    if isinstance(payload, ClinicRegistered):
        await record_clinic_key(session, payload.clinic_id, payload.key_sha256)
    elif isinstance(payload, ClinicKeyRotated):
        await record_clinic_key(
            session, payload.clinic_id, payload.key_sha256, replaces_sha256=payload.replaces_sha256
        )
    patient_id = getattr(payload, "patient_id", None)
    if patient_id and envelope.clinicid:
        await record_patient_clinic(session, patient_id, envelope.clinicid)
