"""What every service's composition root assembles: database, event store, broker with
telemetry, consumers, outbox relay, and a FastAPI app with health, readiness, problem+json,
clinic auth, the HTTP edge (key before body, body limit, security headers) and the access
audit. Each service's `bootstrap.py` adds its own routes and handlers.

Start-up never holds HTTP hostage: `/healthz` answers as soon as the process listens; the
database migrations, the NATS connection, the streams and the consumers start in the
background, `/readyz` names what is still missing, and SIGTERM stops the process in any of
those states. Routes under `/v1/` answer 503 only until the migrations are applied: with
NATS away a clinic's writes are stored and wait in the outbox."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import HTMLResponse
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
from starlette.types import ASGIApp, Receive, Scope, Send

from care_shared.asyncapi import asyncapi_document
from care_shared.audit import AuditMiddleware
from care_shared.auth import (
    Clinic,
    access_event_failures,
    bearer_key,
    clinic_for_key,
    record_clinic_key,
    record_patient_clinic,
    revoke_clinic_key,
)
from care_shared.clock import Clock, SystemClock
from care_shared.consumer import ConsumerPolicy, EventConsumers, Handler
from care_shared.contracts import EventData
from care_shared.contracts.intake import ClinicKeyRevoked, ClinicKeyRotated, ClinicRegistered
from care_shared.db import Database
from care_shared.edges import DOCS_CSP, DOCS_INIT, DOCS_PAGE, EdgeMiddleware, SecurityHeadersMiddleware
from care_shared.envelope import Envelope, nats_subject
from care_shared.eventstore import EventStore, outbox
from care_shared.idempotency import purge_expired_keys
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

KEY_EVENTS = (ClinicRegistered, ClinicKeyRotated, ClinicKeyRevoked)
# Their NATS subjects, `intake.clinic-key-revoked.<clinic id>`: known before the data is read.
KEY_SUBJECTS = tuple(nats_subject(e.event_type, "x")[:-1] for e in KEY_EVENTS)
Authenticate = Callable[["Runtime", str], Awaitable[object | None]]


class StartupState:
    """Where the background start-up is: readiness reads it, NATS' callbacks feed it."""

    def __init__(self) -> None:
        self.step = "not started"
        self.migrated = asyncio.Event()
        self.started = asyncio.Event()
        self.blocked = asyncio.Event()  # a step is waiting on something (NATS, the database)
        self.nats_error: str | None = None
        self.stopping = False
        self._last_logged = 0.0

    async def nats_error_cb(self, exc: Exception) -> None:
        await report_bus_error(exc)  # a refused publish or subscribe is said loudly
        self.nats_error = type(exc).__name__
        if not self.started.is_set():
            self.blocked.set()
        loop = asyncio.get_running_loop()
        if loop.time() - self._last_logged > 5.0:  # once per 5 s, not once per attempt
            self._last_logged = loop.time()
            log.warning("NATS not reachable", extra={"error": self.nats_error, "step": self.step})

    async def nats_disconnected_cb(self) -> None:
        if not self.stopping:
            log.warning("NATS connection lost; reconnecting")

    async def nats_reconnected_cb(self) -> None:
        self.nats_error = None
        log.info("NATS connection restored")


class _AccessGuardedConsumers(EventConsumers):
    """Every handler wrapped so that a key event it fails to apply is never silent: counted
    (care_access_events_failed) and recorded in access_event_failures, which /readyz reports
    until the event is applied (a redelivery, or `carectl dlq replay` after a fix)."""

    def subscribe(self, purpose: str, stream: str, subject: str, handler: Handler) -> str:
        durable = f"{self.service}-{purpose}"
        return super().subscribe(purpose, stream, subject, self._guarded(durable, handler))

    def _guarded(self, durable: str, handler: Handler) -> Handler:
        async def guarded(session, envelope: Envelope, payload: EventData) -> None:
            if not isinstance(payload, KEY_EVENTS):
                await handler(session, envelope, payload)
                return
            try:
                await handler(session, envelope, payload)
            except Exception as exc:
                self.metrics.access_events_failed.labels(envelope.type).inc()
                log.error(
                    "key event not applied",
                    extra={
                        "consumer": durable,
                        "event_id": envelope.id,
                        "type": envelope.type,
                        "error": type(exc).__name__,
                    },
                )
                # After this transaction rolls back (SQLite has one writer, and it is ours).
                task = asyncio.get_running_loop().create_task(
                    self._record_failure(durable, envelope, payload, type(exc).__name__)
                )
                _background.add(task)
                task.add_done_callback(_background.discard)
                raise
            await session.execute(
                sa.delete(access_event_failures).where(access_event_failures.c.event_id == envelope.id)
            )

        return guarded

    async def _dead_letter(self, msg, durable: str, reason: str, *args, **kwargs) -> None:
        """A key event dead-lettered before any handler saw it (its data failed the schema, say)
        is recorded too: whatever the path, an unapplied key event is never silent."""
        await super()._dead_letter(msg, durable, reason, *args, **kwargs)
        raw = msg.raw_message
        if not raw.subject.startswith(KEY_SUBJECTS):
            return
        try:
            parsed = json.loads(raw.data)
            event_id, event_type = str(parsed["id"])[:36], str(parsed["type"])
        except Exception:
            return
        if not any(event_type.startswith(e.event_type.rsplit(".", 1)[0] + ".") for e in KEY_EVENTS):
            return
        self.metrics.access_events_failed.labels(event_type[:160]).inc()
        log.error(
            "key event dead-lettered: not applied",
            extra={"consumer": durable, "event_id": event_id, "type": event_type[:160]},
        )
        task = asyncio.get_running_loop().create_task(
            self._record(durable, event_id, event_type[:160], None, "dead-lettered")
        )
        _background.add(task)
        task.add_done_callback(_background.discard)

    async def _record_failure(self, durable: str, envelope: Envelope, payload: EventData, error: str) -> None:
        await self._record(durable, envelope.id, envelope.type, getattr(payload, "clinic_id", None), error)

    async def _record(
        self, durable: str, event_id: str, event_type: str, clinic_id: str | None, error: str
    ) -> None:
        values = {
            "event_id": event_id,
            "consumer": durable,
            "type": event_type,
            "clinic_id": clinic_id,
            "error": error,
            "failed_at": datetime.now(UTC),
        }
        for _ in range(20):
            try:
                with suppress_instrumentation():
                    async with self.db.transaction() as session:
                        await session.execute(
                            sa.delete(access_event_failures).where(
                                access_event_failures.c.event_id == event_id
                            )
                        )
                        await session.execute(sa.insert(access_event_failures).values(**values))
                return
            except Exception:
                await asyncio.sleep(0.5)
        log.error("could not record an unapplied key event", extra={"event_id": event_id})


_background: set[asyncio.Task] = set()


async def clinic_principal(runtime: Runtime, key: str) -> Clinic | None:
    async with runtime.db.read() as session:
        return await clinic_for_key(session, key)


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
    # Who a bearer key belongs to (a Clinic by default; referral adds coordinators).
    authenticate: Authenticate = clinic_principal
    startup: StartupState = field(default_factory=StartupState)
    # Steps that need NATS, run once it is connected and before the consumers start.
    after_connect: list[tuple[str, Callable[[], Awaitable[None]]]] = field(default_factory=list)


def build_runtime(
    settings: ServiceSettings, *, source: str, migrations: Path, clock: Clock | None = None
) -> Runtime:
    configure_logging(settings)
    # Stable HTTP and database semantic conventions (http.request.method, url.path,
    # db.system.name...) rather than the instrumentations' older default names.
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http,database")
    tracer_provider = build_tracer_provider(settings)
    startup = StartupState()
    db = Database.from_settings(settings)
    SQLAlchemyInstrumentor().instrument(engine=db.engine.sync_engine, tracer_provider=tracer_provider)
    broker = NatsBroker(
        settings.nats_servers(),
        security=nats_security(settings),
        inbox_prefix=inbox_prefix(settings.nats_user_name),
        max_reconnect_attempts=-1,  # reconnect forever (nats-py gives up after ~2 min by default)
        graceful_timeout=15.0,  # on shutdown, finish in-flight handlers before closing
        middlewares=[NatsTelemetryMiddleware(tracer_provider=tracer_provider)],
        logger=logging.getLogger(f"{settings.service_name}.broker"),
        # FastStream's "Received"/"Processed" line per message is written outside the
        # message's span, so it can carry no trace id: keep it for DEBUG. What an operator
        # needs (failures, redeliveries, dead letters) the consumer logs inside the span.
        log_level=logging.DEBUG,
        error_cb=startup.nats_error_cb,
        disconnected_cb=startup.nats_disconnected_cb,
        reconnected_cb=startup.nats_reconnected_cb,
    )
    policy = ConsumerPolicy(
        max_deliver=settings.consumer_max_deliver,
        ack_wait_seconds=settings.consumer_ack_wait_seconds,
        backoff_seconds=tuple(settings.consumer_backoff_seconds),
        fetch_batch=settings.consumer_fetch_batch,
        transient_first_seconds=settings.consumer_transient_first_seconds,
        transient_cap_seconds=settings.consumer_transient_cap_seconds,
    )
    metrics = ServiceMetrics(settings.service_name)
    db.on_commit(metrics.on_appended)
    consumers = _AccessGuardedConsumers(
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

    async def refresh_edges() -> None:
        async with db.read() as session:
            metrics.outbox_set_aside.set(
                (
                    await session.execute(
                        sa.select(sa.func.count())
                        .select_from(outbox)
                        .where(outbox.c.set_aside_at.is_not(None))
                    )
                ).scalar_one()
            )
            metrics.access_events_unapplied.set(
                (
                    await session.execute(sa.select(sa.func.count()).select_from(access_event_failures))
                ).scalar_one()
            )

    metrics.refreshers += [refresh_backlog, refresh_edges, consumers.refresh_lag]
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
        startup=startup,
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


async def until_done(
    what: str, step: Callable[[], Awaitable[None]], on_retry: Callable[[], None] | None = None
) -> None:
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
            if on_retry:
                on_retry()
            log.warning(
                "start-up step failed; retrying",
                extra={"step": what, "error": type(exc).__name__, "retry_in_s": delay},
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def connect_broker(broker: NatsBroker, url: str) -> None:
    """Wait for NATS at start-up, however long it takes: the service is not ready until then.
    nats-py retries by itself (max_reconnect_attempts=-1) and reports each failed attempt to
    the broker's error callback; this only says, every 10 s, that it is still waiting."""
    delay = 0.2
    while True:
        connecting = asyncio.ensure_future(broker.connect())
        waited = 0.0
        try:
            while not connecting.done():
                await asyncio.wait({connecting}, timeout=10.0)
                if not connecting.done():
                    waited += 10.0
                    log.warning("still waiting for NATS", extra={"waited_s": waited})
            connecting.result()
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # as before: whatever connecting raised, try again
            log.warning("NATS not reachable yet", extra={"error": type(exc).__name__, "retry_in_s": delay})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        finally:
            if not connecting.done():
                connecting.cancel()


async def start_in_background(runtime: Runtime) -> None:
    """Migrations, then NATS, streams, the service's own NATS steps, consumers and relay."""
    state = runtime.startup
    state.step = "migrations"
    with suppress_instrumentation():  # start-up queries are not anybody's request
        await until_done("migrations", lambda: migrate(runtime.db, runtime.migrations), state.blocked.set)
    runtime.head = head_revision(runtime.migrations)
    state.migrated.set()
    state.step = "nats"
    await connect_broker(runtime.broker, runtime.settings.nats_url)
    state.step = "streams"
    await until_done(
        "streams",
        lambda: ensure_own_stream(
            runtime.broker.connection.jetstream(),
            runtime.settings.service_name,
            runtime.settings.nats_stream_replicas,
        ),
        state.blocked.set,
    )
    for name, step in runtime.after_connect:
        state.step = name
        await until_done(name, step, state.blocked.set)
    state.step = "consumers"
    await runtime.broker.start()
    state.step = "started"
    state.started.set()
    log.info("service started", extra={"service": runtime.settings.service_name})


class StartupGate:
    """Routes that read data (/v1/, /fhir, /cds-services/, as the edge protects) need the
    schema: 503 (retry) until the migrations are applied."""

    NEEDS_SCHEMA = ("/v1/", "/fhir", "/cds-services/")

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and not self.runtime.startup.migrated.is_set()
            and scope.get("path", "").startswith(self.NEEDS_SCHEMA)
        ):
            response = problem_response(
                503,
                {
                    "type": "about:blank",
                    "title": "Starting",
                    "status": 503,
                    "detail": "The service is starting: retry shortly.",
                    "instance": scope.get("path"),
                },
                {"Retry-After": "1"},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def purge_idempotency_keys(runtime: Runtime, every_seconds: float = 3600.0) -> None:
    ttl = timedelta(hours=runtime.settings.idempotency_ttl_hours)
    await runtime.startup.migrated.wait()
    while True:
        try:
            with suppress_instrumentation():  # nobody's request: no root trace of its own
                purged = await purge_expired_keys(runtime.db, ttl)
            if purged:
                log.info("expired Idempotency-Keys purged", extra={"purged": purged})
        except Exception as exc:
            log.warning("Idempotency-Key purge failed", extra={"error": type(exc).__name__})
        await asyncio.sleep(every_seconds)


def create_service_app(
    runtime: Runtime,
    *,
    title: str,
    description: str,
    routers: Sequence[APIRouter] = (),
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = runtime.startup
        starting = asyncio.create_task(start_in_background(runtime), name="start-up")

        def failed(task: asyncio.Task) -> None:
            if not task.cancelled() and task.exception() is not None:
                # After HTTP is up, a real failure (not a wait) leaves /readyz at 503 on this step.
                state.step = f"{state.step} (failed: {type(task.exception()).__name__})"
                log.error(
                    "start-up failed", extra={"step": state.step, "error": type(task.exception()).__name__}
                )

        starting.add_done_callback(failed)
        # Wait while start-up makes progress (everything is up: the usual case, and what
        # in-process tests rely on); stop waiting, and serve HTTP, as soon as a step is
        # blocked on an absent database or NATS.
        blocked = asyncio.create_task(state.blocked.wait())
        await asyncio.wait({starting, blocked}, timeout=30.0, return_when=asyncio.FIRST_COMPLETED)
        blocked.cancel()
        if starting.done() and starting.exception():
            raise starting.exception()  # a real failure (a broken migration) fails the start
        if not starting.done():
            log.warning(
                "serving HTTP while start-up waits",
                extra={"step": state.step, "nats_error": state.nats_error},
            )
        relay_task = None

        async def relay_when_started() -> None:
            await state.started.wait()
            await runtime.relay.run()

        if runtime.settings.relay_enabled:
            relay_task = asyncio.create_task(relay_when_started(), name="outbox-relay")
        purge_task = asyncio.create_task(purge_idempotency_keys(runtime), name="idempotency-purge")
        try:
            yield
        finally:
            state.stopping = True
            if not starting.done():
                starting.cancel()
            purge_task.cancel()
            if relay_task:
                runtime.relay.stop()
                if state.started.is_set():
                    await relay_task
                else:
                    relay_task.cancel()
            for task in (starting, purge_task, relay_task):
                if task:
                    try:
                        await task
                    except (asyncio.CancelledError, Exception):
                        pass
            await runtime.broker.stop()
            await runtime.db.dispose()
            runtime.tracer_provider.shutdown()

    app = FastAPI(
        title=title,
        description=description,
        version="1.0.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = runtime
    install_problem_handlers(app)

    @app.get("/healthz", tags=["operations"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="Database, NATS and migrations are ready")
    async def readyz():
        checks: dict[str, str] = {}
        state = runtime.startup
        if not state.started.is_set():  # shown only while it is not done
            checks["start-up"] = f"waiting at {state.step}"
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
            if checks["migrations"] == "ok":
                try:
                    async with runtime.db.read() as session:
                        unapplied = (
                            (
                                await session.execute(
                                    sa.select(access_event_failures.c.type).order_by(
                                        access_event_failures.c.failed_at
                                    )
                                )
                            )
                            .scalars()
                            .all()
                        )
                    if unapplied:  # shown only when there are some
                        checks["key events"] = (
                            f"{len(unapplied)} not applied ({unapplied[0]}): an old key may still work here; see carectl dlq list"
                        )
                except Exception as exc:
                    checks["key events"] = type(exc).__name__
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

    @app.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    async def docs() -> HTMLResponse:
        return HTMLResponse(DOCS_PAGE.format(title=title.replace("<", "&lt;")))

    @app.get("/docs/init.js", include_in_schema=False)
    async def docs_init() -> Response:
        return Response(DOCS_INIT, media_type="text/javascript")

    for router in routers:
        app.include_router(router, responses=PROBLEM_RESPONSES)

    async def authenticate(key: str) -> object | None:
        return await runtime.authenticate(runtime, key)

    # Outermost last: headers on every answer; metrics see every status; no /v1/ route
    # before the schema exists; the key, then the body limit; the audit around the routes.
    app.add_middleware(AuditMiddleware, db=runtime.db)
    app.add_middleware(
        EdgeMiddleware, authenticate=authenticate, body_limit=runtime.settings.http_body_limit_bytes
    )
    app.add_middleware(StartupGate, runtime=runtime)
    app.add_middleware(HttpMetricsMiddleware, metrics=runtime.metrics)
    app.add_middleware(SecurityHeadersMiddleware, page_csp={"/docs": DOCS_CSP})
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=runtime.tracer_provider, excluded_urls="healthz,readyz"
    )
    return app


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime


async def current_clinic(request: Request) -> Clinic:
    """FastAPI dependency: the clinic whose API key signs this request (the edge has
    checked the key before the body was read, and left who it is in the request's state)."""
    principal = getattr(request.state, "principal", None)
    if isinstance(principal, Clinic):
        return principal
    if principal is not None:  # e.g. a coordinator's key on a clinic's route
        raise Unauthorized("unknown or revoked API key", field="Authorization")
    key = bearer_key(request)
    async with runtime_of(request).db.read() as session:
        clinic = await clinic_for_key(session, key)
    if clinic is None:
        raise Unauthorized("unknown or revoked API key", field="Authorization")
    return clinic


async def project_access(session, envelope: Envelope, payload: EventData) -> None:
    """Keep this service's copy of clinic keys and patient ownership from intake's events."""
    if isinstance(payload, ClinicRegistered):
        await record_clinic_key(session, payload.clinic_id, payload.key_sha256)
    elif isinstance(payload, ClinicKeyRotated):
        await record_clinic_key(
            session, payload.clinic_id, payload.key_sha256, replaces_sha256=payload.replaces_sha256
        )
    elif isinstance(payload, ClinicKeyRevoked):
        await revoke_clinic_key(session, payload.clinic_id, payload.key_sha256)
    patient_id = getattr(payload, "patient_id", None)
    if patient_id and envelope.clinicid:
        await record_patient_clinic(session, patient_id, envelope.clinicid)
