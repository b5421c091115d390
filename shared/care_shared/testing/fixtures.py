"""pytest fixtures (load with `pytest_plugins = ["care_shared.testing.fixtures"]`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest

from care_shared.db import Database, sqlite_url_for
from care_shared.testing.databases import (
    create_postgres_database,
    drop_postgres_database,
    postgres_required,
    test_database_admin_url,
)
from care_shared.testing.nats_server import NatsServer, start_nats, stop_nats


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """One nats-server for the whole run (tests keep apart by unique ids)."""
    server = start_nats(tmp_path_factory.mktemp("nats"))
    yield server
    stop_nats(server)


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[NatsServer]:
    """A nats-server of this test's own, for tests that count a whole stream or restart it."""
    server = NatsServer(store_dir=tmp_path / "nats").start()
    yield server
    server.stop()


@pytest.fixture
async def nc(nats_server: NatsServer) -> AsyncIterator[nats.NATS]:
    client = await nats_server.connect()  # as ops: tests play the producers they need
    yield client
    await client.drain()


def _postgres_or_skip() -> str:
    admin = test_database_admin_url()
    if not admin:
        if postgres_required():
            pytest.fail("CI=true but TEST_DATABASE_URL is not set: PostgreSQL tests must run")
        pytest.skip("PostgreSQL: set TEST_DATABASE_URL to run")
    return admin


postgres_admin_or_skip = _postgres_or_skip  # for test modules with their own database fixtures


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    admin = _postgres_or_skip()
    url = await create_postgres_database(admin)
    yield url
    await drop_postgres_database(admin, url)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Each test that takes this runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield sqlite_url_for(tmp_path / "test.db")
        return
    admin = _postgres_or_skip()
    url = await create_postgres_database(admin)
    yield url
    await drop_postgres_database(admin, url)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    yield db
    await db.dispose()
