"""The access audit (HIPAA 164.312(b), DESIGN.md 5b): every request that reads or changes a
patient's data is recorded by the service that answered it, in its own database.

A row says who (a clinic's or a coordinator's id, never the key), which patient, which route
(the template, `/v1/patients/{patient_id}`, with the method), when, the answer's status and
the request's trace id. Nothing from the body or the query string. The table is append-only:
the code has no update or delete, and a trigger refuses both in SQLite and PostgreSQL.

The row is written before the answer's first byte leaves: a read that could not be recorded
is not answered (503), so the log never misses a read a client saw.

`carectl audit --patient ID` (or `--clinic ID`, `--coordinator ID`) prints it across the
services, newest first. No REST route exposes it: a clinic cannot read anyone's audit.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import sqlalchemy as sa
from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from care_shared.auth import access_metadata
from care_shared.db import Database
from care_shared.problems import PROBLEM_BASE, PROBLEM_JSON
from care_shared.transient import DATABASE_BUSY, transient_kind

log = logging.getLogger(__name__)

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

audit_log = sa.Table(
    "audit_log",
    access_metadata,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor_kind", sa.String(20), nullable=False),
    sa.Column("actor_id", sa.String(36), nullable=False),
    sa.Column("patient_id", sa.String(36), nullable=True),
    sa.Column("method", sa.String(10), nullable=False),
    sa.Column("route", sa.String(200), nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("trace_id", sa.String(32), nullable=True),
)

# A queue view answers for many patients: one row each, up to this many.
MAX_PATIENTS_PER_REQUEST = 1000
AUDITED_PREFIXES = ("/v1/patients", "/v1/referrals", "/v1/tasks", "/fhir", "/cds-services/")


def create_audit_table() -> None:
    """Migration helper (schema version 1 of audit_log), with the triggers that make it
    append-only."""
    from alembic import op

    op.create_table(
        "audit_log",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_kind", sa.String(20), nullable=False),
        sa.Column("actor_id", sa.String(36), nullable=False),
        sa.Column("patient_id", sa.String(36), nullable=True),
        sa.Column("method", sa.String(10), nullable=False),
        sa.Column("route", sa.String(200), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("trace_id", sa.String(32), nullable=True),
    )
    op.create_index("ix_audit_log_patient_at", "audit_log", ["patient_id", "at"])
    op.create_index("ix_audit_log_actor_at", "audit_log", ["actor_id", "at"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
            )


def actor_of(principal: Any) -> tuple[str, str] | None:
    if principal is None:
        return None
    if coordinator_id := getattr(principal, "coordinator_id", None):
        return "coordinator", coordinator_id
    if clinic_id := getattr(principal, "clinic_id", None):
        return "clinic", clinic_id
    return None


def patients_of(scope: Scope) -> list[str]:
    """The patients a request concerns: its path's patient, the `patient_id` query
    parameter, and any the route named (`request.state.audit_patient_ids`)."""
    found: list[str] = []
    if pid := (scope.get("path_params") or {}).get("patient_id"):
        found.append(str(pid))
    query = scope.get("query_string", b"")
    if b"patient_id" in query:
        found += parse_qs(query.decode("latin-1")).get("patient_id", [])
    found += list((scope.get("state") or {}).get("audit_patient_ids", ()))
    unique = list(dict.fromkeys(p[:36] for p in found if p))
    return unique[:MAX_PATIENTS_PER_REQUEST]


class AuditMiddleware:
    """Inside the edge (which leaves the principal in the request's state) and outside the
    routes (which leave the route template and path parameters in the scope)."""

    def __init__(self, app: ASGIApp, *, db: Database, prefixes: tuple[str, ...] = AUDITED_PREFIXES) -> None:
        self.app = app
        self.db = db
        self.prefixes = prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        state = {"recorded": False, "refused": False}

        async def record(status: int) -> None:
            state["recorded"] = True
            actor = actor_of((scope.get("state") or {}).get("principal"))
            if actor is None:
                return  # refused at the edge: no one to name, and nothing was read
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            patients = patients_of(scope) or [None]
            span = trace.get_current_span().get_span_context()
            now = datetime.now(UTC)
            rows = [
                {
                    "at": now,
                    "actor_kind": actor[0],
                    "actor_id": actor[1],
                    "patient_id": p,
                    "method": scope.get("method", "GET")[:10],
                    "route": route[:200],
                    "status": status,
                    "trace_id": format(span.trace_id, "032x") if span.is_valid else None,
                }
                for p in patients
            ]
            async with self.db.transaction() as session:
                await session.execute(sa.insert(audit_log), rows)

        async def send_recorded(message: Message) -> None:
            if state["refused"]:
                return
            if message["type"] == "http.response.start" and not state["recorded"]:
                try:
                    await record(message["status"])
                except Exception as exc:
                    log.error("audit write failed; answering 503", extra={"error": type(exc).__name__})
                    state["refused"] = True
                    problem = {
                        "type": PROBLEM_BASE + "unavailable",
                        "title": "Temporarily unavailable",
                        "status": 503,
                        "detail": "The access could not be recorded; nothing was answered. Retry.",
                        "instance": scope.get("path"),
                    }
                    retry_after = b"1"
                    if transient_kind(exc) == DATABASE_BUSY:  # a held lock: say so, as the routes do
                        problem |= {
                            "type": PROBLEM_BASE + "database-busy",
                            "title": "Database busy",
                            "detail": "The database is busy (a lock is held); the access could not be recorded, nothing was answered. Retry.",
                        }
                        retry_after = b"2"
                    body = json.dumps(problem).encode()
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 503,
                            "headers": [
                                (b"content-type", PROBLEM_JSON.encode()),
                                (b"content-length", str(len(body)).encode()),
                                (b"retry-after", retry_after),
                            ],
                        }
                    )
                    await send({"type": "http.response.body", "body": body})
                    return
            await send(message)

        try:
            await self.app(scope, receive, send_recorded)
        except Exception:
            if not state["recorded"]:
                try:
                    await record(500)
                except Exception:
                    log.error("audit write failed", extra={"status": 500})
            raise


async def audit_rows(
    db: Database, *, patient_id: str | None = None, actor_id: str | None = None, limit: int = 10_000
) -> list[dict[str, Any]]:
    query = sa.select(audit_log).order_by(audit_log.c.at.desc(), audit_log.c.id.desc()).limit(limit)
    if patient_id:
        query = query.where(audit_log.c.patient_id == patient_id)
    if actor_id:
        query = query.where(audit_log.c.actor_id == actor_id)
    async with db.read() as session:
        rows = (await session.execute(query)).mappings().all()
    return [
        {
            **dict(r),
            "at": r["at"].astimezone(UTC).isoformat()
            if r["at"].tzinfo
            else r["at"].replace(tzinfo=UTC).isoformat(),
        }
        for r in rows
    ]


def render(rows: Iterable[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            r["at"],
            r.get("service", ""),
            r["actor_kind"],
            r["actor_id"],
            r["patient_id"] or "-",
            r["method"],
            r["route"],
            str(r["status"]),
        ]
        for r in rows
    ]
