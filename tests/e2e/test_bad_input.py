"""Schemathesis against each service's OpenAPI document, as a real client over HTTP: no 5xx,
every status and content type documented (4xx are problem+json), at least 1,000 generated
requests per service."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from care_shared.testing.nats_server import NatsServer
from care_shared.testing.polling import eventually
from tests.e2e.conftest import SERVICES, Network

pytestmark = pytest.mark.e2e
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
MIN_REQUESTS = 1000


def schemathesis_binary() -> str:
    found = Path(sys.executable).parent / "schemathesis"
    return str(found) if found.exists() else (shutil.which("schemathesis") or "schemathesis")


def run_schemathesis(url: str, key: str, max_examples: int, workdir: Path) -> tuple[int, str]:
    out = subprocess.run(
        [
            schemathesis_binary(), "run", f"{url}/openapi.json",
            "-H", f"Authorization: Bearer {key}",
            "--checks", CHECKS,
            "--max-examples", str(max_examples),
            "--seed", "1",
            "--no-color",
        ],
        capture_output=True, text=True, timeout=600, cwd=workdir,
    )
    return out.returncode, out.stdout + out.stderr


@pytest.fixture
def quiet_network(own_nats: NatsServer, tmp_path: Path) -> Iterator[Network]:
    """The four services without the span file: thousands of requests would only fill it."""
    off = {"CARE_TRACE_FILE": ""}
    net = Network(own_nats, tmp_path, {s: off for s in SERVICES})
    try:
        yield net.start()
    finally:
        net.stop()


async def test_generated_requests_never_break_a_service(quiet_network: Network) -> None:
    network = quiet_network
    key = network.add_clinic("Fuzz clinic")
    async with httpx.AsyncClient() as http:
        async def everyone_knows_the_key() -> bool:
            codes = [(await http.get(f"{network.url(s)}/v1/patients/x/seen" if s != "intake" else f"{network.url(s)}/v1/patients/x", headers={"Authorization": f"Bearer {key}"})).status_code for s in SERVICES]
            return all(c == 404 for c in codes)
        await eventually(everyone_knows_the_key, timeout=30, what="every service to know the clinic's key")

        examples = {}
        for s in SERVICES:
            spec = (await http.get(f"{network.url(s)}/openapi.json")).json()
            operations = sum(len(methods) for methods in spec["paths"].values())
            # Schemathesis keeps only part of what it may generate (duplicates, small
            # enums): aim well above the floor.
            examples[s] = min(800, -(-3 * MIN_REQUESTS // operations))

    results = await asyncio.gather(
        *(asyncio.to_thread(run_schemathesis, network.url(s), key, examples[s], network.workdir) for s in SERVICES)
    )
    for service, (code, output) in zip(SERVICES, results, strict=True):
        generated = re.search(r"(\d+) generated", output)
        assert code == 0, f"{service}:\n{output[-4000:]}"
        assert generated and int(generated.group(1)) >= MIN_REQUESTS, f"{service}: {generated and generated.group(0)}\n{output[-1500:]}"
