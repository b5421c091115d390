"""The fault suite runs its scenario once per module (a few minutes of real processes) and
each invariant is its own test over that one run."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from care_shared.testing.fixtures import _postgres_or_skip
from tests.faults.network import FaultNetwork
from tests.faults.scenario import Outcome, Plan, run_scenario


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "soak: a long fault run, skipped unless CARE_SOAK=1")
    config.addinivalue_line("markers", "faults: real processes under injected faults")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("CARE_SOAK", "").lower() in {"1", "true", "yes"}:
        return
    skip = pytest.mark.skip(reason="soak: set CARE_SOAK=1 to run the long fault run")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)


async def run_world(workdir: Path, plan: Plan) -> AsyncIterator[Outcome]:
    admin = _postgres_or_skip()
    net = FaultNetwork(workdir, admin)
    try:
        outcome = await run_scenario(net, plan)
        print("\n" + outcome.report())
        yield outcome
    finally:
        await net.stop()


@pytest.fixture(scope="module")
async def fault_run(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Outcome]:
    async for outcome in run_world(tmp_path_factory.mktemp("faults"), Plan()):
        yield outcome
