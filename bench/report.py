"""The report: ratios of each measure to its limit, and the README's Benchmarks section."""

from __future__ import annotations

from harness import CLIENTS, ROOT, ratio


def g(report: dict, *path: str) -> float | None:
    cur = report
    for p in path:
        if not isinstance(cur, dict) or p not in cur:
            return None
        cur = cur[p]
    return cur


def ratios(r: dict) -> dict:
    bare = g(r, "bare_fastapi", "posts_per_s")
    pub_async = g(r, "jetstream_limits", "publish_async", "msgs_per_s")
    pull16 = g(r, "jetstream_limits", "pull_consume", "batch_16", "msgs_per_s")
    return {
        "intake_sqlite_posts_to_bare_fastapi": ratio(g(r, "intake_posts_sqlite", "posts_per_s"), bare),
        "intake_postgresql_posts_to_bare_fastapi": ratio(
            g(r, "intake_posts_postgresql", "posts_per_s"), bare
        ),
        "relay_sqlite_to_raw_async_publish": ratio(g(r, "relay_sqlite", "events_per_s"), pub_async),
        "relay_postgresql_to_raw_async_publish": ratio(g(r, "relay_postgresql", "events_per_s"), pub_async),
        "pathway_consumer_to_raw_pull_batch16": ratio(g(r, "consumer_pathway", "events_per_s"), pull16),
        "notify_consumer_to_raw_pull_batch16": ratio(g(r, "consumer_notify", "events_per_s"), pull16),
        "referral_consumer_to_raw_pull_batch16": ratio(g(r, "consumer_referral", "events_per_s"), pull16),
        "append_sqlite_to_eventsourcing": g(r, "append_sqlite", "ratio_ours_with_outbox_to_eventsourcing"),
        "append_postgresql_to_eventsourcing": g(
            r, "append_postgresql", "ratio_ours_with_outbox_to_eventsourcing"
        ),
        "e2e_sustained_to_pathway_consumer": ratio(
            g(r, "end_to_end", "ramp", "highest_sustained_per_s"), g(r, "consumer_pathway", "events_per_s")
        ),
    }


# --- README ----------------------------------------------------------------------------------


def readme_section(r: dict) -> str:
    def v(*path: str, unit: str = "") -> str:
        x = g(r, *path)
        return "n/a" if x is None else f"{x:g}{unit}"

    m = r["machine"]
    lines = [
        "## Benchmarks",
        "",
        "```sh",
        "make bench    # ~5 minutes; prints the report and writes bench/results/latest.json",
        "```",
        "",
        f"Latest run ({r['when']}, commit {m['git']}): {m['cpus']} × {m['cpu']}, {m['memory_gb']} GB, "
        f"Python {m['python']}, SQLite {m['sqlite']}, PostgreSQL {(m['postgresql'] or 'n/a').split(' ')[0]}, {m['nats_server']}; "
        "clients, services, nats-server and PostgreSQL all on that one machine.",
        "",
    ]
    if r.get("warning"):
        lines += [
            f"**Caution:** {r['warning']} (1/5/15-minute load average at start: {m.get('load_average_at_start')}).",
            "",
        ]
    lines += [
        "| measure | ours | bare limit | ratio |",
        "|---|---|---|---|",
    ]
    bare = f"{v('bare_fastapi', 'posts_per_s')}/s bare FastAPI"
    for kind in ("sqlite", "postgresql"):
        lines.append(
            f"| intake POST/s, {CLIENTS} clients, {kind} (p50 / p99) | {v(f'intake_posts_{kind}', 'posts_per_s')}/s "
            f"({v(f'intake_posts_{kind}', 'latency', 'p50_ms')} / {v(f'intake_posts_{kind}', 'latency', 'p99_ms')} ms) | {bare} | "
            f"{v('ratios', f'intake_{kind}_posts_to_bare_fastapi')} |"
        )
    for kind in ("sqlite", "postgresql"):
        lines.append(
            f"| relay events/s, {kind} | {v(f'relay_{kind}', 'events_per_s')} | {v('jetstream_limits', 'publish_async', 'msgs_per_s')}/s js.publish_async | {v('ratios', f'relay_{kind}_to_raw_async_publish')} |"
        )
    pull = f"{v('jetstream_limits', 'pull_consume', 'batch_16', 'msgs_per_s')}/s raw pull (batch 16)"
    lines.append(
        f"| pathway consumer events/s (sqlite) | {v('consumer_pathway', 'events_per_s')} | {pull} | {v('ratios', 'pathway_consumer_to_raw_pull_batch16')} |"
    )
    lines.append(
        f"| notify consumer events/s (sqlite) | {v('consumer_notify', 'events_per_s')} | {pull} | {v('ratios', 'notify_consumer_to_raw_pull_batch16')} |"
    )
    lines.append(
        f"| referral consumer events/s, pathway's assessments (sqlite) | {v('consumer_referral', 'events_per_s')} | {pull} | {v('ratios', 'referral_consumer_to_raw_pull_batch16')} |"
    )
    for kind in ("sqlite", "postgresql"):
        lines.append(
            f"| event store appends/s, 1 per tx, {kind} | {v(f'append_{kind}', 'ours_with_outbox', 'events_per_s')} | {v(f'append_{kind}', 'eventsourcing', 'events_per_s')}/s eventsourcing | {v('ratios', f'append_{kind}_to_eventsourcing')} |"
        )
    fixed = ("end_to_end", "fixed_load", "post_to_assessment")
    lines.append(
        f"| completion POST → pathway assessment at {v('end_to_end', 'fixed_load', 'offered_completions_per_s')}/s, p50 / p95 / p99 | "
        f"{v(*fixed, 'p50_ms')} / {v(*fixed, 'p95_ms')} / {v(*fixed, 'p99_ms')} ms | | |"
    )
    queued = ("end_to_end", "referral_fixed_load", "post_to_task_queued")
    lines.append(
        f"| 2nd failed trial's completion POST → referral task queued at {v('end_to_end', 'referral_fixed_load', 'offered_completions_per_s')}/s, p50 / p95 / p99 | "
        f"{v(*queued, 'p50_ms')} / {v(*queued, 'p95_ms')} / {v(*queued, 'p99_ms')} ms | | |"
    )
    lines.append(
        f"| highest sustained offered load, intake → pathway (sqlite) | {v('end_to_end', 'ramp', 'highest_sustained_per_s')} events/s | "
        f"{v('consumer_pathway', 'events_per_s')}/s pathway consumer | {v('ratios', 'e2e_sustained_to_pathway_consumer')} |"
    )
    lines += [
        "",
        "How each is measured, the PostgreSQL and JetStream limits' details and the ramp's steps: the docstring of "
        "`bench/run.py` and the report itself.",
        "",
    ]
    return "\n".join(lines)


def update_readme(r: dict) -> None:
    readme = ROOT / "README.md"
    content = readme.read_text()
    head = content.split("\n## Benchmarks\n", 1)[0].rstrip("\n")
    readme.write_text(head + "\n\n" + readme_section(r))
