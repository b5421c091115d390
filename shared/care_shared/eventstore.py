"""The event store: an append-only table keyed (stream_id, version).

That key is the whole concurrency control: two writers that read the same version and both
append collide on it, and exactly one wins (the other gets `ConcurrencyError`). Every append
also writes an outbox row in the same transaction, so an event is never stored without being
published eventually, nor published without being stored.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from care_shared.db import APPENDED_TYPES, OUTBOX_WRITTEN
from care_shared.envelope import MAX_EVENT_BYTES, new_event_id
from care_shared.tracing import current_traceparent

metadata = MetaData()

# BIGINT on PostgreSQL; SQLite autoincrements only an INTEGER PRIMARY KEY.
_Position = BigInteger().with_variant(Integer(), "sqlite")

events = Table(
    "events",
    metadata,
    Column("position", _Position, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("stream_id", String(120), nullable=False),
    Column("version", Integer, nullable=False),
    Column("type", String(160), nullable=False),
    Column("subject", String(120), nullable=False),
    Column("data", JSON, nullable=False),
    Column("meta", JSON, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("stream_id", "version", name="uq_events_stream_version"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("position", _Position, ForeignKey("events.position"), primary_key=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text, nullable=True),
    # Set when the row can never become a message (schema version 2): the relay skips it,
    # `last_error` says why, `carectl outbox` lists it.
    Column("set_aside_at", DateTime(timezone=True), nullable=True),
)

inbox = Table(
    "inbox",
    metadata,
    Column("consumer", String(120), primary_key=True),
    Column("event_id", String(36), primary_key=True),
    Column("processed_at", DateTime(timezone=True), nullable=False),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("scope", String(120), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("response", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

Index("ix_events_type", events.c.type)


class ConcurrencyError(Exception):
    """Someone else appended to the stream since we read it."""

    def __init__(self, stream_id: str, expected: int, actual: int | None = None) -> None:
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual
        super().__init__(f"stream {stream_id}: expected version {expected}, found {actual}")


class EventTooLarge(ValueError):
    """An event whose message would exceed what every consumer accepts (MAX_EVENT_BYTES):
    refused before it is stored, rather than published and dead-lettered by every reader."""

    def __init__(self, event_type: str, size: int) -> None:
        self.event_type = event_type
        self.size = size
        super().__init__(f"{event_type}: {size} bytes of data and metadata; the limit is {EVENT_DATA_LIMIT}")


# Room left for the envelope's own fields (id, source, type, time, trace, sequence...).
EVENT_DATA_LIMIT = MAX_EVENT_BYTES - 4096


@dataclass(frozen=True)
class NewEvent:
    type: str
    subject: str
    data: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)
    event_id: str = field(default_factory=new_event_id)


@dataclass(frozen=True)
class StoredEvent:
    position: int
    event_id: str
    stream_id: str
    version: int
    type: str
    subject: str
    data: dict[str, Any]
    meta: dict[str, Any]
    recorded_at: datetime


def _row_to_event(row: Any) -> StoredEvent:
    recorded_at = row.recorded_at
    if recorded_at.tzinfo is None:  # SQLite hands back naive datetimes
        recorded_at = recorded_at.replace(tzinfo=UTC)
    return StoredEvent(
        position=row.position,
        event_id=row.event_id,
        stream_id=row.stream_id,
        version=row.version,
        type=row.type,
        subject=row.subject,
        data=row.data,
        meta=row.meta,
        recorded_at=recorded_at,
    )


class EventStore:
    """Append, read a stream, read everything by global position. Works inside the caller's
    transaction so that the caller's own rows (projections, inbox, idempotency) commit with
    the events or not at all."""

    async def current_version(self, session: AsyncSession, stream_id: str) -> int:
        result = await session.execute(
            select(func.coalesce(func.max(events.c.version), 0)).where(events.c.stream_id == stream_id)
        )
        return int(result.scalar_one())

    async def append(
        self,
        session: AsyncSession,
        stream_id: str,
        expected_version: int,
        new_events: Sequence[NewEvent],
        *,
        publish: bool = True,
    ) -> list[StoredEvent]:
        actual = await self.current_version(session, stream_id)
        if actual != expected_version:
            raise ConcurrencyError(stream_id, expected_version, actual)
        now = datetime.now(UTC)
        # The stored traceparent lets the relay continue this request's trace later.
        traceparent = current_traceparent()
        trace_meta = {"traceparent": traceparent} if traceparent else {}
        rows = [
            {
                "event_id": e.event_id,
                "stream_id": stream_id,
                "version": expected_version + i + 1,
                "type": e.type,
                "subject": e.subject,
                "data": e.data,
                "meta": {**trace_meta, **e.meta},
                "recorded_at": now,
            }
            for i, e in enumerate(new_events)
        ]
        for row in rows:
            size = len(json.dumps(row["data"], default=str)) + len(json.dumps(row["meta"], default=str))
            if size > EVENT_DATA_LIMIT:
                raise EventTooLarge(row["type"], size)
        stored = await self._insert(session, stream_id, expected_version, rows, publish)
        if publish and stored:
            session.info[OUTBOX_WRITTEN] = True
        session.info.setdefault(APPENDED_TYPES, []).extend(e.type for e in stored)
        return stored

    async def _insert(
        self,
        session: AsyncSession,
        stream_id: str,
        expected_version: int,
        rows: list[dict[str, Any]],
        publish: bool,
    ) -> list[StoredEvent]:
        stored: list[StoredEvent] = []
        try:
            # A savepoint keeps the caller's transaction usable after a lost race.
            async with session.begin_nested():
                for row in rows:
                    result = await session.execute(insert(events).values(**row))
                    position = result.inserted_primary_key[0]
                    stored.append(StoredEvent(position=position, **row))
                    if publish:
                        await session.execute(insert(outbox).values(position=position))
        except IntegrityError as exc:
            raise ConcurrencyError(stream_id, expected_version) from exc
        return stored

    async def read_stream(
        self, session: AsyncSession, stream_id: str, *, after_version: int = 0
    ) -> list[StoredEvent]:
        result = await session.execute(
            select(events)
            .where(events.c.stream_id == stream_id, events.c.version > after_version)
            .order_by(events.c.version)
        )
        return [_row_to_event(r) for r in result]

    async def read_streams(
        self, session: AsyncSession, stream_ids: Sequence[str]
    ) -> dict[str, list[StoredEvent]]:
        """Several streams in one query, each in version order (absent ones are left out)."""
        found: dict[str, list[StoredEvent]] = {}
        if not stream_ids:
            return found
        result = await session.execute(
            select(events)
            .where(events.c.stream_id.in_(list(stream_ids)))
            .order_by(events.c.stream_id, events.c.version)
        )
        for row in result:
            found.setdefault(row.stream_id, []).append(_row_to_event(row))
        return found

    async def read_all(
        self, session: AsyncSession, *, after_position: int = 0, limit: int = 1000
    ) -> list[StoredEvent]:
        # On PostgreSQL, positions can commit out of order under concurrent writers, so a
        # reader tailing by position could skip one. Nothing here tails by position: the
        # relay works from the outbox and rebuilds read a quiescent store.
        result = await session.execute(
            select(events).where(events.c.position > after_position).order_by(events.c.position).limit(limit)
        )
        return [_row_to_event(r) for r in result]

    async def get(self, session: AsyncSession, event_id: str) -> StoredEvent | None:
        result = await session.execute(select(events).where(events.c.event_id == event_id))
        row = result.first()
        return _row_to_event(row) if row else None
