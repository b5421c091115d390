"""Every JetStream stream the services declare is replicated as NATS_STREAM_REPLICAS says: one
left at R1 on a three-node cluster would lose its messages with the node that holds them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from nats.js.api import StreamConfig
from nats.js.manager import JetStreamManager

from care_shared.db import sqlite_url_for
from care_shared.testing.nats_server import NatsServer
from care_shared.topology import DLQ_STREAM, EVENT_STREAMS, stream_configs
from referral.bootstrap import create_app, make_runtime
from referral.settings import ReferralSettings
from referral.work_queue import TASK_STREAM, task_stream_config


def test_the_stream_configurations_carry_the_replica_count() -> None:
    configs = [*stream_configs(3), task_stream_config(3)]
    assert {c.name: c.num_replicas for c in configs} == {
        name: 3 for name in [*EVENT_STREAMS, DLQ_STREAM, TASK_STREAM]
    }


def recording_declarations(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    declared: dict[str, int] = {}
    add_stream = JetStreamManager.add_stream

    async def recording_add_stream(self: JetStreamManager, config: StreamConfig, **params):
        declared[config.name] = config.num_replicas
        # A single test server cannot hold R3: what is checked is what was asked for.
        return await add_stream(self, replace(config, num_replicas=1), **params)

    monkeypatch.setattr(JetStreamManager, "add_stream", recording_add_stream)
    return declared


def test_ops_declares_every_stream_with_the_configured_replicas(
    own_nats: NatsServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from care_shared.ops import carectl

    declared = recording_declarations(monkeypatch)
    seed = str(own_nats.seed_file("ops"))
    assert carectl.main(["--nats", own_nats.url, "--creds", seed, "bus", "ensure", "--replicas", "3"]) == 0
    assert declared == {name: 3 for name in [*EVENT_STREAMS, DLQ_STREAM, TASK_STREAM]}


async def test_referral_declares_only_its_own_streams_with_the_configured_replicas(
    own_nats: NatsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    declared = recording_declarations(monkeypatch)
    settings = ReferralSettings(
        database_url=sqlite_url_for(tmp_path / "referral.db"),
        **own_nats.settings("referral"),
        nats_stream_replicas=3,
    )
    app = create_app(make_runtime(settings))
    async with app.router.lifespan_context(app):
        pass
    assert declared == {"REFERRAL": 3, TASK_STREAM: 3}
