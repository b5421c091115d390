"""Errors a client can cause, typed, mapped to RFC 9457 problem+json in one place.

Every problem names the field that failed (`field`, and `errors` for all of them). Values
the client sent are never echoed back, since they may be clinical data.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from care_shared.eventstore import EVENT_DATA_LIMIT, EventTooLarge

# The refusal family lives in care_shared.refusals (pure); re-exported for its old importers.
from care_shared.refusals import (  # noqa: F401
    PROBLEM_BASE,
    Conflict,
    IdempotencyKeyReused,
    InvalidField,
    NotFound,
    ProblemError,
    Refusal,
    Unauthorized,
)
from care_shared.transient import DATABASE_BUSY, DatabaseBusy, transient_kind

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


_PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details; `field` names what to fix",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "field": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "detail": {"type": "string"}},
            },
        },
    },
    "required": ["type", "title", "status"],
}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_JSON: {"schema": _PROBLEM_SCHEMA}}}


# Documented on every route: what a client can get wrong, and how it is told.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _problem("Malformed JSON"),
    401: _problem("No API key, or an unknown or revoked one"),
    404: _problem("No such resource for this clinic"),
    409: _problem("Conflicts with the current state"),
    422: _problem("A field failed validation; `field` names it"),
    503: _problem(
        "Briefly unavailable (the database busy or its connection lost): retry with the same Idempotency-Key"
    ),
}


def problem_response(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:]
    return ".".join(parts) or "body"


# SQLSTATE class 08 (connection exception) and 57P01-03 (the server is shutting down, or a
# backend was terminated by an administrator).
_CONNECTION_SQLSTATES = ("08", "57P01", "57P02", "57P03")


def connection_lost(exc: DBAPIError) -> bool:
    sqlstate = getattr(exc.orig, "sqlstate", None) or ""
    return (
        exc.connection_invalidated
        or isinstance(exc, OperationalError | InterfaceError)
        or sqlstate.startswith(_CONNECTION_SQLSTATES)
    )


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
        return problem_response(exc.status, exc.body(request.url.path), headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return problem_response(
                400,
                {
                    "type": PROBLEM_BASE + "malformed-json",
                    "title": "Malformed JSON",
                    "status": 400,
                    "detail": "The request body is not valid JSON.",
                    "field": "body",
                    "instance": request.url.path,
                },
            )
        fields = [
            {"field": _field_name(tuple(e.get("loc", ()))), "detail": e.get("msg", "invalid")} for e in errors
        ]
        return problem_response(
            422,
            {
                "type": PROBLEM_BASE + "invalid-field",
                "title": "Invalid field",
                "status": 422,
                "detail": "; ".join(f"{f['field']}: {f['detail']}" for f in fields),
                "field": fields[0]["field"] if fields else "body",
                "errors": fields,
                "instance": request.url.path,
            },
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(
            exc.status_code,
            {
                "type": "about:blank",
                "title": str(exc.detail),
                "status": exc.status_code,
                "instance": request.url.path,
            },
            getattr(exc, "headers", None),
        )

    @app.exception_handler(EventTooLarge)
    async def _too_large(request: Request, exc: EventTooLarge) -> JSONResponse:
        return problem_response(
            413,
            {
                "type": PROBLEM_BASE + "too-large",
                "title": "Too large",
                "status": 413,
                "detail": f"The record would be {exc.size} bytes; the limit is {EVENT_DATA_LIMIT}. Nothing was stored.",
                "field": "body",
                "instance": request.url.path,
            },
        )

    @app.exception_handler(DatabaseBusy)
    async def _database_busy(request: Request, exc: Exception) -> JSONResponse:
        # The lock wait is bounded (db.Database lock_timeout_seconds): say so, rather than
        # hold the client or blame a connection that is fine.
        log.warning("database busy", extra={"error": type(exc).__name__, "path": request.url.path})
        return problem_response(
            503,
            {
                "type": PROBLEM_BASE + "database-busy",
                "title": "Database busy",
                "status": 503,
                "detail": "The database is busy (a lock is held); nothing was stored. Retry with the same Idempotency-Key.",
                "instance": request.url.path,
            },
            {"Retry-After": "2"},
        )

    app.add_exception_handler(PoolTimeout, _database_busy)  # every pooled connection in use

    @app.exception_handler(DBAPIError)
    async def _database_away(request: Request, exc: DBAPIError) -> JSONResponse:
        if transient_kind(exc) == DATABASE_BUSY:
            return await _database_busy(request, exc)
        # A lost connection (failover, a terminated backend) rolled the request back whole:
        # tell the client to retry, with the same Idempotency-Key, rather than report a bug.
        if connection_lost(exc):
            log.warning("database unavailable", extra={"error": type(exc).__name__, "path": request.url.path})
            return problem_response(
                503,
                {
                    "type": PROBLEM_BASE + "unavailable",
                    "title": "Temporarily unavailable",
                    "status": 503,
                    "detail": "The database connection was lost; nothing was stored. Retry with the same Idempotency-Key.",
                    "instance": request.url.path,
                },
                {"Retry-After": "1"},
            )
        return await _unexpected(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", extra={"error": type(exc).__name__, "path": request.url.path})
        return problem_response(
            500,
            {
                "type": "about:blank",
                "title": "Internal server error",
                "status": 500,
                "instance": request.url.path,
            },
        )
