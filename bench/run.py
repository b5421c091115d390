"""`make bench`: one run, one report (printed, and written to bench/results/latest.json).

What it measures, each beside the bare limit it is a ratio of:
- intake POST throughput and latency (16 clients, a realistic mix) on SQLite and PostgreSQL,
  against a bare FastAPI endpoint served the same way and driven by the same harness;
- end-to-end latency from a trial completion's POST to pathway's assessment reflecting it at
  a fixed offered load; at the same offered load, from the POST of a patient's second failed
  adequate trial's completion (pathway then advises a referral) to referral's task for that
  patient being queued (GET /v1/referrals?patient_id=... shows it queued or unroutable); and
  the highest offered load pathway sustains without a growing consumer backlog (offered load
  ramped in steps, with referral consuming pathway's events alongside);
- the outbox relay's events/s against raw JetStream async publishing;
- pathway's, notify's and referral's consumer events/s against a raw pull consumer;
- the event store's append rate against the `eventsourcing` library on the same databases;
- pathway's engine micro-benchmarks (bench_pathway.py).

Real processes (`python -m intake serve|relay`, pathway, referral, notify; referral's directory
from `python -m referral demo-seed`), our own nats-server on free
loopback ports, and `bench_<random>` PostgreSQL databases that are dropped at the end. Every
loop is bounded by a count and a deadline; the whole run stays under ~6 minutes.

The code: bench/harness.py (budget, processes, databases, load generators, machine facts),
bench/scenarios/ (one module per kind of measure), bench/report.py (ratios, README section),
this file (the order of the run).

    .venv/bin/python bench/run.py            # the run
    .venv/bin/python bench/run.py --only consumer_pathway,relay_sqlite   # some sections (not written to latest.json)
    .venv/bin/python bench/run.py --readme   # rewrite README.md's Benchmarks section from latest.json
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_pathway as bp
from harness import (
    PG_CREATED,
    PG_HOST,
    PG_PORT,
    RESULTS,
    T0,
    drop_left,
    left,
    log,
    machine,
    pg_available,
    section,
)
from report import ratios, update_readme
from scenarios import consumers, end_to_end, http, jetstream, store


async def run(only: set[str] | None = None) -> dict:
    report: dict = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "machine": await machine()}
    report["machine"]["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    # The 1- and 5-minute averages both: a machine just finishing other work reads idle at
    # one minute while the five-minute figure still shows it.
    if max(os.getloadavg()[:2]) > 0.5 * (os.cpu_count() or 1):
        report["warning"] = (
            "the machine was busy with other work when the run started (1- or 5-minute load average above half the CPUs): figures are low and noisy"
        )
    pg_ok = await pg_available()
    if not pg_ok:
        report.setdefault("skipped", {})["postgresql"] = f"no PostgreSQL at {PG_HOST}:{PG_PORT}"

    # Bare limits first, on an idle machine.
    await section(report, only, "jetstream_limits", jetstream.jetstream_limits(), 90)
    await section(report, only, "bare_fastapi", http.bare_fastapi(8), 40)
    await section(report, only, "append_sqlite", store.appends("sqlite", 600), 60)
    if pg_ok:
        await section(report, only, "append_postgresql", store.appends("postgresql", 600), 60)

    # Ours.
    await section(report, only, "intake_posts_sqlite", http.intake_posts("sqlite", 12), 60)
    await section(
        report,
        only,
        "intake_posts_sqlite_separate_relay",
        http.intake_posts("sqlite", 10, separate_relay=True),
        60,
    )
    if pg_ok:
        await section(report, only, "intake_posts_postgresql", http.intake_posts("postgresql", 12), 60)
    await section(report, only, "relay_sqlite", store.relay("sqlite", 5000), 90)
    if pg_ok:
        await section(report, only, "relay_postgresql", store.relay("postgresql", 5000), 90)
    await section(report, only, "consumer_pathway", consumers.consumer("pathway", 30, 20, 60), 80)
    await section(report, only, "consumer_notify", consumers.consumer("notify", 30, 20, 60), 80)
    await section(report, only, "consumer_referral", consumers.referral_consumer(150, 4, 60), 80)
    await section(
        report,
        only,
        "end_to_end",
        end_to_end.end_to_end(5, 10, [5, 10, 15, 20, 30, 45, 60, 90, 120], 6, 60),
        240,
    )

    # pathway's own micro-benchmarks (bench_pathway.py), CPU only.
    if left() > 15 and (only is None or "pathway_engine" in only):
        at_10, at_1000 = bp.cost_per_event_us(10), bp.cost_per_event_us(1000)
        report["pathway_engine"] = {
            "engine_events_per_s": round(bp.engine_events_per_second(), 1),
            "cost_per_event_us": {
                "history_10": round(at_10, 1),
                "history_1000": round(at_1000, 1),
                "ratio": round(at_1000 / at_10, 2),
            },
        }
    report["ratios"] = ratios(report)
    report["total_seconds"] = round(time.monotonic() - T0, 1)
    return report


def main() -> int:
    if "--readme" in sys.argv:
        update_readme(json.loads((RESULTS / "latest.json").read_text()))
        return 0
    import signal

    def too_long(*_: object) -> None:
        raise SystemExit("bench: hard time limit reached")

    signal.signal(signal.SIGALRM, too_long)
    signal.alarm(450)
    only = None
    if "--only" in sys.argv:
        only = set(sys.argv[sys.argv.index("--only") + 1].split(","))
    try:
        report = asyncio.run(run(only))
    finally:
        if PG_CREATED:  # a section cut short: drop what it left
            asyncio.run(drop_left())
    out = json.dumps(report, indent=2) + "\n"
    print(out)
    if only is None:  # a partial run is not the report of record
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "latest.json").write_text(out)
        log(f"written {RESULTS / 'latest.json'}")
    return 1 if report.get("errors") else 0


if __name__ == "__main__":
    sys.exit(main())
