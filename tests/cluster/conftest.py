"""The cluster scenario runs once per module (real processes: three nats-servers, two replicas
of each service, PostgreSQL), only under `make test-cluster` (CARE_CLUSTER=1): it is too long
for `make test` on two cores, and .ci/run runs it after."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator

import pytest

from care_shared.testing.fixtures import _postgres_or_skip
from tests.cluster.network import ClusterNetwork
from tests.faults.scenario import Outcome, Plan, run_scenario

# Seconds after traffic starts: the INTAKE leader's server dies; a second
# server dies, leaving one of three (no quorum: JetStream refuses writes, intake keeps
# accepting into its outbox); both come back; a poison message; then every replica is
# restarted in turn.
CLUSTER_PLAN = Plan(
    traffic_seconds=90.0,
    settle_seconds=100.0,
    workers=4,
    faults=[
        (6, "nats-kill-leader", "INTAKE"),
        (18, "nats-kill-another", ""),
        (20, "clock", "week-1"),
        (26, "nats-back", ""),
        (33, "nats-back", ""),
        # After the quorum is back: the suite's own injector does not retry a publish that a
        # leader election left unanswered (NoStreamResponseError at t=12 in an early run).
        (36, "poison", "invalid-json"),
        (38, "rolling-restart", ""),
        (55, "clock", "week-2"),
    ],
)


def pytest_configure(config: pytest.Config) -> None:
    # tests/faults' conftest registers it too, but is not loaded when only this runs.
    config.addinivalue_line("markers", "faults: real processes under injected faults")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("CARE_CLUSTER", "").lower() in {"1", "true", "yes"}:
        return
    skip = pytest.mark.skip(reason="cluster: make test-cluster (CARE_CLUSTER=1) runs it")
    for item in items:
        if "tests/cluster/test_cluster" in str(item.fspath):
            item.add_marker(skip)


@pytest.fixture(scope="module")
async def fault_run(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Outcome]:
    admin = _postgres_or_skip()
    net = ClusterNetwork(tmp_path_factory.mktemp("cluster"), admin)
    try:
        outcome = await run_scenario(net, CLUSTER_PLAN)
        traffic_end = time.monotonic() - net.faults.started
        outcome.durations["pauses_s"] = net.longest_pauses(traffic_end)  # type: ignore[assignment]
        print("\n" + outcome.report())
        yield outcome
    finally:
        await net.stop()
