"""Issue 18, past one machine on this one: steady clinic traffic through intake while the
three-member JetStream cluster loses the INTAKE stream's leader (SIGKILL), then a second
member (one of three up: no quorum), both come back, and every replica of every service is
restarted in turn (SIGTERM, a rolling restart). Then the fault suite's invariants, imported
from tests/faults/test_faults.py and run over this scenario's outcome (the `fault_run`
fixture in this directory's conftest)."""

from __future__ import annotations

import json

import pytest

from tests.faults.scenario import Outcome
from tests.faults.test_faults import (  # noqa: F401 - collected here, over the cluster run
    test_clients_never_saw_an_error_they_could_not_retry,
    test_dead_letters_are_only_the_injected_poison,
    test_every_accepted_post_is_in_intakes_store_exactly_once,
    test_every_downstream_event_is_in_its_stream_exactly_once,
    test_every_due_reminder_delivered_exactly_once,
    test_every_intake_event_is_in_the_intake_stream_exactly_once,
    test_pathway_assessments_equal_a_rebuild_from_intakes_events,
    test_referral_exactly_one_referral_and_task_per_need,
    test_the_network_settles_after_the_faults,
)

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.faults]


def test_every_cluster_fault_was_injected_and_everything_came_back(fault_run: Outcome) -> None:
    net = fault_run.net
    assert not fault_run.fault_errors, fault_run.fault_errors
    assert not net.recovery_failures, net.recovery_failures
    entries = net.faults.entries
    kills = [e for e in entries if e["fault"] == "nats-sigkill"]
    assert kills[0].get("leader_of") == "INTAKE" and kills[1].get("members_up") == 1, kills
    assert len([e for e in entries if e["fault"] == "nats-back"]) == 2
    restarted = {e["target"] for e in entries if e["fault"] == "sigterm"}
    assert restarted == {n for n, _ in net.replicas()}, restarted
    # SIGTERM is a clean stop within the grace period (uvicorn re-raises the signal once it
    # has shut down: -15 is that; a kill after the grace period would be -9).
    assert all(e["exit"] in (0, -15) for e in entries if e["fault"] == "sigterm"), [
        e for e in entries if e["fault"] == "sigterm"
    ]
    assert all(m.running for m in net.nats.members)
    for name, svc in net.replicas():
        assert svc.process and svc.process.poll() is None, f"{name} is not running:\n{svc.log_tail()}"


def test_summary_nothing_lost_nothing_duplicated_across_the_cluster(
    fault_run: Outcome, request: pytest.FixtureRequest
) -> None:
    summary = fault_run.summary()
    headline = {
        "events_sent": summary["events_sent"],
        "intake_stream_messages": summary["intake_stream_messages"],
        "cluster_faults": [
            e for e in fault_run.net.faults.entries if e["fault"] in {"nats-sigkill", "nats-back"}
        ],
        "rolling_restart": len([e for e in fault_run.net.faults.entries if e["fault"] == "sigterm"]),
        "start_failures_in_rolling_restart": sum(
            e.get("start_failures", 0) for e in fault_run.net.faults.entries
        ),
        "lost": summary["lost"],
        "duplicated": summary["duplicated"],
        "email_resent_after_crash": summary["email_resent_after_crash"],
        "pauses_s": fault_run.durations.get("pauses_s"),
        "durations_s": fault_run.durations,
    }
    with request.config.pluginmanager.getplugin("capturemanager").global_and_fixture_disabled():
        print("\ncluster suite: " + json.dumps(headline, default=str), flush=True)
    assert summary["lost"] == 0 and summary["duplicated"] == 0 and summary["quiescent"], fault_run.report()
