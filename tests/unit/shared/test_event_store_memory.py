"""The event store's contract on the in-memory store the unit tier's fakes use (the same
test functions as tests/integration/shared/test_event_store_contract.py, on memory only)."""

from __future__ import annotations

import pytest

from care_shared.eventstore import EventStore
from care_shared.memory import InMemoryDatabase, InMemoryEventStore
from tests.integration.shared.test_event_store_contract import *  # noqa: F403 - the contract's tests


@pytest.fixture
def database() -> InMemoryDatabase:
    return InMemoryDatabase()


@pytest.fixture
def store() -> EventStore:
    return InMemoryEventStore()
