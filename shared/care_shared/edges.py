"""The HTTP edge (DESIGN.md 5b), as ASGI middleware in front of every route:

1. The key first: a request under `/v1/` without a known, unrevoked key is a 401 before one
   byte of its body is read (so a stranger's 100 MB POST costs a header parse).
2. Then the body limit: a `Content-Length` past the limit is a 413 at once; a body without
   one (chunked) is counted as it streams and refused as soon as it passes the limit. What
   passes is at most the limit, buffered, then handed to the app.
3. Security headers on every answer: a page CSP without inline script on HTML, a CSP that
   allows nothing on everything else, `X-Frame-Options: DENY`, `nosniff`, no referrer.

The principal the key belongs to is left in the request's state (`request.state.principal`)
so the route's dependency does not look the key up a second time.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from care_shared.problems import PROBLEM_BASE, PROBLEM_JSON, Unauthorized, connection_lost
from care_shared.transient import DATABASE_BUSY, DatabaseBusy, transient_kind

Authenticate = Callable[[str], Awaitable[Any | None]]

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)
API_CSP = "default-src 'none'; frame-ancestors 'none'"
# The API explorer's assets come from the CDN FastAPI uses; its start-up script is ours (/docs/init.js).
DOCS_CSP = (
    "default-src 'self'; script-src 'self' https://cdn.jsdelivr.net; style-src 'self' https://cdn.jsdelivr.net; "
    "img-src 'self' data: https://fastapi.tiangolo.com; connect-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)


def bearer_token(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            return token if scheme.lower() == "bearer" and token else None
    return None


def _header(scope: Scope, wanted: bytes) -> bytes | None:
    for name, value in scope.get("headers", ()):
        if name == wanted:
            return value
    return None


async def _answer(
    send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] = ()
) -> None:  # type: ignore[assignment]
    raw = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            # The client may still be sending: tell it the connection ends with this answer.
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(raw)).encode()),
                (b"connection", b"close"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": raw})


def too_large(limit: int, path: str) -> dict[str, Any]:
    return {
        "type": PROBLEM_BASE + "body-too-large",
        "title": "Request body too large",
        "status": 413,
        "detail": f"The body is larger than {limit} bytes. Nothing was read or stored.",
        "field": "body",
        "errors": [{"field": "body", "detail": f"larger than {limit} bytes"}],
        "instance": path,
        "limit_bytes": limit,
    }


class EdgeMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticate: Authenticate,
        body_limit: int,
        # FHIR (intake, referral) and CDS Hooks calls (pathway) take the clinic key too.
        protected_prefixes: tuple[str, ...] = ("/v1/", "/fhir", "/cds-services/"),
    ) -> None:
        self.app = app
        self.authenticate = authenticate
        self.body_limit = body_limit
        self.protected = protected_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path.startswith(self.protected):
            token = bearer_token(scope)
            try:
                principal = await self.authenticate(token) if token else None
            except (DBAPIError, DatabaseBusy, PoolTimeout) as exc:
                if transient_kind(exc) == DATABASE_BUSY:
                    await _answer(
                        send,
                        503,
                        {
                            "type": PROBLEM_BASE + "database-busy",
                            "title": "Database busy",
                            "status": 503,
                            "detail": "The database is busy (a lock is held); nothing was stored. Retry with the same Idempotency-Key.",
                            "instance": path,
                        },
                        [(b"retry-after", b"2")],
                    )
                    return
                if not isinstance(exc, DBAPIError) or not connection_lost(exc):
                    raise
                # A failover or a cut connection: retryable, as the routes themselves say.
                await _answer(
                    send,
                    503,
                    {
                        "type": PROBLEM_BASE + "unavailable",
                        "title": "Temporarily unavailable",
                        "status": 503,
                        "detail": "The database connection was lost; nothing was stored. Retry with the same Idempotency-Key.",
                        "instance": path,
                    },
                    [(b"retry-after", b"1")],
                )
                return
            if principal is None:
                problem = Unauthorized(
                    "an API key is required: Authorization: Bearer <key>"
                    if token is None
                    else "unknown or revoked API key",
                    field="Authorization",
                )
                await _answer(send, 401, problem.body(path), [(b"www-authenticate", b"Bearer")])
                return
            scope.setdefault("state", {})["principal"] = principal

        length = _header(scope, b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                declared = -1
            if declared < 0:
                await _answer(
                    send,
                    400,
                    {
                        "type": PROBLEM_BASE + "bad-request",
                        "title": "Bad request",
                        "status": 400,
                        "detail": "Content-Length is not a number",
                        "field": "Content-Length",
                        "instance": path,
                    },
                )
                return
            if declared > self.body_limit:
                await _answer(send, 413, too_large(self.body_limit, path))
                return
            if declared == 0:
                await self.app(scope, receive, send)
                return
        elif _header(scope, b"transfer-encoding") is None:
            await self.app(scope, receive, send)  # no body
            return

        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.body_limit:
                await _answer(send, 413, too_large(self.body_limit, path))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for a disconnect, as uvicorn would

        await self.app(scope, replay, send)


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, page_csp: dict[str, str] | None = None) -> None:
        self.app = app
        self.page_csp = page_csp or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"content-security-policy"
                ]
                content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                html = content_type.startswith(b"text/html")
                csp = self.page_csp.get(path, PAGE_CSP) if html else API_CSP
                headers += [(b"content-security-policy", csp.encode()), *SECURITY_HEADERS]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} - API</title>
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css">
</head>
<body>
<main id="swagger-ui"></main>
<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
"""

DOCS_INIT = """"use strict";
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
"""
