"""Issue 7, faults: steady clinic traffic through intake's REST API while every service is
SIGKILLed and restarted in turn (intake, its standalone outbox relay, pathway, referral,
notify), nats-server is restarted on its file store, and PostgreSQL cuts the services'
connections; then, at the servers themselves:

- every accepted POST's event is in intake's store and in the INTAKE stream exactly once
  (and every other service's stored events in its stream exactly once);
- pathway's assessments equal a fresh rebuild from intake's events;
- referral: one referral and one task per need (when referral implements referrals);
- every due reminder reached the SMTP server / the SMS gateway exactly once;
- the dead-letter stream holds the poison messages the suite injected, and nothing else.

One scenario run (module fixture, ~3-4 minutes on PostgreSQL), one test per invariant;
The headline counts are printed in every run (`pytest -s` prints the full report). The soak test runs the same for longer (CARE_SOAK=1).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.faults.conftest import run_world
from tests.faults.scenario import Outcome, Plan

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.faults]


def _assert_check(outcome: Outcome, name: str) -> None:
    check = outcome.checks[name]
    if check.skipped:
        pytest.skip(check.skipped)
    assert check.ok, f"{check.name}:\n- " + "\n- ".join(check.problems) + f"\ncounts: {check.counts}"


def test_every_fault_was_injected_and_every_service_came_back(fault_run: Outcome) -> None:
    assert not fault_run.fault_errors, fault_run.fault_errors
    assert not fault_run.net.recovery_failures, fault_run.net.recovery_failures
    kinds = {e["fault"] for e in fault_run.net.faults.entries}
    assert {"sigkill", "nats-restart", "pg-terminate", "poison"} <= kinds
    killed = {e["target"] for e in fault_run.net.faults.entries if e["fault"] == "sigkill"}
    assert killed == {"intake", "relay", "pathway", "referral", "notify"}
    # The faults bit: every cut found connections to cut, and every crash hook fired at its
    # moment (a hook that never fired would only have been a plain SIGKILL after a timeout).
    cuts = [e for e in fault_run.net.faults.entries if e["fault"] == "pg-terminate"]
    assert all(e["backends"] > 0 for e in cuts), cuts
    hooks = [e for e in fault_run.net.faults.entries if "at" in e]
    assert hooks and all(e.get("self_killed") for e in hooks), hooks
    for name, svc in fault_run.net.services.items():
        assert svc.process and svc.process.poll() is None, f"{name} is not running:\n{svc.log_tail()}"


def test_clients_never_saw_an_error_they_could_not_retry(fault_run: Outcome) -> None:
    stats = fault_run.stats
    assert not stats.errors, stats.errors[:5]
    assert not stats.resend_mismatches, stats.resend_mismatches[:5]
    assert stats.posts > 300, f"too little traffic to mean anything: {stats.posts} POSTs"


def test_the_network_settles_after_the_faults(fault_run: Outcome) -> None:
    """Outboxes drain, every durable consumer catches up, no due reminder waits: a consumer
    that never recovered from a fault shows here."""
    assert fault_run.quiet.reached, f"not settled after {fault_run.quiet.waited_s}s: {fault_run.quiet.last}"


def test_every_accepted_post_is_in_intakes_store_exactly_once(fault_run: Outcome) -> None:
    _assert_check(fault_run, "intake_store")


def test_every_intake_event_is_in_the_intake_stream_exactly_once(fault_run: Outcome) -> None:
    _assert_check(fault_run, "intake_stream")


@pytest.mark.parametrize("stream", ["pathway_stream", "referral_stream", "notify_stream"])
def test_every_downstream_event_is_in_its_stream_exactly_once(fault_run: Outcome, stream: str) -> None:
    _assert_check(fault_run, stream)


def test_pathway_assessments_equal_a_rebuild_from_intakes_events(fault_run: Outcome) -> None:
    _assert_check(fault_run, "pathway_rebuild")


def test_referral_exactly_one_referral_and_task_per_need(fault_run: Outcome) -> None:
    _assert_check(fault_run, "referrals")


def test_every_due_reminder_delivered_exactly_once(fault_run: Outcome) -> None:
    _assert_check(fault_run, "reminders")


def test_dead_letters_are_only_the_injected_poison(fault_run: Outcome) -> None:
    _assert_check(fault_run, "dead_letters")


def test_summary_nothing_lost_nothing_duplicated(fault_run: Outcome, request: pytest.FixtureRequest) -> None:
    summary = fault_run.summary()
    # Past pytest's capture, so CI's log carries the counts.
    headline = {
        k: summary[k]
        for k in (
            "events_sent",
            "faults_injected",
            "faults",
            "lost",
            "duplicated",
            "email_resent_after_crash",
        )
    }
    with request.config.pluginmanager.getplugin("capturemanager").global_and_fixture_disabled():
        print("\nfault suite: " + json.dumps(headline), flush=True)
    print("\nfault suite summary: " + fault_run.report())
    assert summary["lost"] == 0 and summary["duplicated"] == 0 and summary["quiescent"], fault_run.report()
    # Also carried by a passing run's assert message, for -rA / junit readers.
    assert summary["faults_injected"] > 0, fault_run.report()


@pytest.mark.soak
@pytest.mark.timeout(1800)
async def test_soak_longer_traffic_and_repeated_faults(tmp_path: Path) -> None:
    base = Plan().faults
    period = 90.0
    faults = [
        (t + period * round_, kind, target)
        for round_ in range(8)
        for (t, kind, target) in base
        if kind != "clock" or round_ == 0
    ]
    plan = Plan(traffic_seconds=period * 8 + 10, settle_seconds=240, workers=8, faults=sorted(faults))
    async for outcome in run_world(tmp_path, plan):
        failed = {k: c.problems for k, c in outcome.checks.items() if not c.ok}
        assert outcome.quiet.reached and not failed and not outcome.stats.errors, (
            outcome.report() + f"\n{failed}"
        )
