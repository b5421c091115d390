"""`make run` (scripts/run.py) as an operator meets it: a busy port is said out loud and moved,
every service comes up ready, the printed demo keys work, carectl finds the stack, and Ctrl-C
stops everything, leaving no process behind."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from care_shared.testing.nats_server import free_port

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("intake", "pathway", "referral", "notify")


class Output:
    """The script's stdout, read on a thread so the test can wait for lines with a deadline."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def text(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, proc: subprocess.Popen, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.text())
            if found:
                return found
            if proc.poll() is not None:
                self._thread.join(5)
                found = re.search(pattern, self.text())
                if found:
                    return found
                pytest.fail(f"make run exited ({proc.returncode}) before {pattern!r}:\n{self.text()[-4000:]}")
            time.sleep(0.1)
        pytest.fail(f"no {pattern!r} within {timeout}s:\n{self.text()[-4000:]}")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_make_run_starts_everything_moves_a_busy_port_and_stops_cleanly(tmp_path: Path) -> None:
    ports = {name: free_port() for name in (*SERVICES, "nats")}
    busy = socket.socket()  # somebody else already has intake's port
    busy.bind(("127.0.0.1", ports["intake"]))
    busy.listen()
    env = {
        **os.environ,
        "CARE_VAR_DIR": str(tmp_path / "var"),
        "CARE_NATS_PORT": str(ports["nats"]),
        **{f"{name.upper()}_PORT": str(ports[name]) for name in SERVICES},
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("NATS_URL", None)
    env.pop("DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "run.py")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out = Output(proc)
    try:
        moved = out.wait_for(rf"port {ports['intake']} for intake is taken; using (\d+)", proc, 30)
        out.wait_for(r"Ctrl-C stops everything", proc, 180)
        text = out.text()
        assert "Traceback" not in text
        intake_url = f"http://127.0.0.1:{moved.group(1)}"
        for name in SERVICES:
            url = intake_url if name == "intake" else f"http://127.0.0.1:{ports[name]}"
            assert f"{name:<9} {url}   docs {url}/docs" in text
            assert httpx.get(f"{url}/readyz", timeout=10).status_code == 200
        clinic_key = re.search(r"Demo clinic API key: (\S+)", text).group(1)
        coordinator_key = re.search(r"Demo coordinator key: (\S+)", text).group(1)

        # The printed keys work, and a clinic's request travels into a trace carectl can show.
        created = httpx.post(
            f"{intake_url}/v1/patients",
            headers={"Authorization": f"Bearer {clinic_key}"},
            json={"external_id": "demo-1", "birth_year": 1980, "sex": "female", "timezone": "Europe/London"},
            timeout=10,
        )
        assert created.status_code == 201, created.text
        tasks = httpx.get(
            f"http://127.0.0.1:{ports['referral']}/v1/tasks",
            headers={"Authorization": f"Bearer {coordinator_key}"},
            timeout=10,
        )
        assert tasks.status_code == 200, tasks.text
        run_json = json.loads((tmp_path / "var" / "run.json").read_text())
        assert run_json["services"]["intake"] == intake_url
        carectl = [sys.executable, "-m", "care_shared.ops.carectl"]
        streams = subprocess.run([*carectl, "streams"], env=env, capture_output=True, text=True, timeout=60)
        assert streams.returncode == 0, streams.stderr
        assert "INTAKE" in streams.stdout
        consumers = subprocess.run(
            [*carectl, "consumers", "--interval", "0.2"], env=env, capture_output=True, text=True, timeout=60
        )
        assert (
            consumers.returncode == 0
            and "pathway-intake" in consumers.stdout
            and "ack rate" in consumers.stdout
        )
        for service in ("pathway", "referral", "notify"):  # databases found through run.json
            rebuilt = subprocess.run(
                [*carectl, "rebuild", service], env=env, capture_output=True, text=True, timeout=120
            )
            assert rebuilt.returncode == 0, f"{service}: {rebuilt.stdout}{rebuilt.stderr}"
        deadline = time.monotonic() + 30
        while True:  # the span files are flushed in batches
            trace = subprocess.run(
                [*carectl, "trace", "--last"], env=env, capture_output=True, text=True, timeout=60
            )
            if trace.returncode == 0 and "intake" in trace.stdout and "pathway" in trace.stdout:
                break
            assert time.monotonic() < deadline, (
                f"no cross-service trace from carectl: {trace.stdout}{trace.stderr}"
            )
            time.sleep(0.5)
    finally:
        busy.close()
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    out._thread.join(5)
    assert code == 0, out.text()[-3000:]
    assert out.text().rstrip().endswith("stopped")
    for name, port in ports.items():
        if name != "intake":
            assert not port_open(port), f"{name} still listening after Ctrl-C"
    assert not port_open(int(moved.group(1)))
