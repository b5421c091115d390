"""Databases for tests: a SQLite file per test, and a PostgreSQL database created for the run
(from TEST_DATABASE_URL) and dropped after it. With CI=true, PostgreSQL is mandatory."""

from __future__ import annotations

import os
import uuid

import asyncpg
from sqlalchemy.engine import make_url

from care_shared.db import normalise_url


def test_database_admin_url() -> str | None:
    return os.environ.get("TEST_DATABASE_URL")


def postgres_required() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _asyncpg_dsn(url: str) -> str:
    return make_url(normalise_url(url)).set(drivername="postgresql").render_as_string(hide_password=False)


async def create_postgres_database(admin_url: str, prefix: str = "care_test") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(_asyncpg_dsn(admin_url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return make_url(normalise_url(admin_url)).set(database=name).render_as_string(hide_password=False)


async def drop_postgres_database(admin_url: str, url: str) -> None:
    name = make_url(url).database
    conn = await asyncpg.connect(_asyncpg_dsn(admin_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
