"""The compose PostgreSQL settings, run: a local server started with the compose command's
settings (ssl=on, the development certificate, pg_hba.conf from deploy/, SCRAM) and
initialised by deploy/postgres/init-roles.sh. A service connects with its role's password
file and a verified certificate; plaintext, another service's database and a wrong host
name are refused. Skipped where the PostgreSQL server binaries are not installed."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import text

from care_shared.db import Database

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("intake", "pathway", "referral", "notify")
BINARIES = ("initdb", "pg_ctl", "psql")

pytestmark = pytest.mark.skipif(
    any(shutil.which(b) is None for b in BINARIES), reason="no PostgreSQL server binaries"
)


def as_postgres_user() -> list[str]:
    """PostgreSQL refuses to run as root: run its commands as nobody then."""
    if os.geteuid() != 0:
        return []
    if shutil.which("runuser") is None:
        pytest.skip("root without runuser")
    return ["runuser", "-u", "nobody", "--"]


def load_dev_certs():
    spec = importlib.util.spec_from_file_location("dev_certs", ROOT / "scripts/dev-certs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server() -> Iterator[dict]:
    prefix = as_postgres_user()
    base = Path(tempfile.mkdtemp(prefix="care-pg-"))
    os.chmod(base, 0o755)
    care = base / "care"
    certs = base / "certs"
    load_dev_certs().generate(certs)
    care.mkdir()
    shutil.copyfile(certs / "postgres-server.crt", care / "server.crt")
    shutil.copyfile(certs / "postgres-server.key", care / "server.key")
    for role in ("postgres", *SERVICES):
        (care / f"{role}.password").write_text(f"{role}-{os.urandom(8).hex()}\n")
    for path in care.iterdir():
        os.chmod(path, 0o600)
    if prefix:
        nobody = pwd.getpwnam("nobody")
        for path in (base, care, *care.iterdir()):
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
    pg = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["postgres"]
    command = pg["command"]
    settings = [command[i + 1] for i, arg in enumerate(command) if arg == "-c"]
    # The checkout may sit where `nobody` cannot read (a 0700 temporary directory): the server
    # reads its own copy of deploy/'s pg_hba.conf, and runs from the test's directory.
    hba = base / "pg_hba.conf"
    shutil.copyfile(ROOT / "deploy/postgres/pg_hba.conf", hba)
    if prefix:
        os.chown(hba, nobody.pw_uid, nobody.pw_gid)
    settings = [
        s.replace("/run/care", str(care)).replace("/etc/postgresql/pg_hba.conf", str(hba)) for s in settings
    ]
    port = free_port()
    data = base / "data"
    initdb_args = pg["environment"]["POSTGRES_INITDB_ARGS"].split()
    subprocess.run(
        [
            *prefix,
            "initdb",
            "-D",
            str(data),
            "-U",
            "postgres",
            f"--pwfile={care / 'postgres.password'}",
            *initdb_args,
        ],
        check=True,
        capture_output=True,
        cwd=base,
    )
    options = " ".join(
        [
            f"-p {port}",
            f"-k {base}",
            "-c listen_addresses='127.0.0.1,127.0.0.2'",
            *(f"-c {s}" for s in settings),
        ]
    )
    subprocess.run(
        [*prefix, "pg_ctl", "-D", str(data), "-w", "-l", str(base / "log"), "-o", options, "start"],
        check=True,
        capture_output=True,
        cwd=base,
    )
    try:
        script = (ROOT / "deploy/postgres/init-roles.sh").read_text().replace("/run/care", str(care))
        (base / "init-roles.sh").write_text(script)
        env = {
            **os.environ,
            "POSTGRES_USER": "postgres",
            "PGHOST": str(base),
            "PGPORT": str(port),
            "PGPASSWORD": (care / "postgres.password").read_text().strip(),
        }
        done = subprocess.run(
            [*prefix, "bash", str(base / "init-roles.sh")], env=env, capture_output=True, text=True, cwd=base
        )
        assert done.returncode == 0, done.stderr
        yield {"port": port, "care": care, "ca": certs / "ca.crt", "env": env, "prefix": prefix}
    finally:
        subprocess.run(
            [*prefix, "pg_ctl", "-D", str(data), "-w", "-m", "fast", "stop"], capture_output=True, cwd=base
        )
        shutil.rmtree(base, ignore_errors=True)


async def connect(url: str, **kwargs: object) -> str:
    db = Database(url, **kwargs)
    try:
        async with db.engine.connect() as conn:
            row = (
                await conn.execute(
                    text("SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                )
            ).one()
            return f"{row[0]} ssl={row[1]}"
    except Exception as exc:
        return f"refused: {exc}"
    finally:
        await db.dispose()


def test_a_service_connects_with_its_password_file_over_verified_tls_and_nothing_else(server: dict) -> None:
    port, care, ca = server["port"], server["care"], str(server["ca"])
    for service in SERVICES:
        password = care.parent / f"{service}.pw"
        shutil.copyfile(care / f"{service}.password", password)
        url = f"postgresql+asyncpg://{service}@localhost:{port}/{service}"
        assert (
            asyncio.run(connect(url, password_file=str(password), ssl_root_cert=ca)) == f"{service} ssl=True"
        )
    password = str(care.parent / "intake.pw")
    plaintext = asyncio.run(
        connect(f"postgresql+asyncpg://intake@127.0.0.1:{port}/intake?ssl=disable", password_file=password)
    )
    assert "no encryption" in plaintext
    other = asyncio.run(
        connect(
            f"postgresql+asyncpg://intake@localhost:{port}/notify", password_file=password, ssl_root_cert=ca
        )
    )
    assert "permission denied for database" in other
    # The development certificate names localhost and 127.0.0.1, not 127.0.0.2 (where the
    # server listens too), and another CA does not vouch for it.
    wrong_host = asyncio.run(
        connect(
            f"postgresql+asyncpg://intake@127.0.0.2:{port}/intake", password_file=password, ssl_root_cert=ca
        )
    )
    assert "certificate" in wrong_host.lower() and wrong_host.startswith("refused"), wrong_host
    other_ca = care.parent / "other-ca"
    load_dev_certs().generate(other_ca)
    wrong_ca = asyncio.run(
        connect(
            f"postgresql+asyncpg://intake@localhost:{port}/intake",
            password_file=password,
            ssl_root_cert=str(other_ca / "ca.crt"),
        )
    )
    assert "certificate verify failed" in wrong_ca, wrong_ca
    wrong_password = care.parent / "wrong.pw"
    wrong_password.write_text("not-it")
    assert "password authentication failed" in asyncio.run(
        connect(
            f"postgresql+asyncpg://intake@localhost:{port}/intake",
            password_file=str(wrong_password),
            ssl_root_cert=ca,
        )
    )
    stored = subprocess.run(
        [
            *server["prefix"],
            "psql",
            "-U",
            "postgres",
            "-Atc",
            "SELECT rolname || ' ' || left(rolpassword, 14) FROM pg_authid WHERE rolname IN ('intake','pathway','referral','notify') ORDER BY 1",
            "postgres",
        ],
        env=server["env"],
        capture_output=True,
        text=True,
        check=True,
        cwd=care.parent,
    ).stdout.split("\n")
    assert [line for line in stored if line] == [f"{s} SCRAM-SHA-256$" for s in sorted(SERVICES)]
