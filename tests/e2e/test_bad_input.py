"""Schemathesis against each service's OpenAPI document, as a real client over HTTP: no 5xx,
every status and content type documented (4xx are problem+json), at least 1,000 generated
requests per service. Then what schemathesis cannot generate (issue 12), for every operation
of every document: 1e400, NaN and Infinity in every numeric field of its body (a 422 naming
the field, nothing stored), and bodies past the limit with and without a key (413, 401)."""

from __future__ import annotations

import asyncio
import json
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
            schemathesis_binary(),
            "run",
            f"{url}/openapi.json",
            "-H",
            f"Authorization: Bearer {key}",
            "--checks",
            CHECKS,
            "--max-examples",
            str(max_examples),
            "--seed",
            "1",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=workdir,
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
            codes = [
                (
                    await http.get(
                        f"{network.url(s)}/v1/patients/x/seen"
                        if s != "intake"
                        else f"{network.url(s)}/v1/patients/x",
                        headers={"Authorization": f"Bearer {key}"},
                    )
                ).status_code
                for s in SERVICES
            ]
            return all(c == 404 for c in codes)

        await eventually(everyone_knows_the_key, timeout=30, what="every service to know the clinic's key")

        examples = {}
        for s in SERVICES:
            spec = (await http.get(f"{network.url(s)}/openapi.json")).json()
            operations = sum(len(methods) for methods in spec["paths"].values())
            # Schemathesis keeps only part of what it may generate (duplicates, small
            # enums): aim well above the floor.
            examples[s] = min(800, -(-3 * MIN_REQUESTS // operations))

    await non_finite_and_oversized(network, key)

    results = await asyncio.gather(
        *(
            asyncio.to_thread(run_schemathesis, network.url(s), key, examples[s], network.workdir)
            for s in SERVICES
        )
    )
    for service, (code, output) in zip(SERVICES, results, strict=True):
        generated = re.search(r"(\d+) generated", output)
        assert code == 0, f"{service}:\n{output[-4000:]}"
        assert generated and int(generated.group(1)) >= MIN_REQUESTS, (
            f"{service}: {generated and generated.group(0)}\n{output[-1500:]}"
        )


NONFINITE = ("1e400", "-1e400", "NaN", "Infinity", "-Infinity")


def _resolve(spec: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    for union in ("anyOf", "oneOf"):
        if union in schema:  # Optional[X]: the non-null branch
            branches = [b for b in schema[union] if b.get("type") != "null"]
            if branches:
                return _resolve(spec, branches[0])
    return schema


def numeric_paths(spec: dict, schema: dict, prefix: tuple = (), depth: int = 0) -> list[tuple]:
    """Every path to a number or integer in a body schema: ("agents", 0, "dose_mg_per_day")."""
    schema = _resolve(spec, schema)
    if depth > 5:
        return []
    if schema.get("type") in ("number", "integer"):
        return [prefix]
    if schema.get("type") == "array" and "items" in schema:
        return numeric_paths(spec, schema["items"], (*prefix, 0), depth + 1)
    found = []
    for name, sub in (schema.get("properties") or {}).items():
        found += numeric_paths(spec, sub, (*prefix, name), depth + 1)
    return found


def body_with(path: tuple, token: str) -> bytes:
    value: object = "__NUMBER__"
    for part in reversed(path):
        value = [value] if isinstance(part, int) else {part: value}
    return json.dumps(value).replace('"__NUMBER__"', token).encode()


async def non_finite_and_oversized(network: Network, key: str) -> None:
    auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(timeout=10) as http:
        appended_before = {s: _appended((await http.get(f"{network.url(s)}/metrics")).text) for s in SERVICES}
        tried = 0
        for s in SERVICES:
            base = network.url(s)
            spec = (await http.get(f"{base}/openapi.json")).json()
            for template, methods in spec["paths"].items():
                path = re.sub(r"\{[^}]+\}", "x", template)
                for method, operation in methods.items():
                    content = (operation.get("requestBody") or {}).get("content", {}).get("application/json")
                    if not content:
                        continue
                    # Past the body limit: 401 without a key (before the body), 413 with one.
                    big = b"[" + b"0," * 40_000 + b"0]"
                    r = await http.request(
                        method.upper(), base + path, content=big, headers={"Content-Type": "application/json"}
                    )
                    assert r.status_code == 401, (s, method, template, r.status_code)
                    r = await http.request(method.upper(), base + path, content=big, headers=auth)
                    assert r.status_code == 413 and r.json()["field"] == "body", (
                        s,
                        method,
                        template,
                        r.status_code,
                    )
                    for field_path in numeric_paths(spec, content["schema"]):
                        name = ".".join(str(p) for p in field_path)
                        for token in NONFINITE:
                            r = await http.request(
                                method.upper(),
                                base + path,
                                content=body_with(field_path, token),
                                headers=auth,
                            )
                            tried += 1
                            # A coordinator-only route refuses a clinic's key first (403).
                            assert r.status_code in (422, 403), (
                                s,
                                method,
                                template,
                                name,
                                token,
                                r.status_code,
                                r.text,
                            )
                            if r.status_code == 422:
                                fields = [e["field"] for e in r.json()["errors"]]
                                assert any(f == name or f.startswith(name + ".") for f in fields), (
                                    s,
                                    template,
                                    name,
                                    token,
                                    fields,
                                )
        assert tried >= 50, tried  # intake's numbers, referral's, at least
        for s in SERVICES:
            assert _appended((await http.get(f"{network.url(s)}/metrics")).text) == appended_before[s], (
                s
            )  # nothing stored


def _appended(metrics: str) -> float:
    return sum(
        float(v) for v in re.findall(r"^care_events_appended_total\{[^}]*\} ([0-9.e+]+)$", metrics, re.M)
    )
