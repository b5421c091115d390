"""Transient or deterministic (care_shared.transient), and the timeouts that must nest:
every database wait ends well inside the consumers' ack_wait."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import asyncpg
import nats.errors
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from care_shared.consumer import ConsumerPolicy, PoisonEvent
from care_shared.db import Database, sqlite_url_for
from care_shared.settings import ServiceSettings
from care_shared.topology import ACK_WAIT_SECONDS, durable_config
from care_shared.transient import (
    BUS,
    CONNECTION,
    DATABASE_BUSY,
    DATABASE_UNAVAILABLE,
    KINDS,
    TIMEOUT,
    DatabaseBusy,
    transient_kind,
)


class _PgError(Exception):
    """What SQLAlchemy's asyncpg adapter puts in `orig`: the error with its SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


def _pg(cls: type, sqlstate: str) -> Exception:
    return cls("SELECT 1", None, _PgError(sqlstate))


def _wrapped() -> Exception:
    try:
        try:
            raise OperationalError("INSERT", None, sqlite3.OperationalError("database is locked"))
        except OperationalError as exc:
            raise RuntimeError("while applying the event") from exc
    except RuntimeError as outer:
        return outer


TABLE = [
    (
        OperationalError("BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked")),
        DATABASE_BUSY,
    ),
    (OperationalError("INSERT", None, sqlite3.OperationalError("database table is locked")), DATABASE_BUSY),
    (
        OperationalError("connect", None, sqlite3.OperationalError("unable to open database file")),
        DATABASE_UNAVAILABLE,
    ),
    (DatabaseBusy("no write lock in 5s"), DATABASE_BUSY),
    (PoolTimeout("QueuePool limit reached"), DATABASE_BUSY),
    (_pg(DBAPIError, "55P03"), DATABASE_BUSY),  # lock_timeout, as asyncpg's adapter raises it
    (_pg(OperationalError, "55P03"), DATABASE_BUSY),
    (_pg(OperationalError, "57014"), DATABASE_BUSY),  # statement_timeout
    (_pg(OperationalError, "40001"), DATABASE_BUSY),  # serialization failure
    (_pg(OperationalError, "40P01"), DATABASE_BUSY),  # deadlock
    (_pg(OperationalError, "08006"), DATABASE_UNAVAILABLE),
    (_pg(OperationalError, "57P01"), DATABASE_UNAVAILABLE),  # admin shutdown
    (_pg(OperationalError, "53300"), DATABASE_UNAVAILABLE),  # too many connections
    (InterfaceError("SELECT 1", None, Exception("connection is closed")), DATABASE_UNAVAILABLE),
    (
        asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients"),
        DATABASE_UNAVAILABLE,
    ),  # raw, at connect
    (asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"), DATABASE_UNAVAILABLE),
    (asyncpg.exceptions.LockNotAvailableError("lock timeout"), DATABASE_BUSY),
    (asyncpg.exceptions.UniqueViolationError("duplicate key"), None),
    (nats.errors.TimeoutError(), BUS),
    (nats.errors.ConnectionClosedError(), BUS),
    (nats.errors.NoServersError(), BUS),
    (TimeoutError(), TIMEOUT),
    (ConnectionResetError(), CONNECTION),
    (ConnectionRefusedError(), CONNECTION),
    (_wrapped(), DATABASE_BUSY),
    # Deterministic: bugs, rules, bad data. These count toward the dead-letter budget.
    (OperationalError("SELECT", None, sqlite3.OperationalError("no such table: patients")), None),
    (_pg(IntegrityError, "23505"), None),
    (_pg(ProgrammingError, "42P01"), None),
    (IntegrityError("INSERT", None, sqlite3.IntegrityError("NOT NULL constraint failed")), None),
    (ValueError("score out of range"), None),
    (KeyError("patient_id"), None),
    (RuntimeError("handler bug"), None),
    (PoisonEvent("refers to no known trial"), None),
]


@pytest.mark.parametrize(("exc", "kind"), TABLE, ids=[f"{type(e).__name__}-{k}" for e, k in TABLE])
def test_failures_are_told_transient_or_deterministic(exc: Exception, kind: str | None) -> None:
    assert transient_kind(exc) == kind
    assert kind is None or kind in KINDS  # a bounded label set


async def test_a_real_sqlite_lock_is_a_busy_database_after_the_bounded_wait(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    db = Database(sqlite_url_for(path), lock_timeout_seconds=0.3)
    async with db.transaction() as s:
        await s.execute(sa.text("CREATE TABLE t (x INTEGER)"))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        started = asyncio.get_running_loop().time()
        with pytest.raises(OperationalError) as caught:
            async with db.transaction() as s:
                await s.execute(sa.text("INSERT INTO t VALUES (1)"))
        waited = asyncio.get_running_loop().time() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        await db.dispose()
    assert transient_kind(caught.value) == DATABASE_BUSY
    assert 0.2 < waited < 2.0, waited


async def test_a_writer_queued_behind_this_process_s_own_writer_waits_a_bounded_time(tmp_path: Path) -> None:
    db = Database(sqlite_url_for(tmp_path / "queued.db"), lock_timeout_seconds=0.2)
    release = asyncio.Event()

    async def long_writer() -> None:
        async with db.transaction():
            await release.wait()

    holder = asyncio.create_task(long_writer())
    await asyncio.sleep(0)  # the holder takes the write lock first
    try:
        with pytest.raises(DatabaseBusy):
            async with db.transaction():
                pass
    finally:
        release.set()
        await holder
        await db.dispose()


def test_transient_backoff_doubles_to_its_cap() -> None:
    policy = ConsumerPolicy(transient_first_seconds=1.0, transient_cap_seconds=30.0)
    assert [policy.transient_delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert policy.transient_delay(10_000) == 30.0


async def test_every_database_wait_ends_inside_ack_wait(tmp_path: Path) -> None:
    """From the configuration as shipped: the settings' defaults, the durables ops creates,
    and the timeouts a real connection reports."""
    settings = ServiceSettings(database_url=sqlite_url_for(tmp_path / "defaults.db"))
    ack_wait = durable_config("pathway-intake", "intake.>").ack_wait
    assert ack_wait == ACK_WAIT_SECONDS == settings.consumer_ack_wait_seconds
    db = Database.from_settings(settings)
    try:
        async with db.read() as s:
            busy_ms = (await s.execute(sa.text("PRAGMA busy_timeout"))).scalar_one()
    finally:
        await db.dispose()
    # A write waits for this process's writer lock, then for SQLite's; a request makes two
    # writes at most (its own, then the access audit's row).
    worst_write_wait = db.lock_timeout_seconds + busy_ms / 1000
    assert busy_ms == settings.database_lock_timeout_seconds * 1000
    assert 2 * worst_write_wait <= 20.0, "an API request behind a lock answers within seconds"
    assert worst_write_wait * 3 <= ack_wait, (worst_write_wait, ack_wait)
    # The longest transient retry pause is also shorter than ack_wait (a heartbeat covers it anyway).
    assert settings.consumer_transient_cap_seconds < ack_wait


async def test_postgres_sessions_wait_a_bounded_time_for_locks(postgres_url: str) -> None:
    settings = ServiceSettings(database_url=postgres_url)
    db = Database.from_settings(settings)
    try:
        async with db.read() as s:
            lock_timeout_ms = (
                await s.execute(sa.text("SELECT setting FROM pg_settings WHERE name = 'lock_timeout'"))
            ).scalar_one()
    finally:
        await db.dispose()
    assert int(lock_timeout_ms) == settings.database_lock_timeout_seconds * 1000
    assert db.engine.pool.timeout() * 2 <= ACK_WAIT_SECONDS
    assert settings.database_lock_timeout_seconds * 3 <= ACK_WAIT_SECONDS


async def test_a_real_postgres_lock_is_a_busy_database_after_the_bounded_wait(postgres_url: str) -> None:
    holder, db = Database(postgres_url), Database(postgres_url, lock_timeout_seconds=0.3)
    try:
        async with holder.transaction() as s:
            await s.execute(sa.text("CREATE TABLE t (x INTEGER)"))
        async with holder.transaction() as held:
            await held.execute(sa.text("LOCK TABLE t IN ACCESS EXCLUSIVE MODE"))
            started = asyncio.get_running_loop().time()
            with pytest.raises(DBAPIError) as caught:  # asyncpg's errors map to plain DBAPIError
                async with db.transaction() as s:
                    await s.execute(sa.text("INSERT INTO t VALUES (1)"))
            waited = asyncio.get_running_loop().time() - started
    finally:
        await db.dispose()
        await holder.dispose()
    assert caught.value.orig.sqlstate == "55P03"
    assert transient_kind(caught.value) == DATABASE_BUSY
    assert 0.2 < waited < 2.0, waited
