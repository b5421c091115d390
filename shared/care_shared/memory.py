"""An in-memory event store and unit of work for the fast test tier: the same contract as
`EventStore` on SQLite and PostgreSQL (tests/integration/shared/test_event_store_contract.py
runs on all three), with no database. A transaction's writes are staged and become visible
only when it commits; an exception discards them. Never used by a running service."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from care_shared.db import APPENDED_TYPES, OUTBOX_WRITTEN
from care_shared.eventstore import ConcurrencyError, EventStore, StoredEvent


@dataclass
class MemorySession:
    """One transaction's view: what is committed plus what it staged itself."""

    database: InMemoryDatabase
    writable: bool
    info: dict[str, Any] = field(default_factory=dict)
    staged: list[StoredEvent] = field(default_factory=list)
    staged_outbox: list[int] = field(default_factory=list)
    staged_keys: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)


class InMemoryDatabase:
    """`Database`'s transaction/read/on_commit, over lists in memory."""

    dialect = "memory"
    is_sqlite = False

    def __init__(self) -> None:
        self.events: list[StoredEvent] = []
        self.outbox: set[int] = set()
        self.idempotency_keys: dict[tuple[str, str], dict[str, Any]] = {}
        self._positions = 0
        self._commit_listeners: list[Callable[[list[str]], None]] = []

    def on_commit(self, listener: Callable[[list[str]], None]) -> None:
        self._commit_listeners.append(listener)

    def next_position(self) -> int:
        self._positions += 1
        return self._positions

    def count(self, table: str) -> int:
        return {
            "events": len(self.events),
            "outbox": len(self.outbox),
            "idempotency_keys": len(self.idempotency_keys),
        }[table]

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[MemorySession]:
        session = MemorySession(self, writable=True)
        yield session  # an exception here leaves the staged writes behind, unapplied
        self._commit(session)
        appended = session.info.pop(APPENDED_TYPES, [])
        if session.info.pop(OUTBOX_WRITTEN, False) or appended:
            for listener in self._commit_listeners:
                listener(appended)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[MemorySession]:
        yield MemorySession(self, writable=False)

    def _commit(self, session: MemorySession) -> None:
        taken = {(e.stream_id, e.version) for e in self.events}
        for e in session.staged:  # the unique key (stream_id, version), checked at commit
            if (e.stream_id, e.version) in taken:
                raise ConcurrencyError(e.stream_id, e.version - 1)
        if session.staged_keys.keys() & self.idempotency_keys.keys():
            raise KeyTaken()
        self.events.extend(session.staged)
        self.outbox.update(session.staged_outbox)
        self.idempotency_keys.update(session.staged_keys)

    async def dispose(self) -> None:
        return None


class KeyTaken(Exception):
    """Another transaction remembered the same Idempotency-Key first (SQL: IntegrityError)."""


class InMemoryEventStore(EventStore):
    """`EventStore` whose rows live in an `InMemoryDatabase` (append's checks are shared)."""

    def _visible(self, session: MemorySession) -> list[StoredEvent]:
        return [*session.database.events, *session.staged]

    async def current_version(self, session, stream_id: str) -> int:
        return max((e.version for e in self._visible(session) if e.stream_id == stream_id), default=0)

    async def _insert(
        self,
        session,
        stream_id: str,
        expected_version: int,
        rows: list[dict[str, Any]],
        publish: bool,
    ) -> list[StoredEvent]:
        if not session.writable:
            raise RuntimeError("append outside a transaction")
        stored = [StoredEvent(position=session.database.next_position(), **row) for row in rows]
        session.staged.extend(stored)
        if publish:
            session.staged_outbox.extend(e.position for e in stored)
        return stored

    async def read_stream(self, session, stream_id: str, *, after_version: int = 0) -> list[StoredEvent]:
        found = [e for e in self._visible(session) if e.stream_id == stream_id and e.version > after_version]
        return sorted(found, key=lambda e: e.version)

    async def read_streams(self, session, stream_ids) -> dict[str, list[StoredEvent]]:
        wanted = set(stream_ids)
        found: dict[str, list[StoredEvent]] = {}
        for e in sorted(self._visible(session), key=lambda e: (e.stream_id, e.version)):
            if e.stream_id in wanted:
                found.setdefault(e.stream_id, []).append(e)
        return found

    async def read_all(self, session, *, after_position: int = 0, limit: int = 1000) -> list[StoredEvent]:
        found = sorted(
            (e for e in self._visible(session) if e.position > after_position), key=lambda e: e.position
        )
        return found[:limit]

    async def get(self, session, event_id: str) -> StoredEvent | None:
        return next((e for e in self._visible(session) if e.event_id == event_id), None)


class InMemoryIdempotencyKeys:
    """The command pipeline's remembered answers, in an `InMemoryDatabase`."""

    async def remembered(self, session: MemorySession, scope: str, key: str) -> dict[str, Any] | None:
        return session.staged_keys.get((scope, key)) or session.database.idempotency_keys.get((scope, key))

    async def forget(self, session: MemorySession, scope: str, key: str) -> None:
        session.database.idempotency_keys.pop((scope, key), None)

    async def remember(
        self,
        session: MemorySession,
        scope: str,
        key: str,
        request_hash: str,
        status: int,
        body: dict,
        at: datetime,
    ) -> None:
        session.staged_keys[(scope, key)] = {
            "request_hash": request_hash,
            "status_code": status,
            "response": body,
            "created_at": at,
        }
