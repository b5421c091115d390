"""The fault suite's world past one machine: the same services, databases, SMTP and SMS
gateway (tests/faults/network.py), on a three-member JetStream cluster (every stream at
three replicas), with a second replica of each service and of intake's relay, as the deploy
runs two. Its own faults: SIGKILL a stream's leader, lose quorum, a rolling restart. A probe
measures the pauses: the longest time neither intake's stream nor pathway's consumer moved."""

from __future__ import annotations

import asyncio
import copy
import time
from datetime import datetime
from pathlib import Path

from care_shared.testing.nats_cluster import Member, NatsCluster
from care_shared.testing.processes import ServiceProcess
from tests.faults.network import SERVICES, FaultNetwork


class ClusterNetwork(FaultNetwork):
    def __init__(self, workdir: Path, admin_url: str) -> None:
        super().__init__(workdir, admin_url)
        self.nats = NatsCluster(workdir / "nats")  # type: ignore[assignment] - NatsServer's interface
        self.second: dict[str, ServiceProcess] = {}
        self.killed: list[Member] = []
        self.progress: list[tuple[float, int, int]] = []  # (t, INTAKE last seq, pathway-intake ack floor)
        self.pauses: list[dict] = []
        self.rolling: asyncio.Task | None = None
        self._probe: asyncio.Task | None = None

    async def start(self, now: datetime) -> ClusterNetwork:
        await super().start(now)
        # The second replicas: same settings, their own port and directory.
        for name in (*SERVICES, "relay"):
            first = self.relay if name == "relay" else self.services[name]
            assert first is not None
            svc = ServiceProcess(
                first.name, copy.deepcopy(first.env), self.workdir / f"{name}-2", command=first.command
            )
            self.second[name] = svc.start()
        for name, svc in self.second.items():
            if name != "relay":
                await self.wait_ready(svc)
        self._probe = asyncio.create_task(self._watch_progress())
        self.log("second replicas ready; NATS " + self.nats.url)
        return self

    async def stop(self) -> None:
        for task in (self.rolling, self._probe):
            if task:
                task.cancel()
        for svc in self.second.values():
            await asyncio.to_thread(svc.stop)
        await super().stop()

    def replicas(self) -> list[tuple[str, ServiceProcess]]:
        both = []
        for name in (*SERVICES, "relay"):
            first = self.relay if name == "relay" else self.services[name]
            assert first is not None
            both += [(name, first), (f"{name}-2", self.second[name])]
        return both

    # --- the cluster's faults --------------------------------------------------------------

    async def inject(self, kind: str, target: str) -> None:
        if kind == "nats-kill-leader":
            member = await self.nats.stream_leader(target)
            await asyncio.to_thread(member.kill)
            self.killed.append(member)
            self.faults.add("nats-sigkill", member.name, leader_of=target)
            self.log(f"SIGKILL {member.name}, leader of {target}")
        elif kind == "nats-kill-another":
            member = next(m for m in self.nats.members if m.running)
            await asyncio.to_thread(member.kill)
            self.killed.append(member)
            up = sum(m.running for m in self.nats.members)
            self.faults.add("nats-sigkill", member.name, members_up=up)
            self.log(f"SIGKILL {member.name}: {up} of {len(self.nats.members)} up, no quorum")
        elif kind == "nats-back":
            member = self.killed.pop()
            await asyncio.to_thread(member.start)
            self.faults.add("nats-back", member.name)
            self.log(f"{member.name} started again (same port and store)")
        elif kind == "rolling-restart":
            self.rolling = asyncio.create_task(self._rolling_restart())
        else:
            await super().inject(kind, target)

    async def _rolling_restart(self) -> None:
        """SIGTERM each replica in turn and wait for it to be ready before the next, as a
        Deployment's rolling update with maxUnavailable 1 does."""
        for name, svc in self.replicas():
            began = time.monotonic()
            code = await asyncio.to_thread(svc.stop)
            svc.start()
            entry = {
                "t": round(began - self.faults.started, 1),
                "fault": "sigterm",
                "target": name,
                "exit": code,
            }
            self.faults.entries.append(entry)
            # A container whose start-up fails exits and is started again by Kubernetes; so
            # here, a few times, each one counted in the report (a finding, not hidden).
            entry["start_failures"] = 0
            while True:
                try:
                    if not name.startswith("relay"):
                        await self.wait_ready(svc)
                    entry["ready_after_s"] = round(time.monotonic() - began, 1)
                    self.log(f"rolling restart: {name} exited {code}, ready after {entry['ready_after_s']}s")
                    break
                except RuntimeError as exc:
                    exited = svc.process is not None and svc.process.poll() is not None
                    if not exited or entry["start_failures"] >= 5:
                        self.recovery_failures.append(f"{name} did not come back after SIGTERM: {exc}")
                        break
                    entry["start_failures"] += 1
                    self.log(
                        f"rolling restart: {name} start-up failed ({str(exc).splitlines()[0]}); started again"
                    )
                    svc.start()

    async def settle_restarts(self) -> None:
        await super().settle_restarts()
        if self.rolling:
            await self.rolling
        while self.killed:  # every member back before the checks
            await self.inject("nats-back", "")

    # --- progress --------------------------------------------------------------------------

    async def _watch_progress(self) -> None:
        nc = await self.nats.connect()
        js = nc.jetstream(timeout=2)
        try:
            while True:
                try:
                    seq = (await js.stream_info("INTAKE")).state.last_seq
                    floor = (await js.consumer_info("INTAKE", "pathway-intake")).ack_floor.stream_seq
                    self.progress.append((time.monotonic() - self.faults.started, seq, floor))
                except Exception:
                    pass
                await asyncio.sleep(0.25)
        finally:
            await nc.close()

    def longest_pauses(self, until: float) -> dict[str, float]:
        """Seconds without progress, the longest of the traffic window: of the relay (INTAKE's
        last sequence) and of a consumer (pathway-intake's ack floor)."""

        def longest(index: int) -> float:
            samples = [p for p in self.progress if p[0] <= until]
            worst, last_move, last_value = 0.0, None, None
            for t, *values in samples:
                if values[index] != last_value:
                    if last_move is not None:
                        worst = max(worst, t - last_move)
                    last_move, last_value = t, values[index]
            return round(worst, 1)

        return {"relay_to_jetstream_s": longest(0), "pathway_consumer_s": longest(1)}
