"""/readyz of a service run as a real process, as an orchestrator probes it: not ready while
NATS is away (naming the check that fails), ready again once it is back, without a restart."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from care_shared.db import sqlite_url_for
from care_shared.testing.nats_server import NatsServer
from care_shared.testing.polling import eventually
from care_shared.testing.processes import ServiceProcess

pytestmark = pytest.mark.e2e


async def test_readyz_is_503_naming_nats_while_it_is_down_and_200_once_it_is_back(
    own_nats: NatsServer, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": sqlite_url_for(tmp_path / "intake.db"), **own_nats.env("intake")}
    intake = ServiceProcess("intake", env, tmp_path).start()
    try:
        intake.wait_ready()
        async with httpx.AsyncClient(base_url=intake.url, timeout=5.0) as http:

            async def readyz(status: int) -> tuple[str, dict] | None:
                r = await http.get("/readyz")
                return (r.headers["content-type"], r.json()) if r.status_code == status else None

            own_nats.stop()
            content_type, body = await eventually(lambda: readyz(503), what="/readyz to see NATS gone")
            assert content_type.startswith("application/problem+json")
            assert body["status"] == 503
            assert body["checks"] == {"database": "ok", "migrations": "ok", "nats": "disconnected"}

            own_nats.start()  # the same port and store
            _, body = await eventually(lambda: readyz(200), timeout=30, what="/readyz once NATS is back")
            assert body == {"status": "ready", "checks": {"database": "ok", "migrations": "ok", "nats": "ok"}}
    finally:
        intake.stop()
