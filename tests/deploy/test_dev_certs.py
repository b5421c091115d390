"""scripts/dev-certs.py: a development CA whose server certificates verify, by name, for the
hosts the compose file and `make run` connect to."""

from __future__ import annotations

import datetime as dt
import ipaddress
import stat
import subprocess
import sys
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts/dev-certs.py"
CLIENTS = ("intake", "pathway", "referral", "notify", "ops")


def run(out: Path, *extra: str) -> str:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(out), *extra], capture_output=True, text=True, check=True
    )
    return done.stdout


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def verifier(ca: x509.Certificate, name: x509.GeneralName):
    builder = PolicyBuilder().store(Store([ca])).time(dt.datetime.now(dt.UTC))
    return builder.build_server_verifier(name)


def test_server_certificates_verify_against_the_ca_with_their_names(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    run(out, "--nats-san", "nats.nats.svc.cluster.local")
    ca = load(out / "ca.crt")
    nats = load(out / "nats-server.crt")
    postgres = load(out / "postgres-server.crt")
    for cert, names in (
        (
            nats,
            [
                "nats1",
                "nats2",
                "nats3",
                "nats-1",
                "nats-2",
                "nats-3",
                "localhost",
                "nats.nats.svc.cluster.local",
            ],
        ),
        (postgres, ["postgres", "localhost"]),
    ):
        cert.verify_directly_issued_by(ca)
        for name in names:
            verifier(ca, x509.DNSName(name)).verify(cert, [])
        verifier(ca, x509.IPAddress(ipaddress.ip_address("127.0.0.1"))).verify(cert, [])
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert set(names) <= set(sans.get_values_for_type(x509.DNSName))
        assert ipaddress.ip_address("127.0.0.1") in sans.get_values_for_type(x509.IPAddress)
    # Routes present the NATS server certificate as clients too.
    eku = nats.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH} <= set(eku)
    try:
        verifier(ca, x509.DNSName("elsewhere.example")).verify(postgres, [])
    except Exception:
        pass
    else:
        raise AssertionError("a certificate verified for a name it does not carry")


def test_client_certificates_per_service_and_keys_private(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    run(out, "--client", "clinic-c1")
    ca = load(out / "ca.crt")
    for client in (*CLIENTS, "clinic-c1"):
        cert = load(out / f"{client}.crt")
        cert.verify_directly_issued_by(ca)
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    keys = list(out.glob("*.key"))
    assert len(keys) == len(CLIENTS) + 1 + 3  # clients, clinic, CA, two servers
    for key in keys:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    assert stat.S_IMODE(out.stat().st_mode) == 0o700


def test_a_second_run_keeps_everything(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    run(out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert "nothing new" in run(out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    run(out, "--client", "clinic-c2")
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(after) - set(before) == {"clinic-c2.crt", "clinic-c2.key"}
    assert all(after[name] == data for name, data in before.items())
    load(out / "clinic-c2.crt").verify_directly_issued_by(load(out / "ca.crt"))
