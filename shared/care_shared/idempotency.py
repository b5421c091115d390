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
from datetime import UTC, datetime, timedelta

from fastapi import Request
from sqlalchemy import delete

from care_shared.db import Database
from care_shared.eventstore import idempotency_keys

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


async def purge_expired_keys(db: Database, ttl: timedelta = DEFAULT_TTL, now: datetime | None = None) -> int:
    """Forget Idempotency-Keys older than `ttl`; how many were forgotten."""
    cutoff = (now or datetime.now(UTC)) - ttl
    async with db.transaction() as session:
        result = await session.execute(delete(idempotency_keys).where(idempotency_keys.c.created_at < cutoff))
    return result.rowcount or 0


def __getattr__(name: str):
    # The pipeline moved to care_shared.commands; the old import path works for one release.
    if name in {"run_command", "Command", "MAX_KEY_LENGTH", "RETRIES_ON_CONFLICT"}:
        from care_shared import commands

        return getattr(commands, name)
    raise AttributeError(name)
