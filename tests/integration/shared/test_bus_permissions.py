"""The bus's permission matrix on a real nats-server started with the generated configuration:
each credential does what its service needs and nothing else (DESIGN.md 5b)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from care_shared.nats_auth import OPS, clinic_user, permission_table
from care_shared.testing.nats_server import NatsServer
from care_shared.topology import (
    DURABLES,
    EVENT_STREAMS,
    SERVICES,
    TASK_STREAM,
    clinic_task_durable,
    task_stream_config,
)

pytestmark = pytest.mark.e2e


class Refusals:
    """What the server said no to: refusals are quiet for the caller (a timeout), loud here."""

    def __init__(self) -> None:
        self.errors: list[str] = []

        async def record(exc: Exception) -> None:  # nats-py takes only a coroutine function
            self.errors.append(str(exc).lower())

        self.callback = record

    def said(self, fragment: str) -> bool:
        return any(fragment.lower() in e for e in self.errors)


async def as_user(server: NatsServer, user: str) -> tuple[nats.NATS, Refusals]:
    refusals = Refusals()
    nc = await server.connect(user, error_cb=refusals.callback)
    return nc, refusals


async def refused(call) -> bool:
    try:
        await call
    except (TimeoutError, nats.errors.TimeoutError, nats.js.errors.APIError, nats.errors.NoRespondersError):
        return True
    return False


@pytest.fixture
def bus(own_nats: NatsServer) -> NatsServer:
    own_nats.add_clinics("clinic-a", "clinic-b")
    return own_nats


async def test_anonymous_connections_are_refused(bus: NatsServer) -> None:
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await nats.connect(bus.url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2)


async def test_a_seed_the_server_does_not_know_is_refused(bus: NatsServer, tmp_path) -> None:
    import os

    import nkeys

    stranger = tmp_path / "stranger.nk"
    stranger.write_bytes(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER))
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await nats.connect(
            bus.url,
            nkeys_seed=str(stranger),
            allow_reconnect=False,
            max_reconnect_attempts=0,
            connect_timeout=2,
        )


@pytest.mark.parametrize("service", SERVICES)
async def test_a_service_publishes_only_its_own_subjects(bus: NatsServer, service: str) -> None:
    nc, refusals = await as_user(bus, service)
    js = nc.jetstream(timeout=0.5)  # a refusal is a timeout: keep it short
    try:
        ack = await js.publish(f"{service}.probe-happened.{uuid.uuid4()}", b"{}", timeout=2)
        assert ack.seq > 0
        others = [f"{other}.probe-happened.{uuid.uuid4()}" for other in SERVICES if other != service]
        # Another service's dead letters, and the task queue's subjects, are not its own either.
        subjects = [*others, "dlq.someone-else", "tasks.clinic-a"]
        # A refusal is a quiet timeout: wait for all of them at once, not one after another.
        outcomes = await asyncio.gather(
            *(refused(js.publish(subject, b"{}", timeout=1)) for subject in subjects)
        )
        assert all(outcomes), dict(zip(subjects, outcomes, strict=True))
        for subject in others:
            assert refusals.said(f'publish to "{subject}"'), subject
    finally:
        await nc.close()


@pytest.mark.parametrize("service", SERVICES)
async def test_a_service_may_not_update_delete_or_purge_a_stream(bus: NatsServer, service: str) -> None:
    nc, refusals = await as_user(bus, service)
    js = nc.jetstream(timeout=0.5)  # a refusal is a timeout: keep it short
    try:
        calls = {}
        for stream in EVENT_STREAMS:
            calls[f"delete {stream}"] = js.delete_stream(stream)
            calls[f"purge {stream}"] = js.purge_stream(stream)
            calls[f"update {stream}"] = js.update_stream(StreamConfig(name=stream, subjects=["x.>"]))
        outcomes = await asyncio.gather(
            *(refused(call) for call in calls.values())
        )  # quiet timeouts, at once
        assert all(outcomes), dict(zip(calls, outcomes, strict=True))
        assert refusals.said("$js.api.stream.delete") and refusals.said("$js.api.stream.purge")
    finally:
        await nc.close()
    # Nothing changed: ops still sees every stream as it was.
    ops = await bus.connect()
    try:
        for stream, subject in EVENT_STREAMS.items():
            info = await ops.jetstream().stream_info(stream)
            assert info.config.subjects == [subject] and info.config.deny_delete
    finally:
        await ops.close()


@pytest.mark.parametrize("durable", DURABLES, ids=lambda d: d.name)
async def test_each_service_fetches_and_acks_on_its_own_durables_only(bus: NatsServer, durable) -> None:
    patient = str(uuid.uuid4())
    producer = durable.filter_subject.split(".")[0]
    ops = await bus.connect()
    await ops.jetstream().publish(f"{producer}.probe-happened.{patient}", b"{}", timeout=2)
    nc, _ = await as_user(bus, durable.service)
    js = nc.jetstream(timeout=0.5)  # a refusal is a timeout: keep it short
    try:
        config = ConsumerConfig(
            durable_name=durable.name, ack_policy=AckPolicy.EXPLICIT, filter_subject=durable.filter_subject
        )
        sub = await js.pull_subscribe(
            durable.filter_subject, durable=durable.name, stream=durable.stream, config=config
        )
        got = []
        while not any(m.subject.endswith(patient) for m in got):
            batch = await sub.fetch(100, timeout=3)
            for m in batch:
                await m.ack_sync(timeout=2)  # the ack itself is permitted: it is answered
            got += batch
        # Someone else's durable on the same stream: neither created nor pulled.
        others = [d for d in DURABLES if d.stream == durable.stream and d.service != durable.service]
        for other in others:
            cfg = ConsumerConfig(
                durable_name=other.name, ack_policy=AckPolicy.EXPLICIT, filter_subject=other.filter_subject
            )
            assert await refused(
                js.pull_subscribe(other.filter_subject, durable=other.name, stream=other.stream, config=cfg)
            )
        # An ephemeral consumer (reading the whole stream its own way) is ops' alone, and so is
        # creating or changing a durable: not even its own may become a push consumer copying
        # the stream onto another subject, or take another filter.
        assert await refused(js.pull_subscribe(durable.filter_subject, durable=None, stream=durable.stream))
        push = ConsumerConfig(
            durable_name=durable.name,
            name=durable.name,
            deliver_subject=f"{durable.service}.evil-happened.x",
            filter_subject=durable.filter_subject,
        )
        assert await refused(js.add_consumer(durable.stream, push))
        narrower = ConsumerConfig(
            durable_name=durable.name,
            name=durable.name,
            ack_policy=AckPolicy.EXPLICIT,
            filter_subject=f"{producer}.clinic-registered.*",
        )
        assert await refused(js.add_consumer(durable.stream, narrower))
        info = await ops.jetstream().consumer_info(durable.stream, durable.name)
        assert info.config.deliver_subject is None and info.config.filter_subject == durable.filter_subject
    finally:
        await nc.close()
        await ops.close()


async def test_a_clinic_pulls_its_own_tasks_and_never_another_clinics(bus: NatsServer) -> None:
    ops = await bus.connect()
    js = ops.jetstream()
    await js.add_stream(task_stream_config())  # present already: an identical declaration
    # Tasks reach the work queue from REFERRAL's task-dispatched events.
    for clinic in ("clinic-a", "clinic-b"):
        await js.publish(
            f"referral.task-dispatched.{clinic}", json.dumps({"for": clinic}).encode(), timeout=2
        )
    nc, refusals = await as_user(bus, clinic_user("clinic-a"))
    mine = nc.jetstream(timeout=0.5)
    try:

        def config(clinic: str) -> ConsumerConfig:
            return ConsumerConfig(
                durable_name=clinic_task_durable(clinic),
                ack_policy=AckPolicy.EXPLICIT,
                filter_subject=f"tasks.{clinic}",
            )

        sub = await mine.pull_subscribe(
            "tasks.clinic-a",
            durable=clinic_task_durable("clinic-a"),
            stream=TASK_STREAM,
            config=config("clinic-a"),
        )
        [task] = await sub.fetch(1, timeout=5)
        assert json.loads(task.data) == {"for": "clinic-a"}
        await task.ack_sync(timeout=2)
        # Clinic B's queue: not its durable, not its filter, not even under its own durable name.
        assert await refused(
            mine.pull_subscribe(
                "tasks.clinic-b",
                durable=clinic_task_durable("clinic-b"),
                stream=TASK_STREAM,
                config=config("clinic-b"),
            )
        )
        wrong_filter = ConsumerConfig(
            durable_name=clinic_task_durable("clinic-a") + "x",
            ack_policy=AckPolicy.EXPLICIT,
            filter_subject="tasks.clinic-b",
        )
        assert await refused(
            mine.pull_subscribe(
                "tasks.clinic-b", durable=wrong_filter.durable_name, stream=TASK_STREAM, config=wrong_filter
            )
        )
        assert await refused(mine.publish("referral.task-dispatched.clinic-a", b"{}", timeout=1))
        assert refusals.said("permissions violation")
    finally:
        await nc.close()
    # B's task is still there for B.
    info = await js.stream_info(TASK_STREAM)
    assert info.state.messages == 1
    await ops.close()


async def test_a_user_reads_replies_only_on_its_own_inbox(bus: NatsServer) -> None:
    nc, refusals = await as_user(bus, "pathway")
    try:
        sub = await nc.subscribe("_INBOX.>")  # the shared inbox: where other users' replies go
        await nc.flush()
        ops = await bus.connect()
        await ops.publish("_INBOX.someone.reply", b"secret")
        await ops.flush()
        with pytest.raises((TimeoutError, nats.errors.TimeoutError)):
            await sub.next_msg(timeout=0.5)
        assert refusals.said('subscription to "_inbox.>"')
        await ops.close()
    finally:
        await nc.close()


def test_carectl_works_as_ops_and_not_without_credentials(bus: NatsServer) -> None:
    base = [sys.executable, "-m", "care_shared.ops.carectl", "--nats", bus.url]
    env = {"PATH": "/usr/bin:/bin", "CARE_VAR_DIR": "/nonexistent"}
    ok = subprocess.run(
        [*base, "--creds", str(bus.seed_file(OPS)), "streams", "--interval", "0.1"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert ok.returncode == 0 and "INTAKE" in ok.stdout, ok.stderr
    for command in (["consumers", "--interval", "0.1"], ["dlq", "list"]):
        ran = subprocess.run(
            [*base, "--creds", str(bus.seed_file(OPS)), *command],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert ran.returncode == 0, ran.stderr
    anonymous = subprocess.run([*base, "streams"], capture_output=True, text=True, timeout=60, env=env)
    assert anonymous.returncode != 0 and "Authorization Violation" in anonymous.stderr
    as_service = subprocess.run(
        [*base, "--creds", str(bus.seed_file("pathway")), "bus", "ensure"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert as_service.returncode != 0  # a service's key cannot administer streams


def test_the_generated_configuration_matches_the_table(bus: NatsServer) -> None:
    conf = bus.credentials.auth_conf.read_text()
    assert "no_auth_user" not in conf and "password" not in conf
    for p in permission_table(["clinic-a", "clinic-b"]):
        assert bus.credentials.public_keys[p.user] in conf
        assert (bus.credentials.seed_file(p.user).stat().st_mode & 0o777) == 0o600
    assert (bus.credentials.directory.stat().st_mode & 0o777) == 0o700


async def test_dlq_replay_republishes_only_what_the_source_stream_holds(bus: NatsServer) -> None:
    """Any service may dead-letter (publish its own dlq.<durable>), so the dead letter's bytes
    and headers are the attacker's: replayed as ops, they would land anywhere. Replay reads the
    message back from the consumer's own stream and refuses what the stream does not hold."""
    import asyncio

    ops = await bus.connect()
    real = await ops.jetstream().publish("intake.probe-happened.p1", b'{"real": true}', timeout=2)
    before = (await ops.jetstream().stream_info("INTAKE")).state.messages
    nc, _ = await as_user(bus, "pathway")
    forged = {
        # A forged clinic key dressed as intake's, "dead-lettered" at a real message's sequence.
        "forged body": ("intake.clinic-registered.clinic-a", b'{"forged": true}', real.seq),
        # A dead letter naming ops' own API as its original subject.
        "api subject": ("$JS.API.STREAM.DELETE.NOTIFY", b"{}", real.seq),
    }
    for subject, body, seq in forged.values():
        headers = {
            "Care-Dlq-Consumer": "pathway-intake",
            "Care-Dlq-Original-Subject": subject,
            "Care-Dlq-Stream-Sequence": str(seq),
            "Care-Dlq-Reason": "x",
        }
        await nc.jetstream(timeout=2).publish("dlq.pathway-intake", body, headers=headers)
    await nc.close()
    base = [
        sys.executable,
        "-m",
        "care_shared.ops.carectl",
        "--nats",
        bus.url,
        "--creds",
        str(bus.seed_file(OPS)),
    ]
    replay = await asyncio.to_thread(
        subprocess.run, [*base, "dlq", "replay", "all"], capture_output=True, text=True, timeout=60
    )
    assert replay.returncode == 1 and replay.stderr.count("not replayed") == 2, replay.stderr
    js = ops.jetstream()
    assert (await js.stream_info("INTAKE")).state.messages == before  # nothing planted
    assert (await js.stream_info("NOTIFY")).config.name == "NOTIFY"  # and nothing deleted
    await ops.close()
