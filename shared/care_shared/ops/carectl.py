"""carectl: the operator's command for the TRD Care Network.

    carectl bus ensure              declare every stream of the topology (ops; make run does it)
    carectl streams                 JetStream streams: messages, bytes, publish rate
    carectl consumers               durable consumers: lag, pending acks, redeliveries, ack rate
    carectl dlq list                dead letters with their reasons
    carectl dlq replay <seq|all>    put dead letters back on their subject after a fix
    carectl rebuild <service>       replay events into a fresh projection and compare
                                    (pathway from intake's stream; referral, notify from their own)
    carectl trace <trace id>        a trace as a tree with timings, from var/traces
    carectl trace --last            the newest clinic request's trace
    carectl clinic add --name N     register a partner clinic; its API key is shown once
    carectl clinic rotate-key       replace the key in $CLINIC_KEY; the new one is shown once
    carectl clinic revoke --clinic-id ID   revoke a clinic's keys, everywhere, without the key
    carectl coordinator add --name N  register a referral coordinator; the key is shown once
    carectl coordinator rotate-key  replace the key in $COORDINATOR_KEY
    carectl coordinator revoke --coordinator-id ID   revoke a coordinator's key
    carectl audit --patient ID      who read or changed a patient's data, newest first
    carectl audit --clinic ID       what a clinic (or --coordinator ID) read or changed
    carectl outbox                  outbox rows set aside as unpublishable, with why

NATS comes from --nats, else NATS_URL, else var/run.json (written by `make run`); carectl
connects as the ops user, whose seed comes from --creds, else NATS_NKEY_FILE, else var/run.json.
`carectl <command> --help` explains each command's columns and effects.
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
import nats.js.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from care_shared.audit import render as render_audit
from care_shared.consumer import DLQ_CONSUMER, DLQ_DELIVERIES, DLQ_REASON, DLQ_STREAM_SEQ, DLQ_SUBJECT
from care_shared.envelope import CLOUDEVENTS_CONTENT_TYPE
from care_shared.nats_auth import OPS, connect_options, ssl_context
from care_shared.ops.traces import last_request_trace, load_spans, render_tree
from care_shared.topology import DLQ_STREAM, durable_configs, ensure_topology, stream_configs

RUN_FILE = Path(os.environ.get("CARE_VAR_DIR") or "var") / "run.json"  # written by `make run`


def run_info() -> dict:
    try:
        return json.loads(RUN_FILE.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def nats_url(args: argparse.Namespace) -> str:
    return args.nats or os.environ.get("NATS_URL") or run_info().get("nats_url") or "nats://127.0.0.1:4222"


def ops_seed(args: argparse.Namespace) -> str | None:
    return args.creds or os.environ.get("NATS_NKEY_FILE") or run_info().get("nats_ops_credentials")


async def connect(args: argparse.Namespace) -> nats.NATS:
    """The ops user's connection (no anonymous access on the bus)."""
    # An operator wants an answer, not a retry loop: fail at once when refused or away.
    # TLS past one machine: the same NATS_CA_FILE / NATS_CERT_FILE / NATS_KEY_FILE as the services.
    tls = ssl_context(
        os.environ.get("NATS_CA_FILE"), os.environ.get("NATS_CERT_FILE"), os.environ.get("NATS_KEY_FILE")
    )
    return await nats.connect(
        nats_servers(args),
        allow_reconnect=False,
        connect_timeout=5,
        **connect_options(OPS, ops_seed(args), tls),
    )


def nats_servers(args: argparse.Namespace) -> list[str]:
    return [u.strip() for u in nats_url(args).split(",") if u.strip()]


async def bus(args: argparse.Namespace) -> int:
    nc = await connect(args)
    try:
        clinics = [*args.clinic, *os.environ.get("CARE_CLINIC_IDS", "").split()]
        await ensure_topology(nc.jetstream(), args.replicas, clinics)
        print(
            json.dumps(
                {
                    "streams": [c.name for c in stream_configs(args.replicas)],
                    "durables": [c.durable_name for _, c in durable_configs(clinics)],
                }
            )
        )
    finally:
        await nc.close()
    return 0


def table(rows: list[list[object]], header: list[str]) -> str:
    cells = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells)


async def streams(args: argparse.Namespace) -> int:
    nc = await connect(args)
    js = nc.jetstream()
    try:
        first = {s.config.name: s.state for s in await js.streams_info()}
        await asyncio.sleep(args.interval)
        rows = []
        for s in await js.streams_info():
            before = first.get(s.config.name)
            rate = (s.state.last_seq - before.last_seq) / args.interval if before else 0
            rows.append(
                [
                    s.config.name,
                    ",".join(s.config.subjects or []),
                    s.state.messages,
                    s.state.bytes,
                    s.state.consumer_count,
                    f"{rate:.1f}/s",
                ]
            )
        print(table(rows, ["stream", "subjects", "messages", "bytes", "consumers", "publish rate"]))
    finally:
        await nc.close()
    return 0


async def consumers(args: argparse.Namespace) -> int:
    nc = await connect(args)
    js = nc.jetstream()

    async def sample() -> dict[tuple[str, str], object]:
        found = {}
        for s in await js.streams_info():
            for c in await js.consumers_info(s.config.name):
                if c.config.durable_name:
                    found[(s.config.name, c.name)] = c
        return found

    try:
        first = await sample()
        await asyncio.sleep(args.interval)
        rows = []
        for (stream, name), c in (await sample()).items():
            before = first.get((stream, name))
            done = c.ack_floor.stream_seq if c.ack_floor else 0
            done_before = before.ack_floor.stream_seq if before and before.ack_floor else done
            rate = (done - done_before) / args.interval
            rows.append(
                [stream, name, c.num_pending, c.num_ack_pending, c.num_redelivered, f"{rate:.1f}/s", done]
            )
        print(
            table(
                rows, ["stream", "consumer", "lag", "ack pending", "redelivered", "ack rate", "acked through"]
            )
        )
    finally:
        await nc.close()
    return 0


async def _dead_letters(js) -> list:
    info = await js.stream_info(DLQ_STREAM)
    if info.state.messages == 0:
        return []
    sub = await js.pull_subscribe(
        "dlq.>",
        durable=None,
        stream=DLQ_STREAM,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE),
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
    nc = await connect(args)
    js = nc.jetstream()
    try:
        letters = await _dead_letters(js)
        if args.dlq_command == "list":
            rows = [
                [
                    m.metadata.sequence.stream,
                    m.headers.get(DLQ_CONSUMER),
                    m.headers.get(DLQ_SUBJECT),
                    m.headers.get(DLQ_DELIVERIES),
                    m.headers.get(DLQ_REASON),
                ]
                for m in letters
            ]
            print(
                table(rows, ["dlq seq", "consumer", "original subject", "deliveries", "reason"])
                if rows
                else "no dead letters"
            )
            return 0
        chosen = (
            letters
            if args.which == "all"
            else [m for m in letters if str(m.metadata.sequence.stream) == args.which]
        )
        if not chosen:
            print(f"no dead letter {args.which}", file=sys.stderr)
            return 1
        origins = await _consumer_origins(js)
        refused = 0
        for m in chosen:
            problem = replay_refusal(m, origins)
            original = None if problem else await _original(js, m, origins)
            if original is None and not problem:
                problem = "its source stream holds no such message at that sequence and subject"
            if problem:
                refused += 1
                print(f"not replayed dlq {m.metadata.sequence.stream}: {problem}", file=sys.stderr)
                continue
            # The stream's own copy goes back on its own subject, never the dead letter's bytes:
            # anyone who may dead-letter could otherwise have ops publish what they wrote.
            # Under a fresh message id; consumers that already handled the event skip it by
            # its event id (their inbox), the one that failed takes it again. Then the dead
            # letter is removed.
            await js.publish(
                original.subject,
                original.data,
                headers={
                    "Nats-Msg-Id": f"replay:{m.headers.get(DLQ_STREAM_SEQ)}:{m.metadata.sequence.stream}",
                    "Content-Type": CLOUDEVENTS_CONTENT_TYPE,
                },
            )
            await js.delete_msg(DLQ_STREAM, m.metadata.sequence.stream)
            print(f"replayed dlq {m.metadata.sequence.stream} -> {m.headers[DLQ_SUBJECT]}")
        return 1 if refused else 0
    finally:
        await nc.close()


async def _consumer_origins(js) -> dict[str, tuple[str, list[str], str | None]]:
    """Each durable: its stream, that stream's subjects, and the consumer's filter."""
    found = {}
    for s in await js.streams_info():
        if s.config.name == DLQ_STREAM:
            continue
        for c in await js.consumers_info(s.config.name):
            if c.config.durable_name:
                found[c.name] = (s.config.name, list(s.config.subjects or []), c.config.filter_subject)
    return found


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS wildcards: `*` one token, `>` one or more at the end."""
    p, t = pattern.split("."), subject.split(".")
    for i, token in enumerate(p):
        if token == ">":
            return len(t) > i
        if i >= len(t) or (token != "*" and token != t[i]):
            return False
    return len(p) == len(t)


async def _original(js, m, origins: dict[str, tuple[str, list[str], str | None]]):
    """The message the dead letter says it is, read back from its consumer's own stream: the
    same subject and the same bytes, or None."""
    stream = origins[m.headers[DLQ_CONSUMER]][0]
    try:
        seq = int(m.headers.get(DLQ_STREAM_SEQ, ""))
        stored = await js.get_msg(stream, seq)
    except (ValueError, nats.js.errors.NotFoundError, nats.js.errors.APIError):
        return None
    if stored.subject != m.headers[DLQ_SUBJECT] or (stored.data or b"") != (m.data or b""):
        return None
    return stored


def replay_refusal(m, origins: dict[str, tuple[str, list[str], str | None]]) -> str | None:
    """A dead letter goes back only to the original subject of its consumer's own stream:
    its headers are not trusted to name another service's subject (a forged or mistaken
    dead letter would otherwise publish into any stream the operator's user may write)."""
    headers = m.headers or {}
    consumer, original = headers.get(DLQ_CONSUMER), headers.get(DLQ_SUBJECT)
    if not consumer or not original:
        return "no consumer or original subject in its headers"
    if m.subject != f"dlq.{consumer}":
        return f"it sits on {m.subject}, not its consumer's dead-letter subject dlq.{consumer}"
    if consumer not in origins:
        return f"no durable consumer {consumer}"
    stream, subjects, filter_subject = origins[consumer]
    if not any(subject_matches(p, original) for p in subjects):
        return f"{original} is not a subject of {consumer}'s stream {stream}"
    if filter_subject and not subject_matches(filter_subject, original):
        return f"{original} is not a subject {consumer} reads ({filter_subject})"
    return None


def rebuild(args: argparse.Namespace) -> int:
    env = {**os.environ, "NATS_URL": nats_url(args), "NATS_USER": OPS}  # replays run as ops
    if seed := ops_seed(args):
        env["NATS_NKEY_FILE"] = seed
    db = (
        args.database_url
        or os.environ.get("DATABASE_URL")
        or run_info().get("databases", {}).get(args.service)
    )
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
    db = args.database_url or os.environ.get("DATABASE_URL") or run_info().get("databases", {}).get("intake")
    if db:
        env["DATABASE_URL"] = db
    if args.clinic_command == "add":
        return subprocess.call(
            [sys.executable, "-m", "intake", "clinic", "add", "--name", args.name], env=env
        )
    if args.clinic_command == "revoke":
        return subprocess.call(
            [sys.executable, "-m", "intake", "clinic", "revoke", "--clinic-id", args.clinic_id], env=env
        )
    # The current key comes from the environment (CLINIC_KEY), never the command line.
    return subprocess.call([sys.executable, "-m", "intake", "clinic", "rotate-key"], env=env)


def coordinator(args: argparse.Namespace) -> int:
    env = dict(os.environ)
    db = (
        args.database_url or os.environ.get("DATABASE_URL") or run_info().get("databases", {}).get("referral")
    )
    if db:
        env["DATABASE_URL"] = db
    if args.coordinator_command == "add":
        return subprocess.call(
            [sys.executable, "-m", "referral", "coordinator", "add", "--name", args.name], env=env
        )
    if args.coordinator_command == "revoke":
        return subprocess.call(
            [
                sys.executable,
                "-m",
                "referral",
                "coordinator",
                "revoke",
                "--coordinator-id",
                args.coordinator_id,
            ],
            env=env,
        )
    # The current key comes from the environment (COORDINATOR_KEY), never the command line.
    return subprocess.call([sys.executable, "-m", "referral", "coordinator", "rotate-key"], env=env)


SERVICES = ("intake", "pathway", "referral", "notify")


def service_databases(args: argparse.Namespace) -> dict[str, str | None]:
    """Each service's database: --database SERVICE=URL, else <SERVICE>_DATABASE_URL, else
    var/run.json."""
    given = dict(d.split("=", 1) for d in (args.database or []))
    known = run_info().get("databases", {})
    return {s: given.get(s) or os.environ.get(f"{s.upper()}_DATABASE_URL") or known.get(s) for s in SERVICES}


def _each_service(args: argparse.Namespace, command: list[str]) -> tuple[list[dict], list[str]]:
    rows, problems = [], []
    for service, url in service_databases(args).items():
        if not url:
            problems.append(f"{service}: no database (give --database {service}=URL)")
            continue
        env = {**os.environ, "DATABASE_URL": url}
        out = subprocess.run(
            [sys.executable, "-m", service, *command], env=env, capture_output=True, text=True
        )
        if out.returncode != 0:
            problems.append(
                f"{service}: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}"
            )
            continue
        rows += [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    return rows, problems


def audit(args: argparse.Namespace) -> int:
    actor = args.clinic or args.coordinator
    if not args.patient and not actor:
        print("give --patient ID, --clinic ID or --coordinator ID", file=sys.stderr)
        return 2
    command = (
        ["audit"]
        + (["--patient", args.patient] if args.patient else [])
        + (["--actor", actor] if actor else [])
    )
    rows, problems = _each_service(args, command)
    if args.coordinator:
        rows = [r for r in rows if r["actor_kind"] == "coordinator"]
    elif args.clinic:
        rows = [r for r in rows if r["actor_kind"] == "clinic"]
    rows.sort(key=lambda r: (r["at"], r["id"]), reverse=True)
    if args.json:
        for r in rows:
            print(json.dumps(r))
    else:
        print(
            table(
                render_audit(rows), ["when", "service", "who", "id", "patient", "method", "route", "status"]
            )
            if rows
            else "no accesses recorded"
        )
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


def outbox(args: argparse.Namespace) -> int:
    rows, problems = _each_service(args, ["outbox"])
    body = [
        [r["service"], r["position"], r["event_id"], r["type"], r["set_aside_at"], r["last_error"]]
        for r in rows
    ]
    print(
        table(body, ["service", "position", "event id", "type", "set aside", "why"])
        if body
        else "no outbox rows set aside"
    )
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


HELP = {
    "bus": """As the ops user: declare every stream of care_shared.topology (the event streams,
REFERRAL_TASKS and the dead letters) and create every durable consumer (the services', and
`tasks-<id>` for each receiving clinic given by --clinic or CARE_CLINIC_IDS), updating what
differs. Services declare only their own stream and never create a consumer, so run this after
an upgrade that changes a stream or a durable, and after adding a clinic. `make run`, the test fixtures and the deploy jobs run it before the services start.""",
    "streams": """Each JetStream stream: how many messages and bytes it holds, how many consumers
read it, and the publish rate measured between two samples --interval seconds apart.
INTAKE, PATHWAY, REFERRAL and NOTIFY hold each service's events; DLQ holds dead letters;
REFERRAL_TASKS is the per-clinic work queue.""",
    "consumers": """Each durable consumer, sampled twice --interval seconds apart:
  lag            messages in its stream not yet delivered to it (work waiting)
  ack pending    delivered but not yet acknowledged (in flight; a number that stays up
                 means a handler is stuck or its service is down)
  redelivered    messages delivered more than once (failures retried, or acks lost)
  ack rate       messages acknowledged per second between the two samples
  acked through  the stream sequence up to which everything is acknowledged
A growing lag with an ack rate of 0 means the consuming service is not keeping up or is down.""",
    "dlq": """Dead letters: messages a consumer could never process (malformed JSON, an unknown
type, a newer schema version, a handler's verdict, or no answer after its last delivery).
`dlq list` shows each with its consumer, original subject, deliveries and reason.
`dlq replay <seq|all>` puts them back on their original subject after a fix and deletes
them from the DLQ. Every consumer of that subject sees the message again; those that
already handled the event skip it by its event id (their inbox), so only the one that
failed acts on it.""",
    "rebuild": """Replay a service's events into a fresh, throw-away projection and compare it with
the live one, with a progress bar. pathway refolds intake's stream from JetStream; referral
and notify refold their own event stores. Nothing live is changed. Exit code 0 when
identical, 1 with the differing ids listed when not.""",
    "trace": """Show one trace from the local span store (var/traces, written by `make run`) as a
tree: each span with its service, kind, name and duration, children indented under their
parent. Database spans are hidden unless --db (their children move up to the nearest shown
span). --last picks the newest clinic request that travelled through the bus.""",
    "clinic": """Partner clinics' API keys, through intake's database (--database-url, else
DATABASE_URL, else var/run.json). `clinic add --name N` registers a clinic and prints its
key once: store it then, only its hash is kept. `clinic rotate-key` reads the current key
from $CLINIC_KEY (never the command line, so it stays out of shell history), prints the
new key once, and the old key stops working in every service.""",
    "coordinator": """Referral coordinators' keys, through referral's database (--database-url, else
DATABASE_URL, else var/run.json). `coordinator add --name N` prints the new key once;
`coordinator rotate-key` reads the current key from $COORDINATOR_KEY and prints the new one
once; the old key stops working at once. `coordinator revoke --coordinator-id ID` revokes the
coordinator's key without it (someone left, a key leaked): a 401 from the next request on.""",
    "audit": """The access audit (HIPAA 164.312(b)): every request that read or changed a patient's
data, from every service's own append-only audit table, newest first: when, which service,
who (clinic or coordinator, by id: never a key), which patient, the route, the status. Nothing
from the request's body or query. Each service's database comes from --database SERVICE=URL,
else <SERVICE>_DATABASE_URL, else var/run.json. A refused request (401) names no one and is
not listed; another clinic's attempt on a patient (404) is, under that clinic's id.""",
    "outbox": """Outbox rows set aside: events stored that can never become a message (their
envelope or subject cannot be built). The relay skips them, so they never block the events
behind them; each is listed with the reason (the error, and the fields at fault, never their
values). The metric care_outbox_set_aside counts them per service.""",
}


def _sub(sub, name: str, help_: str):
    return sub.add_parser(
        name, help=help_, description=HELP[name], formatter_class=argparse.RawDescriptionHelpFormatter
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="carectl", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nats", help="NATS URL (default: NATS_URL, then var/run.json)")
    parser.add_argument(
        "--creds", help="the ops user's nkey seed file (default: NATS_NKEY_FILE, then var/run.json)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = _sub(sub, "bus", "the bus's topology: declare every stream")
    bsub = p.add_subparsers(dest="bus_command", required=True)
    e = bsub.add_parser("ensure", help="declare every stream (and bring an existing one up to date)")
    e.add_argument("--replicas", type=int, default=int(os.environ.get("NATS_STREAM_REPLICAS", "1")))
    e.add_argument(
        "--clinic",
        action="append",
        default=[],
        help="a receiving clinic's id, for its task durable (also CARE_CLINIC_IDS)",
    )
    p.set_defaults(run=lambda a: asyncio.run(bus(a)))
    p = _sub(sub, "streams", "JetStream streams: messages, bytes, publish rate")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between the two samples of the rate")
    p.set_defaults(run=lambda a: asyncio.run(streams(a)))
    p = _sub(sub, "consumers", "durable consumers: lag, pending acks, redeliveries, ack rate")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between the two samples of the rate")
    p.set_defaults(run=lambda a: asyncio.run(consumers(a)))
    p = _sub(sub, "dlq", "dead letters: list them, or replay after a fix")
    dsub = p.add_subparsers(dest="dlq_command", required=True)
    dsub.add_parser("list", help="every dead letter with its consumer and reason")
    r = dsub.add_parser("replay", help="republish a dead letter (by its dlq seq) or all of them")
    r.add_argument("which", help="a dlq sequence number from `dlq list`, or all")
    p.set_defaults(run=lambda a: asyncio.run(dlq(a)))
    p = _sub(sub, "rebuild", "replay events into a fresh projection and compare with the live one")
    p.add_argument("service", choices=["pathway", "referral", "notify"], help="whose projection to rebuild")
    p.add_argument("--database-url", help="the service's database (default: DATABASE_URL, then var/run.json)")
    p.set_defaults(run=rebuild)
    p = _sub(sub, "trace", "a trace as a tree with timings, from the local trace store")
    p.add_argument("trace_id", nargs="?", help="a trace id (32 hex digits), as in a log line's trace_id")
    p.add_argument("--last", action="store_true", help="the newest clinic request's trace")
    p.add_argument("--db", action="store_true", help="include database spans")
    p.add_argument("--dir", help="trace directory (default var/traces)")
    p.set_defaults(run=trace)
    p = _sub(sub, "clinic", "partner clinics")
    csub = p.add_subparsers(dest="clinic_command", required=True)
    a = csub.add_parser("add", help="register a clinic; its API key is printed once")
    a.add_argument("--name", required=True)
    a.add_argument("--database-url", help="intake's database (default: DATABASE_URL, then var/run.json)")
    k = csub.add_parser("rotate-key", help="replace the key in $CLINIC_KEY; the new key is printed once")
    k.add_argument("--database-url", help="intake's database (default: DATABASE_URL, then var/run.json)")
    v = csub.add_parser("revoke", help="revoke a clinic's keys by its id, in every service (no key needed)")
    v.add_argument("--clinic-id", required=True)
    v.add_argument("--database-url", help="intake's database (default: DATABASE_URL, then var/run.json)")
    p.set_defaults(run=clinic)
    p = _sub(sub, "coordinator", "referral coordinators")
    rsub = p.add_subparsers(dest="coordinator_command", required=True)
    a = rsub.add_parser("add", help="register a coordinator; the key is printed once")
    a.add_argument("--name", required=True)
    a.add_argument("--database-url", help="referral's database (default: DATABASE_URL, then var/run.json)")
    k = rsub.add_parser("rotate-key", help="replace the key in $COORDINATOR_KEY; the new key is printed once")
    k.add_argument("--database-url", help="referral's database (default: DATABASE_URL, then var/run.json)")
    v = rsub.add_parser("revoke", help="revoke a coordinator's key by the coordinator's id (no key needed)")
    v.add_argument("--coordinator-id", required=True)
    v.add_argument("--database-url", help="referral's database (default: DATABASE_URL, then var/run.json)")
    p.set_defaults(run=coordinator)
    p = _sub(sub, "audit", "who read or changed a patient's data, across the services")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--clinic", help="a clinic's id: what it read or changed")
    who.add_argument("--coordinator", help="a coordinator's id: what they read or changed")
    p.add_argument("--patient", help="a patient's id: who read or changed their data")
    p.add_argument(
        "--database", action="append", metavar="SERVICE=URL", help="a service's database (repeatable)"
    )
    p.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    p.set_defaults(run=audit)
    p = _sub(sub, "outbox", "outbox rows set aside as unpublishable, with why")
    p.add_argument(
        "--database", action="append", metavar="SERVICE=URL", help="a service's database (repeatable)"
    )
    p.set_defaults(run=outbox)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
