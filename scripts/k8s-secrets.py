#!/usr/bin/env python3
"""Every Secret deploy/ names, generated; none of it is ever committed.

    .venv/bin/python scripts/k8s-secrets.py [--out DIR] [--clinic ID ...] [--tls-dir DIR] [--apply]

1. TLS: a development CA with the NATS servers' certificate for the chart's in-cluster names
   and a client certificate per service and ops (scripts/dev-certs.py), unless --tls-dir
   names a directory with your own CA's files under the same names (ca.crt,
   nats-server.crt/.key, <user>.crt/.key for intake, pathway, referral, notify, ops and each
   clinic-<id>).
2. NATS users: `python -m care_shared.nats_auth generate --dir DIR/nats --clinic ...`
   (auth.conf and one nkey seed per user; existing seeds are kept).
3. PostgreSQL: one generated password per service role (kept once generated).
4. The Secrets, written to DIR/secrets.yaml (mode 0600), or with --apply given to
   `kubectl apply -f -`:
     namespace nats:     nats-auth (auth.conf), nats-server-tls (kubernetes.io/tls),
                         nats-ca (ca.crt)
     namespace trd-care: care-nats-<service> and care-nats-ops (nats.nk, tls.crt, tls.key,
                         ca.crt), care-pg-<service> (kubernetes.io/basic-auth: the managed
                         role's username and password, deploy/postgres/cluster.yaml)
   CloudNativePG makes its own CA and server certificates (care-pg-ca); it is not here.
A partner clinic's credentials (nkey seed, client certificate, CA) land in DIR/clinic/<user>/
for handing over; after adding a clinic, rerun with --apply: the NATS servers' config
reloader picks up the new auth.conf. DIR/clinics.txt remembers every clinic given so far
(a later run without --clinic keeps them; delete a line and rerun to remove one).

Run it before `helm install` and before applying deploy/postgres and deploy/k8s. DIR defaults
to var/k8s-secrets (ignored by git); keep it, or the next run makes new credentials.
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

SERVICES = ("intake", "pathway", "referral", "notify")
APP_NAMESPACE = "trd-care"
NATS_NAMESPACE = "nats"
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# The Helm release `nats` in namespace `nats` (deploy/nats/values.yaml): the client service
# and the headless service the routes use (nats-0.nats-headless:6222, ...).
NATS_SANS = [
    "nats",
    f"nats.{NATS_NAMESPACE}",
    f"nats.{NATS_NAMESPACE}.svc",
    f"nats.{NATS_NAMESPACE}.svc.cluster.local",
    "*.nats-headless",
    f"*.nats-headless.{NATS_NAMESPACE}.svc.cluster.local",
    *(f"nats-{i}.nats-headless" for i in range(3)),
]


def _dev_certs():
    spec = importlib.util.spec_from_file_location("dev_certs", HERE / "dev-certs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def _secret(
    name: str,
    namespace: str,
    data: dict[str, Path],
    *,
    kind: str = "Opaque",
    labels: dict[str, str] | None = None,
) -> dict:
    metadata: dict = {
        "name": name,
        "namespace": namespace,
        "labels": {"app.kubernetes.io/part-of": "trd-care-network", **(labels or {})},
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": kind,
        "metadata": metadata,
        "data": {key: _b64(path) for key, path in data.items()},
    }


def _password(path: Path) -> Path:
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    return path


def remembered_clinics(path: Path, new: list[str]) -> list[str]:
    """The clinics of every earlier run plus `new` (DIR/clinics.txt, one id a line), so that a
    run without --clinic does not drop them from auth.conf. Delete a line to remove one."""
    known = path.read_text().split() if path.exists() else []
    clinics = list(dict.fromkeys([*known, *new]))
    path.write_text("".join(f"{c}\n" for c in clinics))
    return clinics


def generate(out: Path, clinics: list[str], tls_dir: Path | None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    if tls_dir is None:
        _dev_certs().generate(out / "tls", clients=[f"clinic-{c}" for c in clinics], nats_sans=NATS_SANS)
    cmd = [sys.executable, "-m", "care_shared.nats_auth", "generate", "--dir", str(out / "nats")]
    for clinic in clinics:
        cmd += ["--clinic", clinic]
    subprocess.run(cmd, check=True)
    pg = out / "pg"
    pg.mkdir(mode=0o700, exist_ok=True)
    for service in SERVICES:
        _password(pg / f"{service}.password")


def manifests(out: Path, clinics: list[str], tls_dir: Path | None = None) -> list[dict]:
    """The Secrets from what `generate` left in `out` (and `tls_dir`, when given)."""
    tls, nats, pg = tls_dir or out / "tls", out / "nats", out / "pg"
    docs = [
        _secret("nats-auth", NATS_NAMESPACE, {"auth.conf": nats / "auth.conf"}),
        _secret(
            "nats-server-tls",
            NATS_NAMESPACE,
            {"tls.crt": tls / "nats-server.crt", "tls.key": tls / "nats-server.key"},
            kind="kubernetes.io/tls",
        ),
        _secret("nats-ca", NATS_NAMESPACE, {"ca.crt": tls / "ca.crt"}),
    ]
    for user in (*SERVICES, "ops"):
        docs.append(
            _secret(
                f"care-nats-{user}",
                APP_NAMESPACE,
                {
                    "nats.nk": nats / f"{user}.nk",
                    "tls.crt": tls / f"{user}.crt",
                    "tls.key": tls / f"{user}.key",
                    "ca.crt": tls / "ca.crt",
                },
            )
        )
    for service in SERVICES:
        username = out / "pg" / f"{service}.username"
        username.write_text(service)
        docs.append(
            _secret(
                f"care-pg-{service}",
                APP_NAMESPACE,
                {"username": username, "password": pg / f"{service}.password"},
                kind="kubernetes.io/basic-auth",
                labels={"cnpg.io/reload": "true"},
            )
        )
    for clinic in clinics:
        user = f"clinic-{clinic}"
        target = out / "clinic" / user
        target.mkdir(parents=True, exist_ok=True)
        os.chmod(target, 0o700)
        for src, name in (
            (nats / f"{user}.nk", "nats.nk"),
            (tls / f"{user}.crt", "tls.crt"),
            (tls / f"{user}.key", "tls.key"),
            (tls / "ca.crt", "ca.crt"),
        ):
            shutil.copyfile(src, target / name)
            os.chmod(target / name, 0o600)
    return docs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "k8s-secrets")
    parser.add_argument("--clinic", action="append", default=[], help="a partner clinic's id (repeatable)")
    parser.add_argument(
        "--tls-dir", type=Path, help="certificates from your own CA instead of a development CA"
    )
    parser.add_argument("--apply", action="store_true", help="kubectl apply the Secrets")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    clinics = remembered_clinics(args.out / "clinics.txt", args.clinic)
    generate(args.out, clinics, args.tls_dir)
    text = yaml.safe_dump_all(manifests(args.out, clinics, args.tls_dir), sort_keys=False)
    if args.apply:
        subprocess.run(["kubectl", "apply", "-f", "-"], input=text, text=True, check=True)
        print(f"applied the Secrets; credentials kept in {args.out}")
    else:
        path = args.out / "secrets.yaml"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        print(f"wrote {path}: kubectl apply -f {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
