"""Four services as real processes on a nats-server of the test's own."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from care_shared.db import sqlite_url_for
from care_shared.testing.nats_server import NatsServer
from care_shared.testing.processes import ServiceProcess

SERVICES = ("intake", "pathway", "referral", "notify")


class Network:
    def __init__(
        self, nats: NatsServer, workdir: Path, extra_env: dict[str, dict[str, str]] | None = None
    ) -> None:
        self.nats = nats
        self.workdir = workdir
        extra_env = extra_env or {}
        self.services = {
            name: ServiceProcess(
                name,
                {
                    "DATABASE_URL": sqlite_url_for(workdir / f"{name}.db"),
                    **nats.env(name),
                    **extra_env.get(name, {}),
                },
                workdir,
            )
            for name in SERVICES
        }

    def start(self) -> Network:
        for svc in self.services.values():
            svc.start()
        for svc in self.services.values():
            svc.wait_ready()
        return self

    def stop(self) -> None:
        for svc in self.services.values():
            svc.stop()

    def add_clinic(self, name: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "intake", "clinic", "add", "--name", name],
            env={**self.services["intake"].env_for_cli()},
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])["api_key"]

    def url(self, service: str) -> str:
        return self.services[service].url

    def spans(self) -> list[dict]:
        found = []
        for svc in self.services.values():
            if svc.trace_file.exists():
                found += [
                    json.loads(line) for line in svc.trace_file.read_text().splitlines() if line.strip()
                ]
        return found


@pytest.fixture
def network(own_nats: NatsServer, tmp_path: Path) -> Iterator[Network]:
    net = Network(own_nats, tmp_path)
    try:
        yield net.start()
    finally:
        net.stop()
