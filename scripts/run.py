"""`make run`: a real nats-server with JetStream and the four services on SQLite, all under
var/, in the foreground. Ctrl-C stops everything cleanly.

The bus runs as it does everywhere: no anonymous access, one nkey user per service, one for
ops (carectl) and one per receiving clinic, with the permissions generated from the topology
(care_shared.nats_auth) into var/nats-auth/ (mode 0700; seeds 0600). It listens on loopback
only, in plaintext (TLS is for past one machine: deploy/, docker-compose.yml).

Standard library only, so it runs before anything else is known to work (the generator runs
in the project's virtual environment, as a child).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Everything this run writes; CARE_VAR_DIR moves it (the test of this script uses a temp dir).
VAR = Path(os.environ.get("CARE_VAR_DIR") or ROOT / "var").resolve()
BIN = Path(sys.executable).parent
SERVICES = {"intake": 8001, "pathway": 8002, "referral": 8003, "notify": 8004}
READY_TIMEOUT_S = 90

children: list[tuple[str, subprocess.Popen]] = []


def say(line: str) -> None:
    print(line, flush=True)


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def env_port(variable: str, default: int) -> int:
    value = os.environ.get(variable, str(default))
    if not value.isdigit() or not 0 < int(value) < 65536:
        say(f"{variable}={value!r} is not a port number")
        sys.exit(1)
    return int(value)


def pick_ports(wanted: dict[str, int]) -> dict[str, int]:
    """Each wanted port, or the next free one above it, said out loud: never a stack trace.
    Free wanted ports are claimed first, so one busy port moves only its own service."""
    chosen = {name: port for name, port in wanted.items() if port_free(port)}
    claimed = set(chosen.values())
    for name, port in wanted.items():
        if name in chosen:
            continue
        free = port + 1
        while free in claimed or not port_free(free):
            free += 1
        say(f"  port {port} for {name} is taken; using {free}")
        chosen[name] = free
        claimed.add(free)
    return {name: chosen[name] for name in wanted}


def start(name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    log = open(VAR / "logs" / f"{name}.log", "ab")
    proc = subprocess.Popen(
        argv,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C reaches us; we stop the children in order
    )
    children.append((name, proc))
    return proc


def log_tail(name: str, lines: int = 20) -> str:
    try:
        return "\n".join((VAR / "logs" / f"{name}.log").read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def fail(message: str, name: str | None = None) -> None:
    say(f"\n{message}")
    if name:
        say(f"--- last lines of {VAR / 'logs' / name}.log ---\n{log_tail(name)}")
    stop_all()
    sys.exit(1)


def wait_for(name: str, proc: subprocess.Popen, ready, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            fail(f"{name} exited with code {proc.returncode} while starting", name)
        if ready():
            return
        time.sleep(0.1)
    fail(f"{name} was not ready after {timeout:.0f} s", name)


def tcp_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def stop_all() -> None:
    # Services first (they drain their consumers and relays), NATS last.
    for name, proc in reversed(children):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                say(f"  {name} did not stop in 20 s; killing it")
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    children.clear()


def operator_command(what: str, argv: list[str], env: dict[str, str]) -> dict:
    """Run a service's operator command; it prints one JSON line on stdout."""
    out = subprocess.run(
        [sys.executable, "-m", *argv], cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True
    )
    if out.returncode != 0:
        say(out.stderr[-2000:])
        fail(f"could not create the {what}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    for sub in ("nats", "logs", "traces"):
        (VAR / sub).mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))

    say("TRD Care Network: starting")
    wanted = {"nats": env_port("CARE_NATS_PORT", 4322)}
    wanted["nats monitoring"] = wanted["nats"] + 4000
    wanted |= {name: env_port(f"{name.upper()}_PORT", default) for name, default in SERVICES.items()}
    ports = pick_ports(wanted)
    nats_port, monitor_port = ports.pop("nats"), ports.pop("nats monitoring")

    databases = {name: f"sqlite+aiosqlite:///{VAR / name}.db" for name in SERVICES}
    clinic = operator_command(
        "demo clinic",
        ["intake", "clinic", "add", "--name", "Demo clinic", "--key-file", str(VAR / "demo-clinic.key")],
        {"DATABASE_URL": databases["intake"]},
    )
    key = clinic["api_key"]
    # A few directory clinics with varied capabilities, and a demo referral coordinator.
    seeded = operator_command(
        "demo coordinator",
        [
            "referral",
            "demo-seed",
            "--key-file",
            str(VAR / "demo-coordinator.key"),
            "--partner-clinic-id",
            clinic["clinic_id"],
        ],
        {"DATABASE_URL": databases["referral"]},
    )

    # The bus: credentials for every user (the seeded receiving clinics included), then NATS.
    auth = VAR / "nats-auth"
    operator_command(
        "NATS credentials",
        [
            "care_shared.nats_auth",
            "generate",
            "--dir",
            str(auth),
            *[a for c in seeded["clinics"] for a in ("--clinic", c["id"])],
        ],
        {},
    )
    conf = VAR / "nats.conf"
    conf.write_text(
        f'host: "127.0.0.1"\nport: {nats_port}\nhttp_port: {monitor_port}\n'
        f"jetstream {{ store_dir: {json.dumps(str(VAR / 'nats'))} }}\n"
        f'include "nats-auth/auth.conf"\n'
    )
    nats = start("nats", [str(BIN / "nats-server"), "-c", str(conf)])
    wait_for("nats", nats, lambda: tcp_open(nats_port), 20)
    nats_url = f"nats://127.0.0.1:{nats_port}"
    ops_seed = auth / "ops.nk"
    operator_command(
        "streams and durables",
        [
            "care_shared.ops.carectl",
            "--nats",
            nats_url,
            "--creds",
            str(ops_seed),
            "bus",
            "ensure",
            *[a for c in seeded["clinics"] for a in ("--clinic", c["id"])],
        ],
        {},
    )

    for name in SERVICES:
        env = {
            "DATABASE_URL": databases[name],
            "NATS_URL": nats_url,
            "NATS_NKEY_FILE": str(auth / f"{name}.nk"),
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(ports[name]),
            "CARE_TRACE_FILE": str(VAR / "traces" / f"{name}.jsonl"),
        }
        start(name, [sys.executable, "-m", name, "serve"], env)
    for name, proc in list(children):
        if name in SERVICES:
            wait_for(
                name, proc, lambda n=name: http_ok(f"http://127.0.0.1:{ports[n]}/readyz"), READY_TIMEOUT_S
            )

    # What carectl reads to find this stack.
    (VAR / "run.json").write_text(
        json.dumps(
            {
                "nats_url": nats_url,
                "nats_ops_credentials": str(ops_seed),
                "services": {n: f"http://127.0.0.1:{p}" for n, p in ports.items()},
                "databases": databases,
                "trace_dir": str(VAR / "traces"),
            },
            indent=2,
        )
    )

    intake = f"http://127.0.0.1:{ports['intake']}"
    say("\nReady.\n")
    for name in SERVICES:
        url = f"http://127.0.0.1:{ports[name]}"
        say(f"  {name:<9} {url}   docs {url}/docs   events {url}/asyncapi.json")
    say(f"  nats      {nats_url}   monitoring http://127.0.0.1:{monitor_port}   (loopback, plaintext)")
    say(f"  ops credentials (carectl finds them) {ops_seed}; every user's seed in {auth}/")
    say(f"\n  logs {VAR}/logs/   traces {VAR}/traces/ (carectl trace --last)   data {VAR}/*.db, {VAR}/nats/")
    say(f"\n  Demo clinic API key: {key}")
    say(
        f"  Demo coordinator key: {seeded['coordinator_key']}   (queue page http://127.0.0.1:{ports['referral']}/coordinator)"
    )
    say(
        f"\n  Try:\n  curl -s -X POST {intake}/v1/patients -H 'Authorization: Bearer {key}' \\\n"
        "       -H 'Content-Type: application/json' \\\n"
        '       -d \'{"external_id":"demo-1","birth_year":1980,"sex":"female","timezone":"Europe/London"}\''
    )
    say(f"  curl -s {intake}/v1/patients/<patient_id> -H 'Authorization: Bearer {key}'")
    say("\nCtrl-C stops everything.")

    try:
        while True:
            for name, proc in children:
                if proc.poll() is not None:
                    fail(f"{name} stopped unexpectedly (exit code {proc.returncode})", name)
            time.sleep(0.5)
    except KeyboardInterrupt:
        say("\nstopping...")
        stop_all()
        say("stopped")
        return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM while still starting
        say("\nstopping...")
        stop_all()
        say("stopped")
        sys.exit(0)
