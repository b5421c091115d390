#!/usr/bin/env python3
"""A development CA and the certificates docker compose (or a test cluster) needs for TLS on
NATS and PostgreSQL. Development only: production uses its own CA (Kubernetes: the NATS
chart's TLS secrets from your issuer, CloudNativePG's own certificates).

    python scripts/dev-certs.py DIR [--client NAME ...] [--nats-san NAME ...] [--postgres-san NAME ...]

writes into DIR (created 0700; every key 0600, never overwritten: a second run keeps what is
there and only adds what is missing, so it is idempotent):

    ca.crt, ca.key                        the development CA
    nats-server.crt, nats-server.key      NATS client port and cluster routes (server and
                                          client auth: routes present it both ways)
    postgres-server.crt, postgres-server.key
    <client>.crt, <client>.key            one client certificate per NATS client: the four
                                          services and ops by default, more with --client

Server certificates carry DNS and IP subject alternative names; nats-py and asyncpg
(verify-full) check the host of the URL against them. Defaults: nats1..nats3, nats-1..nats-3,
postgres, localhost, 127.0.0.1, ::1; --nats-san / --postgres-san add names (an address is
written as an IP SAN), e.g. the Kubernetes service names. Keep DIR out of git (it is in
.gitignore under var/).
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVICES = ("intake", "pathway", "referral", "notify")
DEFAULT_CLIENTS = (*SERVICES, "ops")
LOCAL = ("localhost", "127.0.0.1", "::1")
DEFAULT_NATS_SANS = (
    "nats1",
    "nats2",
    "nats3",
    "nats-1",
    "nats-2",
    "nats-3",
    "nats",
    *LOCAL,
)
DEFAULT_POSTGRES_SANS = ("postgres", *LOCAL)
CA_DAYS = 3650
LEAF_DAYS = 825


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _san(names: list[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in dict.fromkeys(names):
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def load_or_make_ca(out: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    crt, key = out / "ca.crt", out / "ca.key"
    if crt.exists() and key.exists():
        ca_key = serialization.load_pem_private_key(key.read_bytes(), password=None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        return x509.load_pem_x509_certificate(crt.read_bytes()), ca_key
    ca_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "TRD Care Network (development)"),
            x509.NameAttribute(NameOID.COMMON_NAME, "TRD Care development CA"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write(key, _key_pem(ca_key), 0o600)
    _write(crt, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert, ca_key


def make_leaf(
    out: Path,
    stem: str,
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    *,
    common_name: str,
    sans: list[str],
    server: bool,
    client: bool,
) -> bool:
    """Write <stem>.crt and <stem>.key unless both exist; True when written."""
    crt, key_path = out / f"{stem}.crt", out / f"{stem}.key"
    if crt.exists() and key_path.exists():
        return False
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    usages = []
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=False,
                key_cert_sign=False,
                crl_sign=False,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if sans:
        builder = builder.add_extension(_san(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    _write(key_path, _key_pem(key), 0o600)
    _write(crt, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return True


def generate(
    out: Path,
    *,
    clients: list[str] | None = None,
    nats_sans: list[str] | None = None,
    postgres_sans: list[str] | None = None,
) -> list[str]:
    """Create whatever is missing under `out`; return the stems written this time."""
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    ca = load_or_make_ca(out)
    written = []
    if make_leaf(
        out,
        "nats-server",
        ca,
        common_name="nats",
        server=True,
        client=True,
        sans=[*DEFAULT_NATS_SANS, *(nats_sans or [])],
    ):
        written.append("nats-server")
    if make_leaf(
        out,
        "postgres-server",
        ca,
        common_name="postgres",
        server=True,
        client=False,
        sans=[*DEFAULT_POSTGRES_SANS, *(postgres_sans or [])],
    ):
        written.append("postgres-server")
    for name in dict.fromkeys([*DEFAULT_CLIENTS, *(clients or [])]):
        if make_leaf(out, name, ca, common_name=name, server=False, client=True, sans=[]):
            written.append(name)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", type=Path, help="output directory (created; keep it out of git)")
    parser.add_argument(
        "--client", action="append", default=[], help="another client certificate (repeatable)"
    )
    parser.add_argument(
        "--nats-san", action="append", default=[], help="another NATS server name (repeatable)"
    )
    parser.add_argument("--postgres-san", action="append", default=[], help="another PostgreSQL server name")
    args = parser.parse_args(argv)
    written = generate(
        args.dir, clients=args.client, nats_sans=args.nats_san, postgres_sans=args.postgres_san
    )
    print(f"{args.dir}: " + (", ".join(written) if written else "nothing new (already complete)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
