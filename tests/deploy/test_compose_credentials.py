"""scripts/compose-credentials.py, the compose `credentials` service, with the nkey generator
(care_shared.nats_auth) stood in for: it lays out exactly the directories the compose file
mounts as volume subpaths, each owned by the user that reads it, keys and passwords 0600,
and a second run keeps every credential."""

from __future__ import annotations

import importlib.util
import os
import stat
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("intake", "pathway", "referral", "notify")

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="hands directories to other uids: needs root, as in its container"
)


def load():
    spec = importlib.util.spec_from_file_location(
        "compose_credentials", ROOT / "scripts/compose-credentials.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_generator(cmd: list[str], check: bool) -> None:
    """What `python -m care_shared.nats_auth generate --dir DIR --clinic ...` leaves behind."""
    assert cmd[1:5] == ["-m", "care_shared.nats_auth", "generate", "--dir"] and check
    out = Path(cmd[5])
    clinics = [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "--clinic"]
    out.mkdir(exist_ok=True)
    (out / "auth.conf").write_text("authorization { users: [] }\n")
    for user in (*SERVICES, "ops", *(f"clinic-{c}" for c in clinics)):
        seed = out / f"{user}.nk"
        if not seed.exists():
            seed.write_text(f"SEED-{user}-{os.urandom(4).hex()}\n")
            os.chmod(seed, 0o600)


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_the_layout_matches_the_compose_mounts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = load()
    monkeypatch.setattr(module.subprocess, "run", fake_generator)
    monkeypatch.setenv("CARE_CLINIC_IDS", "c1")
    root = tmp_path / "secrets"
    assert module.main(["compose-credentials.py", str(root)]) == 0

    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name, svc in services.items():
        for mount in svc.get("volumes", []):
            if isinstance(mount, dict) and mount["source"] == "secrets" and "volume" in mount:
                assert (root / mount["volume"]["subpath"]).is_dir(), (name, mount)
                for value in svc.get("environment", {}).values():
                    if str(value).startswith(mount["target"] + "/"):
                        relative = str(value)[len(mount["target"]) + 1 :]
                        assert (root / mount["volume"]["subpath"] / relative).is_file(), (name, value)
        command = svc.get("command") or []
        for arg in command:
            if isinstance(arg, str) and "=/run/care/" in arg:
                assert (root / "postgres" / arg.split("=/run/care/", 1)[1]).is_file(), arg

    for service in SERVICES:
        own = root / "service" / service
        assert sorted(p.name for p in own.iterdir()) == [
            "ca.crt",
            "client.crt",
            "client.key",
            "db.password",
            "nats.nk",
        ]
        assert (own / "db.password").read_bytes() == (root / "postgres" / f"{service}.password").read_bytes()
        assert (own / "nats.nk").read_bytes() == (root / "nats" / f"{service}.nk").read_bytes()
        for path in (own, *own.iterdir()):
            assert path.stat().st_uid == module.SERVICE_UID, path
        for secret in ("client.key", "db.password", "nats.nk"):
            assert stat.S_IMODE((own / secret).stat().st_mode) == 0o600
        assert stat.S_IMODE(own.stat().st_mode) == 0o700
    for path in (root / "postgres").iterdir():
        assert path.stat().st_uid == module.POSTGRES_UID
    assert sorted(p.name for p in (root / "nats-server").iterdir()) == [
        "auth.conf",
        "ca.crt",
        "cluster.conf",
        "server.crt",
        "server.key",
    ]
    # Routes authenticate with a generated password of their own, to each member.
    cluster = (root / "nats-server" / "cluster.conf").read_text()
    password = (root / "nats-route.password").read_text().strip()
    assert len(password) >= 40 and f'password: "{password}"' in cluster
    assert [m for m in ("nats1", "nats2", "nats3") if f"route:{password}@{m}:6222" in cluster] == [
        "nats1",
        "nats2",
        "nats3",
    ]
    assert stat.S_IMODE((root / "nats-server" / "cluster.conf").stat().st_mode) == 0o600
    assert (root / "clinic" / "clinic-c1" / "nats.nk").exists() and (root / "ops" / "nats.nk").exists()
    passwords = {(root / "pg" / f"{r}.password").read_text() for r in ("postgres", *SERVICES)}
    assert len(passwords) == 5 and all(len(p.strip()) >= 40 for p in passwords)

    before = snapshot(root)
    monkeypatch.setenv("CARE_CLINIC_IDS", "c1 c2")
    assert module.main(["compose-credentials.py", str(root)]) == 0
    after = snapshot(root)
    assert all(after[name] == data for name, data in before.items() if name != "clinics.txt")
    assert (root / "clinic" / "clinic-c2" / "client.crt").exists()
    # A plain `docker compose up` (no CARE_CLINIC_IDS) keeps the clinics added before.
    calls = []
    monkeypatch.setattr(
        module.subprocess, "run", lambda cmd, check: (calls.append(cmd), fake_generator(cmd, check))
    )
    monkeypatch.delenv("CARE_CLINIC_IDS")
    assert module.main(["compose-credentials.py", str(root)]) == 0
    [cmd] = calls
    assert [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "--clinic"] == ["c1", "c2"]
