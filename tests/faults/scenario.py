"""One run of the fault scenario: start the world, drive clinic traffic, inject the faults on
a schedule while it flows, let it settle (with a deadline), then measure the invariants."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as dtime

from care_shared.envelope import new_event_id
from tests.faults import invariants as inv
from tests.faults.network import FaultNetwork
from tests.faults.traffic import Clinic, TrafficStats, clinic_worker, today_utc

INTAKE_CONSUMERS = 3  # pathway-intake, referral-access, notify-intake


@dataclass
class Plan:
    """Seconds after traffic starts at which each fault is injected; traffic runs for
    `traffic_seconds` and the network has `settle_seconds` to catch up afterwards."""

    traffic_seconds: float = 75.0
    settle_seconds: float = 100.0
    workers: int = 4
    faults: list[tuple[float, str, str]] = field(
        default_factory=lambda: [
            (5, "sigkill", "intake"),
            (10, "crash-at", "relay:CARE_RELAY_FAULT=kill_after_publish"),
            (13, "poison", "invalid-json"),
            (16, "sigkill", "pathway"),
            (20, "pg-terminate", "intake"),
            (22, "pg-terminate", "pathway"),
            (24, "crash-at", "notify:NOTIFY_DELIVERY_FAULT=kill_after_send:email"),
            (25, "clock", "week-1"),
            (28, "sigkill", "referral"),
            (31, "poison", "unknown-type"),
            (36, "nats-restart", ""),
            (41, "pg-terminate", "referral"),
            (43, "pg-terminate", "notify"),
            (45, "crash-at", "notify:NOTIFY_DELIVERY_FAULT=kill_after_send:sms"),
            (46, "clock", "week-2"),
            (50, "poison", "newer-version"),
            (54, "sigkill", "relay"),
            (57, "pg-terminate", "intake"),
            (60, "sigkill", "pathway"),
            (63, "sigkill", "notify"),
            (66, "sigkill", "intake"),
        ]
    )


@dataclass
class Outcome:
    net: FaultNetwork
    clinics: list[Clinic]
    stats: TrafficStats
    poison: dict[int, str]
    quiet: inv.Quiet
    checks: dict[str, inv.Check]
    durations: dict[str, float]
    fault_errors: list[str]

    def summary(self) -> dict:
        intake = self.checks["intake_store"].counts
        stream = self.checks["intake_stream"].counts
        lost = sum(c.counts.get("lost", 0) for c in self.checks.values()) + self.checks[
            "reminders"
        ].counts.get("due_not_sent", 0)
        duplicated = (
            sum(c.counts.get("duplicated", 0) for c in self.checks.values())
            + len(self.stats.resend_mismatches)
            + (
                self.checks["reminders"].counts.get("sms_gateway_posts", 0)
                - self.checks["reminders"].counts.get("sms_gateway_distinct_keys", 0)
            )
            + self.checks["intake_store"].counts.get("unexplained", 0)
        )
        return {
            "events_sent": intake.get("accepted_posts"),
            "posts_http_attempts": self.stats.attempts,
            "client_retries": self.stats.retries,
            "retry_reasons": self.stats.retry_reasons,
            "resent_on_purpose_same_key": self.stats.resent_on_purpose,
            "patients": sum(len(c.patients) for c in self.clinics),
            "intake_stream_messages": stream.get("stream_messages"),
            # Clock moves (to make reminders due) are logged beside the faults but are none.
            "faults_injected": sum(
                self.net.faults.count(k) for k in ("sigkill", "nats-restart", "pg-terminate", "poison")
            ),
            "faults": {
                k: self.net.faults.count(k) for k in ("sigkill", "nats-restart", "pg-terminate", "poison")
            },
            "fault_log": self.net.faults.entries,
            "lost": lost,
            "duplicated": duplicated,
            # Not counted above, and not hidden: SMTP cannot be asked whether it took a message,
            # so a crash between its 250 and notify's record resends the e-mail (same Message-ID).
            "email_resent_after_crash": self.checks["reminders"].counts.get(
                "smtp_resends_same_message_id", 0
            ),
            "quiescent": self.quiet.reached,
            "settled_after_s": self.quiet.waited_s,
            "durations_s": self.durations,
            "checks": {
                k: ("skipped: " + c.skipped) if c.skipped else ("ok" if c.ok else "FAILED")
                for k, c in self.checks.items()
            },
            "counts": {k: c.counts for k, c in self.checks.items()},
        }

    def report(self) -> str:
        return json.dumps(self.summary(), indent=2, default=str)


async def inject_poison(net: FaultNetwork, kind: str) -> int:
    """A message on intake's subjects that can never be processed; returns its stream seq."""
    nc = await net.nats.connect()
    try:
        js = nc.jetstream()
        pid = str(uuid.uuid4())
        event_id = new_event_id()
        if kind == "invalid-json":
            subject, data = f"intake.poison.{pid}", b'{"specversion": "1.0", "id": '
        else:
            type_ = (
                "care.intake.poison-pill.v1"
                if kind == "unknown-type"
                else "care.intake.assessment-recorded.v99"
            )
            subject = f"intake.{type_.split('.')[2]}.{pid}"
            data = json.dumps(
                {
                    "specversion": "1.0",
                    "id": event_id,
                    "source": "/intake",
                    "type": type_,
                    "subject": pid,
                    "time": datetime.now(UTC).isoformat(),
                    "datacontenttype": "application/json",
                    "sequence": 1,
                    "data": {"patient_id": pid},
                }
            ).encode()
        ack = await js.publish(subject, data, headers={"Nats-Msg-Id": f"poison-{event_id}"}, stream="INTAKE")
        net.faults.add("poison", kind, seq=ack.seq)
        return ack.seq
    finally:
        await nc.close()


async def run_scenario(net: FaultNetwork, plan: Plan, *, seed: int = 7) -> Outcome:
    """Runs on `net` (not started yet); the caller stops it, whatever happens here."""
    began = time.monotonic()
    durations: dict[str, float] = {}
    yesterday = today_utc() - timedelta(days=1)
    # notify's "now" starts at the wall clock and is moved on in steps, so the review
    # reminders of trials started yesterday fall due while the faults happen.
    await net.start(datetime.now(UTC))
    durations["start"] = round(time.monotonic() - began, 1)
    stats = TrafficStats()
    rng = random.Random(seed)
    clinics: list[Clinic] = []
    poison: dict[int, str] = {}
    fault_errors: list[str] = []
    try:
        for i in range(2):
            clinic_id, key = await net.add_clinic(f"Fault clinic {i}")
            clinics.append(
                Clinic(
                    net.url("intake"), net.url("notify"), clinic_id, key, stats, random.Random(rng.random())
                )
            )

        stop = asyncio.Event()
        numbers = itertools.count()
        contact_tasks: list[asyncio.Task] = []
        t0 = time.monotonic()
        net.log(f"traffic starts: {plan.workers} clients, {plan.traffic_seconds}s")
        workers = [
            asyncio.create_task(clinic_worker(clinics[i % len(clinics)], stop, numbers, contact_tasks))
            for i in range(plan.workers)
        ]
        clock_steps = {
            "week-1": datetime.combine(yesterday + timedelta(days=7), dtime(12, 0), tzinfo=UTC),
            "week-2": datetime.combine(yesterday + timedelta(days=14), dtime(12, 0), tzinfo=UTC),
        }
        for at, kind, target in plan.faults:
            await asyncio.sleep(max(0.0, t0 + at - time.monotonic()))
            try:
                if kind == "sigkill":
                    await net.sigkill(target)
                elif kind == "crash-at":
                    name, setting = target.split(":", 1)
                    await net.crash_at(name, *setting.split("=", 1))
                elif kind == "nats-restart":
                    await net.restart_nats()
                elif kind == "pg-terminate":
                    await net.cut_postgres(target)
                elif kind == "poison":
                    poison[await inject_poison(net, target)] = target
                    net.log(f"poison message on INTAKE: {target}")
                elif kind == "clock":
                    net.set_clock(clock_steps[target])
                    net.faults.add("clock", "notify", now=clock_steps[target].isoformat())
                    net.log(f"notify's clock moved to {clock_steps[target].isoformat()}")
                else:  # a network's own faults (the cluster's: tests/cluster/network.py)
                    await net.inject(kind, target)
            except Exception as exc:
                fault_errors.append(f"{kind} {target}: {exc!r}"[:2000])
                net.log(f"fault {kind} {target} raised {exc!r}")
        await asyncio.sleep(max(0.0, t0 + plan.traffic_seconds - time.monotonic()))
        stop.set()
        await asyncio.gather(*workers)
        durations["traffic"] = round(time.monotonic() - t0, 1)
        net.log(
            f"traffic stopped: {stats.posts} POSTs accepted, {stats.retries} retries; waiting for contacts and restarts"
        )
        results = await asyncio.gather(*contact_tasks, return_exceptions=True)
        await net.settle_restarts()
        stats.errors += [repr(r) for r in results if isinstance(r, BaseException)]
        # A last small step of the clock: a delivery retried after backoff is due again, and
        # nothing else falls due (reviews are at 09:00).
        net.set_clock(clock_steps["week-2"] + timedelta(hours=2))

        t1 = time.monotonic()
        quiet = await inv.quiesce(net, plan.settle_seconds)
        durations["settle"] = round(time.monotonic() - t1, 1)
        net.log(f"settled: {quiet.reached} after {quiet.waited_s}s: {quiet.last}")

        t2 = time.monotonic()
        accepted = {a.event_id: a.key for c in clinics for a in c.accepted.values() if a.event_id}
        intake_rows = await inv.store_events(net.db_urls["intake"])
        pathway_rows = await inv.store_events(net.db_urls["pathway"])
        referral_rows = await inv.store_events(net.db_urls["referral"])
        notify_rows = await inv.store_events(net.db_urls["notify"])
        streams = {name: await inv.read_stream(net.nats, name, subj) for name, subj in inv.STREAMS.items()}
        dlq = await inv.read_stream(net.nats, "DLQ", "dlq.>")
        checks = {
            "intake_store": inv.accepted_posts_in_store(accepted, intake_rows),
            "intake_stream": inv.stream_matches_store("INTAKE", intake_rows, streams["INTAKE"], set(poison)),
            "pathway_stream": inv.stream_matches_store("PATHWAY", pathway_rows, streams["PATHWAY"], set()),
            "referral_stream": inv.stream_matches_store(
                "REFERRAL", referral_rows, streams["REFERRAL"], set()
            ),
            "notify_stream": inv.stream_matches_store("NOTIFY", notify_rows, streams["NOTIFY"], set()),
            "pathway_rebuild": await inv.pathway_matches_rebuild(net, intake_rows),
            "referrals": await inv.referrals_one_per_need(
                net, clinics, pathway_rows, referral_rows, streams["REFERRAL"]
            ),
            "reminders": await inv.reminders_delivered_once(net, clinics, notify_rows, streams["NOTIFY"]),
            "dead_letters": inv.dead_letters_only_poison(dlq, poison, INTAKE_CONSUMERS),
        }
        durations["checks"] = round(time.monotonic() - t2, 1)
        net.log(
            "checks: "
            + ", ".join(
                f"{k} {'skipped' if c.skipped else 'ok' if c.ok else 'FAILED'}" for k, c in checks.items()
            )
        )
        durations["total"] = round(time.monotonic() - began, 1)
        return Outcome(net, clinics, stats, poison, quiet, checks, durations, fault_errors)
    finally:
        for c in clinics:
            await c.close()
