"""The one command pipeline every service's writes go through: the Idempotency-Key, one
transaction, a retry from a fresh read when another writer appended to the same stream
first, and refusals left to the one mapping in `care_shared.problems`.

`execute` knows nothing of HTTP (tests drive it with the in-memory unit of work);
`run_command` is its HTTP face: the key and the request's fingerprint come from the request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from fastapi import Request
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from care_shared.eventstore import ConcurrencyError, idempotency_keys
from care_shared.idempotency import DEFAULT_TTL, request_fingerprint
from care_shared.memory import InMemoryDatabase, InMemoryIdempotencyKeys, KeyTaken
from care_shared.refusals import Conflict, IdempotencyKeyReused, InvalidField

Command = Callable[[Any], Awaitable[tuple[int, dict[str, Any]]]]

MAX_KEY_LENGTH = 200
RETRIES_ON_CONFLICT = 5


class IdempotencyKeys(Protocol):
    async def remembered(self, session: Any, scope: str, key: str) -> Any: ...
    async def forget(self, session: Any, scope: str, key: str) -> None: ...
    async def remember(
        self, session: Any, scope: str, key: str, request_hash: str, status: int, body: dict, at: datetime
    ) -> None: ...


class SqlIdempotencyKeys:
    """Remembered answers in the `idempotency_keys` table, in the command's transaction."""

    async def remembered(self, session, scope: str, key: str):
        row = (
            await session.execute(
                select(idempotency_keys).where(
                    idempotency_keys.c.scope == scope, idempotency_keys.c.key == key
                )
            )
        ).first()
        return row._asdict() if row else None

    async def forget(self, session, scope: str, key: str) -> None:
        await session.execute(
            delete(idempotency_keys).where(idempotency_keys.c.scope == scope, idempotency_keys.c.key == key)
        )

    async def remember(
        self, session, scope: str, key: str, request_hash: str, status: int, body: dict, at: datetime
    ) -> None:
        await session.execute(
            insert(idempotency_keys).values(
                scope=scope,
                key=key,
                request_hash=request_hash,
                status_code=status,
                response=body,
                created_at=at,
            )
        )


def keys_of(db: Any) -> IdempotencyKeys:
    return InMemoryIdempotencyKeys() if isinstance(db, InMemoryDatabase) else SqlIdempotencyKeys()


async def execute(
    db: Any,
    scope: str,
    command: Command,
    *,
    key: str | None = None,
    fingerprint: str = "",
    ttl: timedelta = DEFAULT_TTL,
) -> tuple[int, dict[str, Any]]:
    """Run `command` in a transaction; with `key`, the same request returns the first answer
    and does nothing again, a different one is refused. Retried on a lost race."""
    keys = keys_of(db)
    for _ in range(RETRIES_ON_CONFLICT):
        try:
            async with db.transaction() as session:
                if key:
                    prior = await keys.remembered(session, scope, key)
                    if prior is not None and _older_than(prior["created_at"], ttl):
                        # Expired: forgotten, as the hourly purge would have done.
                        await keys.forget(session, scope, key)
                        prior = None
                    if prior is not None:
                        if prior["request_hash"] != fingerprint:
                            raise IdempotencyKeyReused(
                                "this Idempotency-Key was used for a different request",
                                field="Idempotency-Key",
                            )
                        return prior["status_code"], prior["response"]
                status, body = await command(session)
                if key:
                    await keys.remember(session, scope, key, fingerprint, status, body, datetime.now(UTC))
                return status, body
        except ConcurrencyError:
            continue  # another request appended first: decide again on the new state
        except (IntegrityError, KeyTaken):
            if not key:
                raise
            continue  # the same key raced us: the next pass returns its answer
    raise Conflict("the patient's record is changing too fast; retry the request")


def _older_than(created_at: datetime, ttl: timedelta) -> bool:
    at = created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC)
    return datetime.now(UTC) - at > ttl


def _ttl(request: Request) -> timedelta:
    try:
        return timedelta(hours=float(request.app.state.runtime.settings.idempotency_ttl_hours))
    except AttributeError:
        return DEFAULT_TTL


async def run_command(db: Any, request: Request, scope: str, command: Command) -> tuple[int, dict[str, Any]]:
    """`execute` with the request's Idempotency-Key and fingerprint."""
    key = request.headers.get("idempotency-key")
    if key is not None and not (0 < len(key) <= MAX_KEY_LENGTH):
        raise InvalidField(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters", field="Idempotency-Key"
        )
    fingerprint = await request_fingerprint(request) if key else ""
    return await execute(db, scope, command, key=key, fingerprint=fingerprint, ttl=_ttl(request))
