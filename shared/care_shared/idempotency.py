"""`Idempotency-Key` on POST: the same key and request return the first answer and do
nothing again; the same key with a different request is a 422.

"The same request" is the same method, path and JSON body compared as canonical JSON (keys
sorted, no insignificant whitespace), so a client that re-serialises its retry is not told
it changed it. A key is remembered for 24 hours (IDEMPOTENCY_TTL_HOURS): after that it is
forgotten (the service purges old keys hourly) and a request with it is a new request.

The remembered answer is written in the same transaction as the command's events, so a
crash cannot leave events without their answer or an answer without its events.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import Request
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from care_shared.db import Database
from care_shared.eventstore import ConcurrencyError, idempotency_keys
from care_shared.problems import Conflict, IdempotencyKeyReused, InvalidField

Command = Callable[[AsyncSession], Awaitable[tuple[int, dict[str, Any]]]]

MAX_KEY_LENGTH = 200
RETRIES_ON_CONFLICT = 5


DEFAULT_TTL = timedelta(hours=24)


def canonical_body(raw: bytes) -> bytes:
    """The body as canonical JSON; bytes that are not JSON are compared as they are."""
    if not raw.strip():
        return b""
    try:
        parsed = json.loads(raw)
    except ValueError:
        return raw
    return json.dumps(parsed, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


async def request_fingerprint(request: Request) -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode() + b" " + request.url.path.encode() + b"\n")
    digest.update(canonical_body(await request.body()))
    return digest.hexdigest()


def _ttl(request: Request) -> timedelta:
    try:
        return timedelta(hours=float(request.app.state.runtime.settings.idempotency_ttl_hours))
    except AttributeError:
        return DEFAULT_TTL


async def purge_expired_keys(db: Database, ttl: timedelta = DEFAULT_TTL, now: datetime | None = None) -> int:
    """Forget Idempotency-Keys older than `ttl`; how many were forgotten."""
    cutoff = (now or datetime.now(UTC)) - ttl
    async with db.transaction() as session:
        result = await session.execute(delete(idempotency_keys).where(idempotency_keys.c.created_at < cutoff))
    return result.rowcount or 0


async def run_command(db: Database, request: Request, scope: str, command: Command) -> tuple[int, dict[str, Any]]:
    """Run `command` in a transaction, honouring the request's Idempotency-Key, and retry it
    from a fresh read when another writer appended to the same stream first."""
    key = request.headers.get("idempotency-key")
    if key is not None and not (0 < len(key) <= MAX_KEY_LENGTH):
        raise InvalidField(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters", field="Idempotency-Key"
        )
    fingerprint = await request_fingerprint(request) if key else ""
    ttl = _ttl(request)
    for _ in range(RETRIES_ON_CONFLICT):
        try:
            async with db.transaction() as session:
                if key:
                    prior = await _remembered(session, scope, key)
                    if prior is not None and _older_than(prior.created_at, ttl):
                        # Expired: forgotten, as the hourly purge would have done.
                        await session.execute(
                            delete(idempotency_keys).where(
                                idempotency_keys.c.scope == scope, idempotency_keys.c.key == key
                            )
                        )
                        prior = None
                    if prior is not None:
                        if prior.request_hash != fingerprint:
                            raise IdempotencyKeyReused(
                                "this Idempotency-Key was used for a different request",
                                field="Idempotency-Key",
                            )
                        return prior.status_code, prior.response
                status, body = await command(session)
                if key:
                    await session.execute(
                        insert(idempotency_keys).values(
                            scope=scope,
                            key=key,
                            request_hash=fingerprint,
                            status_code=status,
                            response=body,
                            created_at=datetime.now(UTC),
                        )
                    )
                return status, body
        except ConcurrencyError:
            continue  # another request appended first: decide again on the new state
        except IntegrityError:
            if not key:
                raise
            continue  # the same key raced us: the next pass returns its answer
    raise Conflict("the patient's record is changing too fast; retry the request")


def _older_than(created_at: datetime, ttl: timedelta) -> bool:
    at = created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC)
    return datetime.now(UTC) - at > ttl


async def _remembered(session: AsyncSession, scope: str, key: str):  # noqa: ANN202
    return (
        await session.execute(
            select(idempotency_keys).where(
                idempotency_keys.c.scope == scope, idempotency_keys.c.key == key
            )
        )
    ).first()
