"""PostgreSQL past loopback: the role's password comes from a secret file and TLS is verified
(host name included) against the CA named by DATABASE_SSL_ROOT_CERT."""

from __future__ import annotations

import importlib.util
import ssl
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from care_shared.db import Database, postgres_connect_args
from care_shared.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[3]


def dev_certs(tmp_path: Path) -> Path:
    spec = importlib.util.spec_from_file_location("dev_certs", ROOT / "scripts/dev-certs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "certs"
    module.generate(out)
    return out


def test_the_password_file_fills_the_url_and_the_ca_gives_a_verifying_context(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cr/et@:x\n")
    certs = dev_certs(tmp_path)
    url, args = postgres_connect_args(
        "postgresql+asyncpg://intake@postgres:5432/intake",
        password_file=str(secret),
        ssl_root_cert=str(certs / "ca.crt"),
    )
    parsed = make_url(url)
    assert parsed.password == "s3cr/et@:x" and parsed.username == "intake" and parsed.database == "intake"
    context = args["ssl"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_without_them_nothing_changes() -> None:
    url = "postgresql+asyncpg://intake:pw@postgres:5432/intake"
    assert postgres_connect_args(url) == (url, {})


def test_an_empty_password_file_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("\n")
    with pytest.raises(ValueError, match="empty"):
        postgres_connect_args("postgresql+asyncpg://intake@postgres/intake", password_file=str(secret))


def test_settings_reach_the_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "password"
    secret.write_text("pw")
    certs = dev_certs(tmp_path)
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://notify@postgres:5432/notify")
    monkeypatch.setenv("DATABASE_PASSWORD_FILE", str(secret))
    monkeypatch.setenv("DATABASE_SSL_ROOT_CERT", str(certs / "ca.crt"))
    db = Database.from_settings(ServiceSettings())
    assert db.engine.url.password == "pw"
    sqlite = Database.from_settings(ServiceSettings(database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db"))
    assert sqlite.is_sqlite
