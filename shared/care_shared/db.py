"""One async database per service: SQLite (embedded default) or PostgreSQL (production).

Transactions go through `Database.transaction()`, which tells the outbox relay the moment a
commit that wrote outbox rows is done, so publishing needs no polling on the happy path.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

OUTBOX_WRITTEN = "outbox_written"
APPENDED_TYPES = "appended_types"
READ_ONLY = "care_read_only"


def normalise_url(url: str) -> str:
    """Accept plain postgresql:// and sqlite:/// URLs and pick the async drivers."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.split(":///", 1)[1]
    return url


class Database:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = normalise_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        self._commit_listeners: list[Callable[[list[str]], None]] = []
        self._write_lock = asyncio.Lock()
        if self.is_sqlite:
            path = make_url(self.url).database
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine: AsyncEngine = create_async_engine(
                self.url, echo=echo, connect_args={"timeout": 30}
            )
            _configure_sqlite(self.engine)
        else:
            self.engine = create_async_engine(
                self.url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=10
            )
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def on_commit(self, listener: Callable[[list[str]], None]) -> None:
        """Call `listener(event types)` after every commit that appended events (the relay's
        wake-up, the appended-events metric)."""
        self._commit_listeners.append(listener)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self._writer(), self.sessionmaker() as session:
            async with session.begin():
                yield session
            appended = session.info.pop(APPENDED_TYPES, [])
            if session.info.pop(OUTBOX_WRITTEN, False) or appended:
                for listener in self._commit_listeners:
                    listener(appended)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as session:
            if self.is_sqlite:
                await session.connection(execution_options={READ_ONLY: True})
            yield session

    @asynccontextmanager
    async def _writer(self) -> AsyncIterator[None]:
        # SQLite has one writer. Queue this process's writers on a lock, which wakes the
        # next at once, rather than in SQLite's busy handler, which sleeps and retries.
        if not self.is_sqlite:
            yield
            return
        async with self._write_lock:
            yield

    async def dispose(self) -> None:
        await self.engine.dispose()


def _configure_sqlite(engine: AsyncEngine) -> None:
    # WAL lets readers run beside the one writer (the relay and the API share the file);
    # BEGIN IMMEDIATE takes the write lock up front, so a read-then-write transaction waits
    # for the lock (busy timeout) instead of failing with "database is locked" on upgrade.
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection, _record):  # noqa: ANN001
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn):  # noqa: ANN001
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def sqlite_url_for(path: str | os.PathLike[str]) -> str:
    return f"sqlite+aiosqlite:///{Path(path)}"
