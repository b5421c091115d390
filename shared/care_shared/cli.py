"""The command line every service shares: `serve` (default), `relay`, `migrate`, and the
operator's reads `audit` and `outbox` (which carectl runs for each service)."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import nats
import uvicorn
from fastapi import FastAPI

from care_shared.audit import audit_rows
from care_shared.db import Database
from care_shared.migrations import migrate
from care_shared.nats_auth import client_options
from care_shared.outbox import OutboxRelay, set_aside_rows
from care_shared.rebuild import RebuildReport
from care_shared.service import Runtime
from care_shared.settings import ServiceSettings
from care_shared.telemetry import build_tracer_provider, configure_logging
from care_shared.topology import ensure_own_stream


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def serve(settings: ServiceSettings, make_app: Callable[[], FastAPI]) -> int:
    if not port_is_free(settings.http_host, settings.http_port):
        print(
            f"{settings.service_name}: port {settings.http_port} on {settings.http_host} is taken; "
            f"set HTTP_PORT to a free port",
            file=sys.stderr,
        )
        return 2
    uvicorn.run(
        make_app(),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=20,
        # Past this many connections at once, a 503 rather than an unbounded queue.
        limit_concurrency=settings.http_limit_concurrency,
    )
    return 0


async def run_relay(settings: ServiceSettings, source: str) -> None:
    """The outbox relay as its own process, for when it is scaled or restarted apart from
    the API. It notices new rows by polling (another process's commits cannot wake it)."""
    configure_logging(settings)
    db = Database.from_settings(settings)
    provider = build_tracer_provider(settings)
    nc = await nats.connect(
        servers=settings.nats_servers(), max_reconnect_attempts=-1, **client_options(settings)
    )
    js = nc.jetstream()
    await ensure_own_stream(js, settings.service_name, settings.nats_stream_replicas)
    relay = OutboxRelay(
        db,
        source,
        lambda: js,
        batch_size=settings.relay_batch_size,
        poll_seconds=min(settings.relay_poll_seconds, 0.2),
        tracer_provider=provider,
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, relay.stop)
    try:
        await relay.run()
    finally:
        await nc.drain()
        await db.dispose()
        provider.shutdown()


Rebuild = Callable[[Database, ServiceSettings, bool], Awaitable[RebuildReport]]


def audit_command(settings: ServiceSettings, patient_id: str | None, actor_id: str | None) -> int:
    """This service's access audit as JSON lines, newest first (carectl audit merges them)."""

    async def run() -> list[dict]:
        db = Database(settings.database_url)
        try:
            return await audit_rows(db, patient_id=patient_id, actor_id=actor_id)
        finally:
            await db.dispose()

    for row in asyncio.run(run()):
        print(json.dumps({**row, "service": settings.service_name}, default=str))
    return 0


def outbox_command(settings: ServiceSettings) -> int:
    """Outbox rows set aside as unpublishable, with why, as JSON lines (carectl outbox)."""

    async def run() -> list[dict]:
        db = Database(settings.database_url)
        try:
            return await set_aside_rows(db)
        finally:
            await db.dispose()

    for row in asyncio.run(run()):
        print(json.dumps({**row, "service": settings.service_name}, default=str))
    return 0


def key_command(db: Database, step: Callable[[], Awaitable[dict]]) -> int:
    """An operator's key command (rotate, revoke): print its JSON answer, or say what it could
    not find (a LookupError) on stderr with exit 1; the database is closed either way."""

    async def run() -> dict:
        try:
            return await step()
        finally:
            await db.dispose()

    try:
        print(json.dumps(asyncio.run(run())))
    except LookupError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0


def rebuild_command(settings: ServiceSettings, migrations: Path, rebuild: Rebuild, progress: bool) -> int:
    """Replay the service's events into a fresh projection, compare with the live one, print
    the report; exit 1 when they differ."""

    async def run() -> dict:
        db = Database.from_settings(settings)
        try:
            await migrate(db, migrations)
            return (await rebuild(db, settings, progress)).to_json()
        finally:
            await db.dispose()

    report = asyncio.run(run())
    print(json.dumps(report, indent=2))
    return 0 if report["identical_to_live"] else 1


def main(
    argv: list[str] | None,
    *,
    settings: ServiceSettings,
    make_runtime: Callable[[], Runtime],
    make_app: Callable[[Runtime], FastAPI],
    extra: Callable[[argparse._SubParsersAction], None] | None = None,
    rebuild: Rebuild | None = None,
) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {settings.service_name}")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="run the HTTP API, its consumers and its outbox relay (default)")
    sub.add_parser("relay", help="run only the outbox relay, as its own process")
    sub.add_parser("migrate", help="apply database migrations and exit")
    audit = sub.add_parser("audit", help="the access audit as JSON lines, newest first")
    audit.add_argument("--patient", help="one patient's id")
    audit.add_argument("--actor", help="one clinic's or coordinator's id")
    audit.set_defaults(handler=lambda args: audit_command(settings, args.patient, args.actor))
    sub.add_parser("outbox", help="outbox rows set aside as unpublishable, as JSON lines").set_defaults(
        handler=lambda args: outbox_command(settings)
    )
    if rebuild:
        p = sub.add_parser(
            "rebuild", help="replay events into a fresh projection and compare it with the live one"
        )
        p.add_argument("--progress", action="store_true", help="draw a progress bar on stderr")
        p.set_defaults(
            handler=lambda args: rebuild_command(settings, make_runtime().migrations, rebuild, args.progress)
        )
    if extra:
        extra(sub)
    args = parser.parse_args(argv)
    command = args.command or "serve"
    if command == "serve":
        return serve(settings, lambda: make_app(make_runtime()))
    if command == "relay":
        asyncio.run(run_relay(settings, make_runtime().source))
        return 0
    if command == "migrate":
        runtime = make_runtime()
        asyncio.run(migrate(runtime.db, runtime.migrations))
        return 0
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    return handler(args)
