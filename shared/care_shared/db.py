"""One async database per service: SQLite (embedded default) or PostgreSQL (production).

Transactions go through `Database.transaction()`, which tells the outbox relay the moment a
commit that wrote outbox rows is done, so publishing needs no polling on the happy path.

Waiting for a lock is bounded by `lock_timeout_seconds` (SQLite's busy timeout and this
process's queue for its one writer; PostgreSQL's lock_timeout), and the pool's wait by
`POOL_TIMEOUT_SECONDS`, both under the consumers' ack_wait: a request behind a lock gets a 503 "database busy", a consumer a
transient failure it retries (care_shared.transient), and neither waits without end.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from care_shared.transient import DatabaseBusy

OUTBOX_WRITTEN = "outbox_written"
APPENDED_TYPES = "appended_types"
READ_ONLY = "care_read_only"
# Shorter than the consumers' ack_wait (topology.ACK_WAIT_SECONDS) by a wide margin: a test
# holds the relation (tests/shared/test_transient.py).
LOCK_TIMEOUT_SECONDS = 5.0
POOL_TIMEOUT_SECONDS = 30.0


def normalise_url(url: str) -> str:
    """Accept plain postgresql:// and sqlite:/// URLs and pick the async drivers."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.split(":///", 1)[1]
    return url


def postgres_connect_args(
    url: str, *, password_file: str | None = None, ssl_root_cert: str | None = None
) -> tuple[str, dict]:
    """The URL and asyncpg connect arguments for a server past loopback: the role's password
    read from a file (a mounted secret, so it is in no environment variable or URL), and TLS
    verified against a CA bundle with the host name checked (libpq's verify-full)."""
    connect_args: dict = {}
    if password_file:
        password = Path(password_file).read_text().strip()
        if not password:
            raise ValueError(f"DATABASE_PASSWORD_FILE {password_file} is empty")
        url = make_url(url).set(password=password).render_as_string(hide_password=False)
    if ssl_root_cert:
        context = ssl.create_default_context(cafile=ssl_root_cert)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        connect_args["ssl"] = context
    return url, connect_args


class Database:
    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        password_file: str | None = None,
        ssl_root_cert: str | None = None,
        lock_timeout_seconds: float = LOCK_TIMEOUT_SECONDS,
    ) -> None:
        self.url = normalise_url(url)
        self.lock_timeout_seconds = lock_timeout_seconds
        self.is_sqlite = self.url.startswith("sqlite")
        connect_args: dict = {}
        if not self.is_sqlite:
            self.url, connect_args = postgres_connect_args(
                self.url, password_file=password_file, ssl_root_cert=ssl_root_cert
            )
        self._commit_listeners: list[Callable[[list[str]], None]] = []
        self._write_lock = asyncio.Lock()
        if self.is_sqlite:
            path = make_url(self.url).database
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine: AsyncEngine = create_async_engine(
                self.url, echo=echo, connect_args={"timeout": lock_timeout_seconds}
            )
            _configure_sqlite(self.engine, lock_timeout_seconds)
        else:
            self.engine = create_async_engine(
                self.url,
                echo=echo,
                pool_pre_ping=True,
                pool_size=10,
                max_overflow=10,
                # A wait for a pooled connection is load, not a held lock: longer, but under ack_wait.
                pool_timeout=POOL_TIMEOUT_SECONDS,
                connect_args={
                    **connect_args,
                    "server_settings": {"lock_timeout": str(int(lock_timeout_seconds * 1000))},
                },
            )
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings) -> Database:
        """DATABASE_URL, with DATABASE_PASSWORD_FILE and DATABASE_SSL_ROOT_CERT when set."""
        return cls(
            settings.database_url,
            password_file=settings.database_password_file,
            ssl_root_cert=settings.database_ssl_root_cert,
            lock_timeout_seconds=settings.database_lock_timeout_seconds,
        )

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
        try:
            async with asyncio.timeout(self.lock_timeout_seconds):
                await self._write_lock.acquire()
        except TimeoutError:
            raise DatabaseBusy(f"no write lock in {self.lock_timeout_seconds}s") from None
        try:
            yield
        finally:
            self._write_lock.release()

    async def dispose(self) -> None:
        await self.engine.dispose()


def _configure_sqlite(engine: AsyncEngine, lock_timeout_seconds: float) -> None:
    # WAL lets readers run beside the one writer (the relay and the API share the file);
    # BEGIN IMMEDIATE takes the write lock up front, so a read-then-write transaction waits
    # for the lock (busy timeout) instead of failing with "database is locked" on upgrade.
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(lock_timeout_seconds * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn):
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def sqlite_url_for(path: str | os.PathLike[str]) -> str:
    return f"sqlite+aiosqlite:///{Path(path)}"
