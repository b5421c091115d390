"""The event store's contract, run in memory, on SQLite and on PostgreSQL alike (the unit
tier runs the in-memory half: tests/unit/shared/test_event_store_memory.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from care_shared.db import Database, sqlite_url_for
from care_shared.eventstore import (
    EVENT_DATA_LIMIT,
    ConcurrencyError,
    EventStore,
    EventTooLarge,
    NewEvent,
    events,
    outbox,
)
from care_shared.memory import InMemoryDatabase, InMemoryEventStore
from care_shared.migrations import migrate
from care_shared.testing.databases import create_postgres_database, drop_postgres_database
from care_shared.testing.fixtures import postgres_admin_or_skip

MIGRATIONS = Path(__import__("intake").__file__).parent / "migrations"


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Database | InMemoryDatabase]:
    if request.param == "memory":
        yield InMemoryDatabase()
        return
    if request.param == "sqlite":
        db = Database(sqlite_url_for(tmp_path / "test.db"))
        yield db
        await db.dispose()
        return
    admin = postgres_admin_or_skip()
    url = await create_postgres_database(admin)
    db = Database(url)
    yield db
    await db.dispose()
    await drop_postgres_database(admin, url)


@pytest.fixture
async def store(database: Database | InMemoryDatabase) -> EventStore:
    if isinstance(database, InMemoryDatabase):
        return InMemoryEventStore()
    await migrate(database, MIGRATIONS)
    return EventStore()


def new(n: int, subject: str = "p1") -> list[NewEvent]:
    return [
        NewEvent(type="care.intake.assessment-recorded.v1", subject=subject, data={"n": i}) for i in range(n)
    ]


async def count(db: Database | InMemoryDatabase, table) -> int:
    if isinstance(db, InMemoryDatabase):
        return db.count(table.name)
    async with db.read() as s:
        return (await s.execute(select(func.count()).select_from(table))).scalar_one()


async def test_append_then_read_stream_in_order(database: Database, store: EventStore) -> None:
    async with database.transaction() as s:
        stored = await store.append(s, "patient-1", 0, new(3))
    assert [e.version for e in stored] == [1, 2, 3]
    async with database.read() as s:
        read = await store.read_stream(s, "patient-1")
    assert [e.data["n"] for e in read] == [0, 1, 2]
    assert [e.event_id for e in read] == [e.event_id for e in stored]
    assert all(e.recorded_at.tzinfo is not None for e in read)


async def test_append_with_wrong_expected_version_raises_and_stores_nothing(
    database: Database, store: EventStore
) -> None:
    async with database.transaction() as s:
        await store.append(s, "patient-1", 0, new(2))
    with pytest.raises(ConcurrencyError) as err:
        async with database.transaction() as s:
            await store.append(s, "patient-1", 1, new(1))
    assert err.value.expected == 1 and err.value.actual == 2
    assert await count(database, events) == 2


async def test_an_event_too_large_for_any_consumer_is_refused_and_nothing_is_stored(
    database: Database, store: EventStore
) -> None:
    """Consumers dead-letter messages over MAX_EVENT_BYTES (and nats-server refuses those over
    its max_payload, which would stall the relay): such an event is never stored."""
    fits = NewEvent(
        type="care.intake.assessment-recorded.v1", subject="p1", data={"note": "x" * (EVENT_DATA_LIMIT - 200)}
    )
    huge = NewEvent(
        type="care.intake.assessment-recorded.v1", subject="p1", data={"note": "x" * EVENT_DATA_LIMIT}
    )
    with pytest.raises(EventTooLarge):
        async with database.transaction() as s:
            await store.append(s, "patient-1", 0, [fits, huge])
    assert await count(database, events) == 0 and await count(database, outbox) == 0
    async with database.transaction() as s:
        await store.append(s, "patient-1", 0, [fits])
    assert await count(database, events) == 1


async def test_every_append_writes_its_outbox_rows_in_the_same_transaction(
    database: Database, store: EventStore
) -> None:
    async with database.transaction() as s:
        await store.append(s, "patient-1", 0, new(2))
        await store.append(s, "patient-2", 0, new(1, "p2"))
    assert await count(database, outbox) == 3

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with database.transaction() as s:
            await store.append(s, "patient-3", 0, new(1, "p3"))
            raise Boom
    assert await count(database, events) == 3
    assert await count(database, outbox) == 3


async def test_concurrent_appends_to_one_stream_exactly_one_wins(
    database: Database, store: EventStore
) -> None:
    async def attempt(i: int) -> str:
        try:
            async with database.transaction() as s:
                await store.append(
                    s, "patient-race", 0, [NewEvent("care.intake.assessment-recorded.v1", "p", {"writer": i})]
                )
            return "won"
        except ConcurrencyError:
            return "lost"

    results = await asyncio.gather(*(attempt(i) for i in range(8)))
    assert results.count("won") == 1
    assert results.count("lost") == 7
    async with database.read() as s:
        assert len(await store.read_stream(s, "patient-race")) == 1


async def test_read_all_by_global_position(database: Database, store: EventStore) -> None:
    async with database.transaction() as s:
        await store.append(s, "a", 0, new(2, "a"))
    async with database.transaction() as s:
        await store.append(s, "b", 0, new(2, "b"))
    async with database.read() as s:
        everything = await store.read_all(s)
        assert [e.stream_id for e in everything] == ["a", "a", "b", "b"]
        positions = [e.position for e in everything]
        assert positions == sorted(positions)
        tail = await store.read_all(s, after_position=positions[1], limit=1)
    assert [e.stream_id for e in tail] == ["b"]
    assert tail[0].position == positions[2]


async def test_events_keep_the_trace_they_were_stored_in(database: Database, store: EventStore) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("request") as span:
        async with database.transaction() as s:
            [stored] = await store.append(s, "t", 0, new(1))
    trace_id = format(span.get_span_context().trace_id, "032x")
    assert stored.meta["traceparent"].split("-")[1] == trace_id


async def test_read_streams_reads_several_streams_in_version_order(
    database: Database, store: EventStore
) -> None:
    async with database.transaction() as s:
        await store.append(s, "a", 0, new(2, "a"))
        await store.append(s, "b", 0, new(1, "b"))
        await store.append(s, "a", 2, new(1, "a"))
    async with database.read() as s:
        found = await store.read_streams(s, ["a", "b", "absent"])
        assert await store.read_streams(s, []) == {}
    assert sorted(found) == ["a", "b"]
    assert [e.version for e in found["a"]] == [1, 2, 3] and [e.data["n"] for e in found["a"]] == [0, 1, 0]
    assert [e.stream_id for e in found["b"]] == ["b"]
