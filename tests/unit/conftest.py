"""The unit tier: no network, no database, no subprocess, so it runs anywhere in seconds
(`make test-unit`). Each test here is held to that: a socket other than the event loop's own
(AF_UNIX) fails (pytest-socket), and so does opening a database or starting a process."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from pytest_socket import disable_socket, enable_socket

from care_shared import db


class NotInTheUnitTier(RuntimeError):
    pass


def _refuse(what: str):
    def refuse(*args, **kwargs):
        raise NotInTheUnitTier(f"{what} in a unit test: it belongs in tests/integration")

    return refuse


@pytest.fixture(autouse=True)
def unit_tier_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    disable_socket(allow_unix_socket=True)
    monkeypatch.setattr(db.Database, "__init__", _refuse("a database"))
    monkeypatch.setattr(subprocess.Popen, "__init__", _refuse("a subprocess"))
    yield
    enable_socket()
