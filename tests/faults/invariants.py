"""What must hold after the faults, measured at the servers themselves: intake's store,
JetStream's streams and dead letters, pathway's live projection against a rebuild, referral's
referrals and tasks, and what the SMTP server and the SMS gateway received."""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import nats
import nats.js.errors
import sqlalchemy as sa
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from care_shared.consumer import DLQ_CONSUMER, DLQ_REASON, DLQ_STREAM_SEQ, DLQ_SUBJECT
from care_shared.db import Database
from care_shared.envelope import parse_envelope, to_envelope
from care_shared.eventstore import events, outbox
from care_shared.testing.nats_server import NatsServer
from notify.tables import reminders
from pathway.rebuild import live_assessments, project
from referral.domain import need_of
from tests.faults.network import FaultNetwork

CLINIC_EVENT_TYPES = {"care.intake.clinic-registered.v1", "care.intake.clinic-key-rotated.v1"}
STREAMS = {"INTAKE": "intake.>", "PATHWAY": "pathway.>", "REFERRAL": "referral.>", "NOTIFY": "notify.>"}


@dataclass(frozen=True)
class StreamMessage:
    seq: int
    subject: str
    data: bytes
    headers: dict[str, str]

    @property
    def event_id(self) -> str | None:
        try:
            return json.loads(self.data).get("id")
        except (ValueError, AttributeError):
            return None


async def read_work_queue(server: NatsServer) -> list[StreamMessage]:
    """REFERRAL_TASKS by direct get, sequence by sequence: a work-queue stream allows no
    second consumer, and nothing must be taken out of it."""
    nc = await server.connect()
    try:
        js = nc.jetstream()
        state = (await js.stream_info("REFERRAL_TASKS")).state
        found = []
        for seq in range(state.first_seq, state.last_seq + 1) if state.messages else ():
            try:
                m = await js.get_msg("REFERRAL_TASKS", seq)
            except nats.js.errors.NotFoundError:
                continue
            found.append(StreamMessage(seq, m.subject, m.data or b"", dict(m.headers or {})))
        return found
    finally:
        await nc.close()


async def read_stream(server: NatsServer, stream: str, subject: str) -> list[StreamMessage]:
    """Every message of the stream up to its last sequence now (an ephemeral consumer)."""
    nc = await server.connect()
    try:
        js = nc.jetstream()
        last = (await js.stream_info(stream)).state.last_seq
        found: list[StreamMessage] = []
        if not last:
            return found
        sub = await js.pull_subscribe(
            subject,
            durable=None,
            stream=stream,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE),
        )
        seq = 0
        while seq < last:
            for m in await sub.fetch(500, timeout=5):
                seq = m.metadata.sequence.stream
                found.append(StreamMessage(seq, m.subject, m.data, dict(m.headers or {})))
        await sub.unsubscribe()
        return found
    finally:
        await nc.close()


async def consumer_backlog(server: NatsServer) -> dict[str, tuple[int, int]]:
    """(pending, ack pending) of every durable consumer on the event streams."""
    nc = await server.connect()
    try:
        js = nc.jetstream()
        backlog = {}
        for stream in STREAMS:
            for info in await js.consumers_info(stream):
                if info.config.durable_name:
                    backlog[info.name] = (info.num_pending or 0, info.num_ack_pending or 0)
        return backlog
    finally:
        await nc.close()


async def count_rows(url: str, table: sa.Table, *where) -> int:
    db = Database(url)
    try:
        async with db.read() as s:
            return (await s.execute(sa.select(sa.func.count()).select_from(table).where(*where))).scalar_one()
    finally:
        await db.dispose()


async def outbox_backlogs(net: FaultNetwork) -> dict[str, int]:
    return {name: await count_rows(url, outbox) for name, url in net.db_urls.items()}


async def due_unsent(net: FaultNetwork) -> int:
    now = net.now()
    return await count_rows(
        net.db_urls["notify"], reminders, reminders.c.status == "scheduled", reminders.c.deliver_at <= now
    )


@dataclass
class Quiet:
    reached: bool
    waited_s: float
    last: dict


async def quiesce(net: FaultNetwork, timeout: float) -> Quiet:
    """Wait (with a deadline) until every outbox is empty, every durable consumer has nothing
    pending or unacknowledged, and notify has no due reminder left unsent."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    last: dict = {}
    expected_durables = {
        "pathway-intake",
        "referral-access",
        "referral-pathway",
        "notify-intake",
        "notify-pathway",
        "notify-referral",
    }
    while True:
        try:
            last = {
                "outbox": await outbox_backlogs(net),
                "consumers": await consumer_backlog(net.nats),
                "due_unsent_reminders": await due_unsent(net),
            }
            quiet = (
                not any(last["outbox"].values())
                and expected_durables <= set(last["consumers"])
                and not any(p or a for p, a in last["consumers"].values())
                and last["due_unsent_reminders"] == 0
            )
            if quiet:
                # Twice in a row, a second apart: a message in backoff shows as ack-pending
                # but a new commit between two looks would not.
                await asyncio.sleep(1.0)
                again = await outbox_backlogs(net), await consumer_backlog(net.nats)
                if not any(again[0].values()) and not any(p or a for p, a in again[1].values()):
                    return Quiet(True, round(loop.time() - began, 1), last)
        except Exception as exc:
            last = {**last, "error": repr(exc)}
        if loop.time() - began > timeout:
            return Quiet(False, round(loop.time() - began, 1), last)
        await asyncio.sleep(0.5)


async def store_events(url: str) -> list:
    db = Database(url)
    try:
        async with db.read() as s:
            return list((await s.execute(sa.select(events).order_by(events.c.position))).all())
    finally:
        await db.dispose()


# --- the invariants -----------------------------------------------------------------------


@dataclass
class Check:
    name: str
    counts: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    skipped: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def accepted_posts_in_store(accepted_event_ids: dict[str, str], intake_rows: list) -> Check:
    """Every accepted POST's event is in intake's store, once; nothing else is (a retried POST
    that stored a second event would show here as an event no answer names)."""
    c = Check("accepted POSTs are in intake's store exactly once")
    stored = [r.event_id for r in intake_rows if r.type not in CLINIC_EVENT_TYPES]
    counts = Counter(stored)
    answered = set(accepted_event_ids)
    c.counts = {"accepted_posts": len(answered), "stored_patient_events": len(stored)}
    missing = answered - counts.keys()
    extra = counts.keys() - answered
    doubled = [e for e, n in counts.items() if n > 1]
    c.counts.update(lost=len(missing), unexplained=len(extra), duplicated=len(doubled))
    if missing:
        c.problems.append(
            f"{len(missing)} accepted POSTs have no event in intake's store, e.g. {sorted(missing)[:3]}"
        )
    if extra:
        sample = [(r.event_id, r.type, r.stream_id) for r in intake_rows if r.event_id in extra][:5]
        c.problems.append(
            f"{len(extra)} events in intake's store that no accepted POST answered with (doubled by a retry?): {sample}"
        )
    if doubled:
        c.problems.append(f"{len(doubled)} event ids stored more than once: {doubled[:3]}")
    return c


def stream_matches_store(
    stream_name: str, store_rows: list, messages: list[StreamMessage], poison_seqs: set[int]
) -> Check:
    """Each stored event is in the service's stream exactly once, and the stream holds nothing
    else but the poison messages the suite injected."""
    c = Check(f"{stream_name}: every stored event in JetStream exactly once")
    stored = {r.event_id for r in store_rows if _published(r)}
    real = [m for m in messages if m.seq not in poison_seqs]
    ids = Counter(m.event_id for m in real)
    doubled = {e: n for e, n in ids.items() if n > 1}
    missing = stored - ids.keys()
    extra = ids.keys() - stored
    c.counts = {
        "stored": len(stored),
        "stream_messages": len(messages),
        "poison": len(messages) - len(real),
        "lost": len(missing),
        "duplicated": sum(n - 1 for n in doubled.values()),
        "unknown": len(extra),
    }
    if missing:
        c.problems.append(
            f"{len(missing)} stored events never reached {stream_name}, e.g. {sorted(missing)[:3]}"
        )
    if doubled:
        c.problems.append(
            f"{len(doubled)} events in {stream_name} more than once (dedupe window missed them): {list(doubled.items())[:3]}"
        )
    if extra:
        c.problems.append(
            f"{len(extra)} messages in {stream_name} with ids not in the store: {sorted(map(str, extra))[:3]}"
        )
    return c


def _published(row) -> bool:
    # Events appended with publish=False (referral's coordinator keys) never go to NATS.
    return not row.type.startswith("care.referral.coordinator-")


async def pathway_matches_rebuild(net: FaultNetwork, intake_rows: list) -> Check:
    """pathway's live assessments equal a fresh projection of intake's events: once replayed
    from JetStream by `python -m pathway rebuild`, once straight from intake's store."""
    c = Check("pathway's assessments equal a rebuild from intake's events")
    env = {**net.services["pathway"].env_for_cli(), **net.nats.env("ops")}  # an operator's replay
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pathway",
        "rebuild",
        env=env,
        cwd=net.workdir,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    try:
        report = json.loads(out.decode())
    except ValueError:
        report = {"unparsable": out.decode()[-500:], "stderr": err.decode()[-500:]}
    c.counts["cli_exit"] = proc.returncode
    c.counts["cli_report"] = {k: v if not isinstance(v, list) else len(v) for k, v in report.items()}
    if proc.returncode != 0 or not report.get("identical_to_live"):
        c.problems.append(
            f"`python -m pathway rebuild` exited {proc.returncode}: {json.dumps(report)[:1500]}"
        )

    envelopes = [
        parse_envelope(
            to_envelope(
                event_id=r.event_id,
                source="/intake",
                type=r.type,
                subject=r.subject,
                time=r.recorded_at if r.recorded_at.tzinfo else r.recorded_at.replace(tzinfo=UTC),
                data=r.data,
                sequence=r.version,
                traceparent=None,
                clinicid=r.meta.get("clinicid"),
            )
            .model_dump_json(exclude_none=True)
            .encode()
        )
        for r in intake_rows
    ]
    rebuilt = project(envelopes)
    db = Database(net.db_urls["pathway"])
    try:
        live = await live_assessments(db)
    finally:
        await db.dispose()
    different = [p for p in rebuilt if p in live and live[p] != rebuilt[p]]
    missing = sorted(set(rebuilt) - set(live))
    only_live = sorted(set(live) - set(rebuilt))
    c.counts.update(
        patients_rebuilt_from_store=len(rebuilt),
        live=len(live),
        different=len(different),
        missing_in_live=len(missing),
    )
    if different or missing or only_live:
        c.problems.append(
            f"projection of intake's store vs live: {len(different)} different {different[:3]}, "
            f"{len(missing)} missing in live {missing[:3]}, {len(only_live)} only in live {only_live[:3]}"
        )
    return c


async def referrals_one_per_need(
    net: FaultNetwork, clinics, pathway_rows: list, referral_rows: list, referral_stream: list[StreamMessage]
) -> Check:
    c = Check("referral: exactly one referral and one task per need")
    async with httpx.AsyncClient(timeout=10) as http:
        spec = (await http.get(f"{net.url('referral')}/openapi.json")).json()
    if "/v1/referrals" not in spec.get("paths", {}):
        c.skipped = "referral has no GET /v1/referrals in its OpenAPI yet: referrals are not implemented, invariant not checked"
        return c
    # What pathway advised, need by need (every assessment it published, not only the last).
    advised: set[tuple[str, str]] = set()
    for r in pathway_rows:
        if r.type == "care.pathway.assessment-changed.v2":
            ref = (r.data.get("assessment") or {}).get("referral") or {}
            if ref.get("advised"):
                advised.add((r.data["patient_id"], need_of(ref.get("capabilities") or [])))
    opened = Counter(
        r.data["referral_id"] for r in referral_rows if r.type == "care.referral.referral-opened.v2"
    )
    opened_needs = Counter(
        (r.data["patient_id"], r.data["need"])
        for r in referral_rows
        if r.type == "care.referral.referral-opened.v2"
    )
    in_stream = Counter(
        json.loads(m.data)["data"]["referral_id"] for m in referral_stream if b"referral-opened" in m.data
    )
    db = Database(net.db_urls["referral"])
    try:
        async with db.read() as s:
            task_rows = (
                await s.execute(sa.text("SELECT referral_id, patient_id, need, status FROM referral_tasks"))
            ).all()
            need_rows = (
                await s.execute(sa.text("SELECT patient_id, need, referral_id FROM referral_needs"))
            ).all()
    finally:
        await db.dispose()
    tasks_per_need = Counter((t.patient_id, t.need) for t in task_rows)
    # Independent of referral's tables: what clinics would pull from the work queue.
    dispatched = Counter(json.loads(m.data)["data"]["referral_id"] for m in await read_work_queue(net.nats))
    routed = {
        json.loads(m.data)["data"]["referral_id"] for m in referral_stream if b"referral-routed" in m.data
    }
    c.counts = {
        "needs_advised_by_pathway": len(advised),
        "referrals_opened": len(opened),
        "tasks": len(task_rows),
        "task_statuses": dict(Counter(t.status for t in task_rows)),
        "tasks_in_clinic_work_queues": sum(dispatched.values()),
    }
    if not advised:
        c.problems.append("pathway advised no referral at all: this check would prove nothing")
    if [k for k, n in dispatched.items() if n > 1]:
        c.problems.append(
            f"a task dispatched to clinics more than once: {[k for k, n in dispatched.items() if n > 1][:3]}"
        )
    if set(dispatched) != routed:
        c.problems.append(
            f"routed referrals ({len(routed)}) and tasks in the clinics' work queues ({len(dispatched)}) differ: "
            f"{sorted(routed ^ set(dispatched))[:3]}"
        )
    if [k for k, n in opened.items() if n > 1] or [k for k, n in opened_needs.items() if n > 1]:
        c.problems.append(
            f"referral-opened more than once: {[k for k, n in opened.items() if n > 1][:3]} {[k for k, n in opened_needs.items() if n > 1][:3]}"
        )
    if [k for k, n in in_stream.items() if n > 1]:
        c.problems.append(
            f"referral-opened in REFERRAL stream more than once: {[k for k, n in in_stream.items() if n > 1][:3]}"
        )
    if [k for k, n in tasks_per_need.items() if n > 1]:
        c.problems.append(
            f"more than one task for a need: {[k for k, n in tasks_per_need.items() if n > 1][:3]}"
        )
    have = set(opened_needs)
    if advised - have:
        c.problems.append(
            f"{len(advised - have)} needs pathway advised have no referral, e.g. {sorted(advised - have)[:3]}"
        )
    if have - advised:
        c.problems.append(
            f"{len(have - advised)} referrals for needs pathway never advised, e.g. {sorted(have - advised)[:3]}"
        )
    if set(tasks_per_need) != have or {(n.patient_id, n.need) for n in need_rows} != have:
        c.problems.append(
            f"tasks ({len(tasks_per_need)}), referral_needs ({len(need_rows)}) and opened referrals ({len(have)}) disagree"
        )
    # The API a clinic sees: one referral per need of each of its patients.
    api_problems = []
    async with httpx.AsyncClient(timeout=10) as http:
        for clinic in clinics:
            want: Counter = Counter(p for p, _ in have if p in set(clinic.patients))
            for pid, n in list(want.items())[:60]:
                r = await http.get(
                    f"{net.url('referral')}/v1/referrals",
                    params={"patient_id": pid},
                    headers={"Authorization": f"Bearer {clinic.key}"},
                )
                got = r.json() if r.status_code == 200 else None
                if got is None or len(got) != n or len({x["need"] for x in got}) != n:
                    api_problems.append((pid, n, r.status_code, len(got) if got is not None else None))
    c.counts["api_patients_checked"] = sum(
        min(60, len({p for p, _ in have if p in set(cl.patients)})) for cl in clinics
    )
    if api_problems:
        c.problems.append(
            f"GET /v1/referrals disagrees with the store for {len(api_problems)} patients: {api_problems[:3]}"
        )
    return c


async def reminders_delivered_once(
    net: FaultNetwork, clinics, notify_rows: list, notify_stream: list[StreamMessage]
) -> Check:
    c = Check("every due reminder delivered exactly once (SMTP and SMS gateway)")
    now = net.now()
    db = Database(net.db_urls["notify"])
    try:
        async with db.read() as s:
            rows = (await s.execute(sa.select(reminders))).all()
    finally:
        await db.dispose()
    contacts = {p: ch for cl in clinics for p, ch in cl.contacts.items()}

    def utc(d: datetime) -> datetime:
        return d if d.tzinfo else d.replace(tzinfo=UTC)

    sent = [r for r in rows if r.status == "sent"]
    due_not_sent = [r for r in rows if r.status == "scheduled" and utc(r.deliver_at) <= now]
    failed = [r for r in rows if r.status == "failed"]
    sent_email = {r.reminder_id for r in sent if r.channel == "email"}
    sent_sms = {r.reminder_id for r in sent if r.channel == "sms"}
    box = net.mailbox
    mail_ids = {mid.strip("<>").split("@", 1)[0] for mid in box.messages}
    sent_events = Counter(r.stream_id for r in notify_rows if r.type == "care.notify.reminder-sent.v1")
    stream_sent = Counter(
        json.loads(m.data)["data"].get("reminder_id") for m in notify_stream if b"reminder-sent" in m.data
    )
    c.counts = {
        "patients_with_contact": len(contacts),
        "reminders": len(rows),
        "statuses": dict(Counter(r.status for r in rows)),
        "sent_email": len(sent_email),
        "sent_sms": len(sent_sms),
        "smtp_unique_message_ids": len(box.messages),
        "smtp_submissions": len(box.submissions),
        "smtp_resends_same_message_id": len(box.submissions) - len(box.messages),
        "sms_gateway_posts": net.gateway.requests,
        "sms_gateway_distinct_keys": len(net.gateway.sms),
        "due_not_sent": len(due_not_sent),
        "failed": len(failed),
    }
    if due_not_sent:
        c.problems.append(
            f"{len(due_not_sent)} reminders due (deliver_at <= {now.isoformat()}) still scheduled: {[r.reminder_id for r in due_not_sent][:3]}"
        )
    if failed:
        c.problems.append(
            f"{len(failed)} reminders failed: {[(r.reminder_id, r.last_error) for r in failed][:3]}"
        )
    if mail_ids != sent_email:
        c.problems.append(
            f"SMTP server has {len(mail_ids)} messages, notify recorded {len(sent_email)} e-mails sent: "
            f"only at SMTP {sorted(mail_ids - sent_email)[:3]}, only recorded {sorted(sent_email - mail_ids)[:3]}"
        )
    if set(net.gateway.sms) != sent_sms:
        c.problems.append(
            f"gateway has {len(net.gateway.sms)} messages, notify recorded {len(sent_sms)} SMS sent: "
            f"only at gateway {sorted(set(net.gateway.sms) - sent_sms)[:3]}, only recorded {sorted(sent_sms - set(net.gateway.sms))[:3]}"
        )
    if net.gateway.requests != len(net.gateway.sms):
        c.problems.append(
            f"gateway got {net.gateway.requests} POSTs for {len(net.gateway.sms)} distinct Idempotency-Keys (a resend)"
        )
    if [k for k, n in sent_events.items() if n > 1]:
        c.problems.append(
            f"reminder-sent stored more than once: {[k for k, n in sent_events.items() if n > 1][:3]}"
        )
    if [k for k, n in stream_sent.items() if n > 1]:
        c.problems.append(
            f"reminder-sent in NOTIFY stream more than once: {[k for k, n in stream_sent.items() if n > 1][:3]}"
        )
    if len(sent_email) + len(sent_sms) == 0:
        c.problems.append("no reminder fell due: the scenario did not exercise delivery")
    # Independent of notify's own records: every patient who gave a contact started a trial
    # the day before traffic began, and the clock ends a few hours past that trial's week 2.
    # A first review at week 2 (the traffic knows whose: not aged 18-25, no suicidality) is
    # due and goes out however late notify learnt of the patient (at most a day late is still
    # sent): each such address must have received something, at the servers themselves.
    # (A week-1 review that notify could only plan after the clock jumped to week 2 is a week
    # late, and is rightly skipped, so week-1 patients are not counted here.)
    addresses = {p: a for cl in clinics for p, a in cl.addresses.items() if p in cl.week_2_first}
    received = {str(m["To"]) for m in box.messages.values()} | {
        body.get("to") for body in net.gateway.sms.values()
    }
    unreached = sorted(p for p, a in addresses.items() if a not in received)
    c.counts["patients_expecting_a_review"] = len(addresses)
    c.counts["patients_reached"] = len(addresses) - len(unreached)
    if unreached:
        detail = {
            p: [(r.kind, r.status, str(r.deliver_at), r.channel) for r in rows if r.patient_id == p]
            for p in unreached[:3]
        }
        c.problems.append(
            f"{len(unreached)} patients with a contact and a due first review got nothing, e.g. {detail} (clock now {now})"
        )
    return c


def dead_letters_only_poison(
    dlq: list[StreamMessage], poison: dict[int, str], consumers_of_intake: int
) -> Check:
    c = Check("dead letters: only the poison messages the suite injected")
    by_reason: Counter = Counter()
    unexpected = []
    for m in dlq:
        seq = int(m.headers.get(DLQ_STREAM_SEQ, "0"))
        subject = m.headers.get(DLQ_SUBJECT, "")
        entry = (m.headers.get(DLQ_CONSUMER), subject, seq, m.headers.get(DLQ_REASON))
        if subject.startswith("intake.") and seq in poison:
            by_reason[poison[seq]] += 1
        else:
            unexpected.append(entry)
    c.counts = {
        "dlq_entries": len(dlq),
        "poison_injected": len(poison),
        "expected_entries": len(poison) * consumers_of_intake,
        "by_poison": dict(by_reason),
        "unexpected": len(unexpected),
    }
    if unexpected:
        c.problems.append(f"{len(unexpected)} dead letters the suite did not cause: {unexpected[:5]}")
    per = Counter((m.headers.get(DLQ_CONSUMER), m.headers.get(DLQ_STREAM_SEQ)) for m in dlq)
    if [k for k, n in per.items() if n > 1]:
        c.problems.append(
            f"a message dead-lettered twice by one consumer: {[k for k, n in per.items() if n > 1][:3]}"
        )
    if len(dlq) - len(unexpected) != len(poison) * consumers_of_intake:
        c.problems.append(
            f"expected each of {len(poison)} poison messages dead-lettered by each of {consumers_of_intake} consumers, got {dict(by_reason)}"
        )
    return c
