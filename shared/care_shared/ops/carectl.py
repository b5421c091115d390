"""carectl: the operator's command for the TRD Care Network.

    carectl streams                 JetStream streams: messages, bytes, publish rate
    carectl consumers               durable consumers: lag, pending acks, redeliveries
    carectl dlq list                dead letters with their reasons
    carectl dlq replay <seq|all>    put dead letters back on their subject after a fix
    carectl rebuild <service>       replay events into a fresh projection and compare
                                    (pathway from intake's stream; referral, notify from their own)
    carectl trace <trace id>        a trace as a tree with timings, from var/traces
    carectl trace --last            the newest clinic request's trace
    carectl clinic add --name N     register a partner clinic; its API key is shown once
    carectl clinic rotate-key       replace the key in $CLINIC_KEY; the new one is shown once
    carectl coordinator add --name N  register a referral coordinator; the key is shown once
    carectl coordinator rotate-key  replace the key in $COORDINATOR_KEY

NATS comes from --nats, else NATS_URL, else var/run.json (written by `make run`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from care_shared.consumer import DLQ_CONSUMER, DLQ_DELIVERIES, DLQ_REASON, DLQ_STREAM_SEQ, DLQ_SUBJECT
from care_shared.ops.traces import last_request_trace, load_spans, render_tree
from care_shared.topology import DLQ_STREAM

RUN_FILE = Path(os.environ.get("CARE_VAR_DIR") or "var") / "run.json"  # written by `make run`


def run_info() -> dict:
    try:
        return json.loads(RUN_FILE.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def nats_url(args: argparse.Namespace) -> str:
    return args.nats or os.environ.get("NATS_URL") or run_info().get("nats_url") or "nats://127.0.0.1:4222"


def table(rows: list[list[object]], header: list[str]) -> str:
    cells = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells)


async def streams(args: argparse.Namespace) -> int:
    nc = await nats.connect(nats_url(args))
    js = nc.jetstream()
    try:
        first = {s.config.name: s.state for s in await js.streams_info()}
        await asyncio.sleep(args.interval)
        rows = []
        for s in await js.streams_info():
            before = first.get(s.config.name)
            rate = (s.state.last_seq - before.last_seq) / args.interval if before else 0
            rows.append([s.config.name, ",".join(s.config.subjects or []), s.state.messages, s.state.bytes, s.state.consumer_count, f"{rate:.1f}/s"])
        print(table(rows, ["stream", "subjects", "messages", "bytes", "consumers", "publish rate"]))
    finally:
        await nc.close()
    return 0


async def consumers(args: argparse.Namespace) -> int:
    nc = await nats.connect(nats_url(args))
    js = nc.jetstream()
    try:
        rows = []
        for s in await js.streams_info():
            for c in await js.consumers_info(s.config.name):
                if not c.config.durable_name:
                    continue
                rows.append([s.config.name, c.name, c.num_pending, c.num_ack_pending, c.num_redelivered, c.delivered.stream_seq if c.delivered else 0])
        print(table(rows, ["stream", "consumer", "lag", "ack pending", "redelivered", "delivered through"]))
    finally:
        await nc.close()
    return 0


async def _dead_letters(js) -> list:  # noqa: ANN001
    info = await js.stream_info(DLQ_STREAM)
    if info.state.messages == 0:
        return []
    sub = await js.pull_subscribe(
        "dlq.>", durable=None, stream=DLQ_STREAM, config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE)
    )
    letters = []
    while len(letters) < info.state.messages:
        try:
            batch = await sub.fetch(200, timeout=2)
        except TimeoutError:  # nats-py raises its own or the built-in one
            break
        letters += batch
    await sub.unsubscribe()
    return letters


async def dlq(args: argparse.Namespace) -> int:
    nc = await nats.connect(nats_url(args))
    js = nc.jetstream()
    try:
        letters = await _dead_letters(js)
        if args.dlq_command == "list":
            rows = [
                [m.metadata.sequence.stream, m.headers.get(DLQ_CONSUMER), m.headers.get(DLQ_SUBJECT), m.headers.get(DLQ_DELIVERIES), m.headers.get(DLQ_REASON)]
                for m in letters
            ]
            print(table(rows, ["dlq seq", "consumer", "original subject", "deliveries", "reason"]) if rows else "no dead letters")
            return 0
        chosen = letters if args.which == "all" else [m for m in letters if str(m.metadata.sequence.stream) == args.which]
        if not chosen:
            print(f"no dead letter {args.which}", file=sys.stderr)
            return 1
        for m in chosen:
            # Back on its original subject under a fresh message id; consumers that already
            # handled the event skip it by its event id (their inbox), the one that failed
            # takes it again. Then the dead letter is removed.
            await js.publish(m.headers[DLQ_SUBJECT], m.data, headers={"Nats-Msg-Id": f"replay:{m.headers.get(DLQ_STREAM_SEQ)}:{m.metadata.sequence.stream}"})
            await js.delete_msg(DLQ_STREAM, m.metadata.sequence.stream)
            print(f"replayed dlq {m.metadata.sequence.stream} -> {m.headers[DLQ_SUBJECT]}")
        return 0
    finally:
        await nc.close()


def rebuild(args: argparse.Namespace) -> int:
    env = {**os.environ, "NATS_URL": nats_url(args)}
    db = args.database_url or os.environ.get("DATABASE_URL") or run_info().get("databases", {}).get(args.service)
    if db:
        env["DATABASE_URL"] = db
    return subprocess.call([sys.executable, "-m", args.service, "rebuild", "--progress"], env=env)


def trace(args: argparse.Namespace) -> int:
    trace_dir = Path(args.dir or run_info().get("trace_dir") or "var/traces")
    spans = load_spans(trace_dir)
    trace_id = last_request_trace(spans) if args.last else args.trace_id
    if not trace_id:
        print("no traces yet" if args.last else "give a trace id or --last", file=sys.stderr)
        return 1
    print(render_tree(spans, trace_id, include_db=args.db))
    return 0


def clinic(args: argparse.Namespace) -> int:
    env = dict(os.environ)
    db = args.database_url or run_info().get("databases", {}).get("intake")
    if db:
        env["DATABASE_URL"] = db
    if args.clinic_command == "add":
        return subprocess.call([sys.executable, "-m", "intake", "clinic", "add", "--name", args.name], env=env)
    # The current key comes from the environment (CLINIC_KEY), never the command line.
    return subprocess.call([sys.executable, "-m", "intake", "clinic", "rotate-key"], env=env)


def coordinator(args: argparse.Namespace) -> int:
    env = dict(os.environ)
    db = args.database_url or run_info().get("databases", {}).get("referral")
    if db:
        env["DATABASE_URL"] = db
    if args.coordinator_command == "add":
        return subprocess.call([sys.executable, "-m", "referral", "coordinator", "add", "--name", args.name], env=env)
    # The current key comes from the environment (COORDINATOR_KEY), never the command line.
    return subprocess.call([sys.executable, "-m", "referral", "coordinator", "rotate-key"], env=env)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="carectl", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nats", help="NATS URL (default: NATS_URL, then var/run.json)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("streams", help="JetStream streams: messages, bytes, publish rate")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between the two samples of the rate")
    p.set_defaults(run=lambda a: asyncio.run(streams(a)))
    sub.add_parser("consumers", help="durable consumers: lag, pending acks, redeliveries").set_defaults(run=lambda a: asyncio.run(consumers(a)))
    p = sub.add_parser("dlq", help="dead letters: list them, or replay after a fix")
    dsub = p.add_subparsers(dest="dlq_command", required=True)
    dsub.add_parser("list", help="every dead letter with its consumer and reason")
    r = dsub.add_parser("replay", help="republish a dead letter (by its dlq seq) or all of them")
    r.add_argument("which", help="a dlq sequence number from `dlq list`, or all")
    p.set_defaults(run=lambda a: asyncio.run(dlq(a)))
    p = sub.add_parser("rebuild", help="replay events into a fresh projection and compare with the live one")
    p.add_argument("service", choices=["pathway", "referral", "notify"])
    p.add_argument("--database-url", help="the service's database (default: DATABASE_URL, then var/run.json)")
    p.set_defaults(run=rebuild)
    p = sub.add_parser("trace", help="a trace as a tree with timings, from the local trace store")
    p.add_argument("trace_id", nargs="?")
    p.add_argument("--last", action="store_true", help="the newest clinic request's trace")
    p.add_argument("--db", action="store_true", help="include database spans")
    p.add_argument("--dir", help="trace directory (default var/traces)")
    p.set_defaults(run=trace)
    p = sub.add_parser("clinic", help="partner clinics")
    csub = p.add_subparsers(dest="clinic_command", required=True)
    a = csub.add_parser("add", help="register a clinic; its API key is printed once")
    a.add_argument("--name", required=True)
    a.add_argument("--database-url", help="intake's database (default: DATABASE_URL, then var/run.json)")
    k = csub.add_parser("rotate-key", help="replace the key in $CLINIC_KEY; the new key is printed once")
    k.add_argument("--database-url", help="intake's database (default: DATABASE_URL, then var/run.json)")
    p.set_defaults(run=clinic)
    p = sub.add_parser("coordinator", help="referral coordinators")
    rsub = p.add_subparsers(dest="coordinator_command", required=True)
    a = rsub.add_parser("add", help="register a coordinator; the key is printed once")
    a.add_argument("--name", required=True)
    a.add_argument("--database-url", help="referral's database (default: DATABASE_URL, then var/run.json)")
    k = rsub.add_parser("rotate-key", help="replace the key in $COORDINATOR_KEY; the new key is printed once")
    k.add_argument("--database-url", help="referral's database (default: DATABASE_URL, then var/run.json)")
    p.set_defaults(run=coordinator)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
