"""Which failures pass by themselves, and which never will.

A transient failure (the database locked or unreachable, a lock or statement timeout, NATS not
answering, a dropped connection) says nothing about the event: the same handling succeeds once
it has passed. The consumer retries those for as long as they last and never counts them
toward the dead-letter budget; the API answers 503 with Retry-After. Everything else is
deterministic (a bug, a rule, bad data) and is counted.

`transient_kind` names the kind with one of a few fixed words, fit for a metric label.
"""

from __future__ import annotations

from nats.errors import Error as NatsError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

DATABASE_BUSY = "database_busy"
DATABASE_UNAVAILABLE = "database_unavailable"
BUS = "bus"
TIMEOUT = "timeout"
CONNECTION = "connection"
KINDS = (DATABASE_BUSY, DATABASE_UNAVAILABLE, BUS, TIMEOUT, CONNECTION)


class DatabaseBusy(Exception):
    """This process waited its bounded time for the database's write lock and did not get it."""


# PostgreSQL SQLSTATEs. Busy: lock_not_available (lock_timeout), query_canceled
# (statement_timeout), serialization_failure, deadlock_detected. Unavailable: class 08
# (connection exception), 53 (insufficient resources: too many connections, disk full),
# 57P01-03 (shutting down, a terminated backend), 58 (system error).
_BUSY_SQLSTATES = ("55P03", "57014", "40001", "40P01")
_UNAVAILABLE_SQLSTATES = ("08", "53", "57P01", "57P02", "57P03", "58")
# SQLite says these in its message; "no such table" and the like are bugs, not weather.
_SQLITE_BUSY = ("database is locked", "database table is locked", "database is busy")
_SQLITE_UNAVAILABLE = ("unable to open database", "disk i/o error")


def _kind_of(exc: BaseException) -> str | None:
    if isinstance(exc, DatabaseBusy | PoolTimeout):
        return DATABASE_BUSY
    if isinstance(exc, DBAPIError):
        sqlstate = getattr(exc.orig, "sqlstate", None) or ""
        if sqlstate.startswith(_BUSY_SQLSTATES):
            return DATABASE_BUSY
        if exc.connection_invalidated or sqlstate.startswith(_UNAVAILABLE_SQLSTATES):
            return DATABASE_UNAVAILABLE
        text = str(exc.orig).lower()
        if any(s in text for s in _SQLITE_BUSY):
            return DATABASE_BUSY
        if any(s in text for s in _SQLITE_UNAVAILABLE):
            return DATABASE_UNAVAILABLE
        if isinstance(exc, InterfaceError):
            return DATABASE_UNAVAILABLE
        if isinstance(exc, OperationalError) and not sqlstate and "sqlite" not in type(exc.orig).__module__:
            return DATABASE_UNAVAILABLE  # asyncpg's own connection errors carry no SQLSTATE
        return None
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str):  # asyncpg's own error, unwrapped (e.g. raised at connect)
        if sqlstate.startswith(_BUSY_SQLSTATES):
            return DATABASE_BUSY
        if sqlstate.startswith(_UNAVAILABLE_SQLSTATES):
            return DATABASE_UNAVAILABLE
        return None
    if isinstance(exc, NatsError):
        return BUS
    if isinstance(exc, TimeoutError):
        return TIMEOUT
    if isinstance(exc, OSError):  # ConnectionError and its kin
        return CONNECTION
    return None


def transient_kind(exc: BaseException) -> str | None:
    """The kind of a transient failure, or None for a deterministic one. A wrapped exception
    is judged by what it wraps."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 5:
        kind = _kind_of(current)
        if kind is not None:
            return kind
        current = current.__cause__
        seen += 1
    return None
