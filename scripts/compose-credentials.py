#!/usr/bin/env python3
"""docker compose's one-shot `credentials` service: every secret the stack needs, generated
into the `secrets` volume before NATS, PostgreSQL and the services start. Nothing here is
committed; a second run keeps what exists (same seeds, passwords and certificates) and only
adds what is missing, e.g. a new partner clinic:

    CARE_CLINIC_IDS="clinic-id-1 clinic-id-2" docker compose run --rm credentials
    docker compose kill -s HUP nats1 nats2 nats3      # the servers reread auth.conf

Layout of the volume (each consumer mounts only its own directory, as a volume subpath):

    tls/                 scripts/dev-certs.py: development CA, server and client certificates
    nats/                python -m care_shared.nats_auth generate: auth.conf and <user>.nk
    pg/                  one generated password per PostgreSQL role (and the superuser's)
    nats-server/         auth.conf, server.crt, server.key, ca.crt            -> nats1..3
    postgres/            server.crt, server.key, ca.crt, <role>.password      -> postgres
    service/<service>/   nats.nk, client.crt, client.key, ca.crt, db.password -> that service
    ops/                 nats.nk, client.crt, client.key, ca.crt              -> carectl
    clinic/<user>/       nats.nk, client.crt, client.key, ca.crt              -> hand to the clinic
    clinics.txt          every clinic id given so far (a later run without CARE_CLINIC_IDS
                         keeps them; delete a line and rerun to remove a clinic)

Runs as root in the intake image (the compose file sets `user: "0"`) so that it can give
each directory to the user that reads it: the services run as uid 10001 (their Dockerfiles),
PostgreSQL as uid 999 (the postgres:16 image), the NATS servers as root.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

SERVICES = ("intake", "pathway", "referral", "notify")
SERVICE_UID = 10001
POSTGRES_UID = 999
HERE = Path(__file__).resolve().parent


def _dev_certs():
    spec = importlib.util.spec_from_file_location("dev_certs", HERE / "dev-certs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _put(src: Path, dest: Path, uid: int, mode: int) -> None:
    shutil.copyfile(src, dest)
    os.chown(dest, uid, uid)
    os.chmod(dest, mode)


def _dir(path: Path, uid: int) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, uid, uid)
    os.chmod(path, 0o700)
    return path


def _password(path: Path) -> Path:
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
    return path


def _client_dir(out: Path, tls: Path, nats: Path, user: str, uid: int) -> Path:
    target = _dir(out, uid)
    _put(nats / f"{user}.nk", target / "nats.nk", uid, 0o600)
    _put(tls / f"{user}.crt", target / "client.crt", uid, 0o644)
    _put(tls / f"{user}.key", target / "client.key", uid, 0o600)
    _put(tls / "ca.crt", target / "ca.crt", uid, 0o644)
    return target


def remembered_clinics(path: Path, new: list[str]) -> list[str]:
    """The clinics of every earlier run plus `new`, kept in clinics.txt (one id a line): a
    plain `docker compose up` regenerates auth.conf without CARE_CLINIC_IDS, and must not
    drop the clinics added before. Removing a clinic: delete its line, then rerun."""
    known = path.read_text().split() if path.exists() else []
    clinics = list(dict.fromkeys([*known, *new]))
    path.write_text("".join(f"{c}\n" for c in clinics))
    return clinics


def main(argv: list[str]) -> int:
    root = Path(argv[1] if len(argv) > 1 else "/secrets")
    _dir(root, 0)
    clinics = remembered_clinics(root / "clinics.txt", os.environ.get("CARE_CLINIC_IDS", "").split())
    clinic_users = [f"clinic-{c}" for c in clinics]
    tls, nats, pg = root / "tls", root / "nats", _dir(root / "pg", 0)

    _dev_certs().generate(tls, clients=clinic_users)
    cmd = [sys.executable, "-m", "care_shared.nats_auth", "generate", "--dir", str(nats)]
    for clinic in clinics:
        cmd += ["--clinic", clinic]
    subprocess.run(cmd, check=True)

    server = _dir(root / "nats-server", 0)
    _put(nats / "auth.conf", server / "auth.conf", 0, 0o600)
    # Routes authenticate with a password of their own (TLS alone admits any client cert).
    route_password = _password(root / "nats-route.password").read_text().strip()
    from care_shared.nats_cluster import routes_conf  # the cluster test's too

    cluster = server / "cluster.conf"
    cluster.write_text(routes_conf(route_password, (f"{m}:6222" for m in ("nats1", "nats2", "nats3"))))
    os.chmod(cluster, 0o600)
    _put(tls / "nats-server.crt", server / "server.crt", 0, 0o644)
    _put(tls / "nats-server.key", server / "server.key", 0, 0o600)
    _put(tls / "ca.crt", server / "ca.crt", 0, 0o644)

    postgres = _dir(root / "postgres", POSTGRES_UID)
    _put(tls / "postgres-server.crt", postgres / "server.crt", POSTGRES_UID, 0o644)
    _put(tls / "postgres-server.key", postgres / "server.key", POSTGRES_UID, 0o600)
    _put(tls / "ca.crt", postgres / "ca.crt", POSTGRES_UID, 0o644)
    for role in ("postgres", *SERVICES):
        _put(_password(pg / f"{role}.password"), postgres / f"{role}.password", POSTGRES_UID, 0o600)

    for service in SERVICES:
        target = _client_dir(root / "service" / service, tls, nats, service, SERVICE_UID)
        _put(pg / f"{service}.password", target / "db.password", SERVICE_UID, 0o600)
    _client_dir(root / "ops", tls, nats, "ops", SERVICE_UID)
    for user in clinic_users:
        _client_dir(root / "clinic" / user, tls, nats, user, 0)

    print(f"credentials ready in {root}: services {', '.join(SERVICES)}, ops, clinics {clinics or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
