"""The HTTP edge of real `python -m <service> serve` processes (uvicorn), tried as a careless
or hostile client would (issue 12): bodies too large with and without a key, non-finite
numbers in every numeric field, addresses that are lists or carry NULs, query strings that
must not reach spans, made-up methods that must not become metric series, security headers,
and the idempotency check on canonical JSON."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from care_shared.testing.nats_server import NatsServer
from care_shared.testing.polling import eventually
from tests.e2e.conftest import Network

pytestmark = pytest.mark.e2e

TEN_MB = 10 * 1024 * 1024


@pytest.fixture
def edge_network(own_nats: NatsServer, tmp_path: Path) -> Iterator[Network]:
    net = Network(own_nats, tmp_path)
    for name in ("pathway", "referral"):  # not needed here: fewer processes on a small machine
        del net.services[name]
    try:
        yield net.start()
    finally:
        net.stop()


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))


def raw_post(
    port: int, path: str, size: int, headers: dict[str, str] | None = None, chunked: bool = False
) -> tuple[int, float]:
    """POST `size` bytes as a client that keeps sending whatever the server says: the status
    line and how long after the request's headers it came."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    lines += ["Transfer-Encoding: chunked"] if chunked else [f"Content-Length: {size}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    started = time.perf_counter()
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())

    def send_body() -> None:
        chunk = b"[" + b"1," * (32 * 1024)
        sent = 0
        try:
            while sent < size:
                part = chunk[: size - sent]
                sock.sendall(f"{len(part):x}\r\n".encode() + part + b"\r\n" if chunked else part)
                sent += len(part)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed: what we want

    sender = threading.Thread(target=send_body, daemon=True)
    sender.start()
    first = sock.recv(200)
    elapsed = time.perf_counter() - started
    sock.close()
    sender.join(timeout=10)
    return int(first.split(b" ", 2)[1]), elapsed


async def test_oversized_bodies_are_refused_before_they_are_read(edge_network: Network) -> None:
    network = edge_network
    key = network.add_clinic("Edge clinic")
    intake = network.services["intake"]
    port, pid = intake.port, intake.process.pid
    auth = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=intake.url, timeout=10) as http:
        await eventually(lambda: _status(http, "/v1/patients/x", auth, 404), what="intake to know the clinic")
        # Warm up the paths measured below, so what is measured is the bodies.
        for _ in range(3):
            raw_post(port, "/v1/patients", 1024)
            raw_post(port, "/v1/patients", 100_000, auth)

    before = rss_kib(pid)
    timings = []
    for _ in range(5):
        status, elapsed = raw_post(port, "/v1/patients", TEN_MB)
        assert status == 401
        timings.append(elapsed)
    status, elapsed = raw_post(port, "/v1/patients", TEN_MB, {"Authorization": "Bearer trd_not-a-key"})
    assert status == 401
    timings.append(elapsed)
    # Four at once, as in the issue: none is buffered.
    results = await asyncio.gather(
        *(asyncio.to_thread(raw_post, port, "/v1/patients", TEN_MB) for _ in range(4))
    )
    assert all(s == 401 for s, _ in results)
    # With a key: the declared length is refused at once; a chunked body once it passes 64 KB.
    status, elapsed_auth = raw_post(port, "/v1/patients", 1024 * 1024, auth)
    assert status == 413
    status, elapsed_chunked = raw_post(port, "/v1/patients", TEN_MB, auth, chunked=True)
    assert status == 413
    grown_mib = (rss_kib(pid) - before) / 1024
    slowest = max(timings + [e for _, e in results])
    print(
        f"\nedge: unauthenticated 10 MB refused in {slowest * 1000:.1f} ms at most, RSS grew {grown_mib:.1f} MiB; "
        f"authenticated 1 MB: {elapsed_auth * 1000:.1f} ms; chunked 10 MB: {elapsed_chunked * 1000:.1f} ms"
    )
    assert slowest < 0.1, timings
    assert grown_mib < 20

    async with httpx.AsyncClient(base_url=intake.url, timeout=10) as http:
        r = await http.post(
            "/v1/patients",
            content=b"{" + b" " * 70_000 + b"}",
            headers={**auth, "Content-Type": "application/json"},
        )
        assert r.status_code == 413 and r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["field"] == "body" and r.json()["limit_bytes"] == 64 * 1024
        # Under the limit, the same route works.
        ok = await http.post(
            "/v1/patients",
            json={"external_id": "edge-1", "birth_year": 1980, "sex": "female", "timezone": "UTC"},
            headers=auth,
        )
        assert ok.status_code == 201, ok.text


NONFINITE = ("1e400", "-1e400", "NaN", "Infinity", "-Infinity")


async def test_non_finite_numbers_are_a_422_naming_the_field_and_nothing_is_stored(
    edge_network: Network,
) -> None:
    network = edge_network
    key = network.add_clinic("Numbers clinic")
    auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=network.url("intake"), timeout=10) as http:
        patient = await eventually(
            lambda: _created(
                http,
                "/v1/patients",
                auth,
                {"external_id": "num-1", "birth_year": 1980, "sex": "male", "timezone": "UTC"},
            ),
            what="intake to accept the clinic",
        )
        pid = patient["id"]
        await _ok(http, f"/v1/patients/{pid}/episodes", auth, {"onset_date": "2026-01-05"})
        trial = await _ok(
            http,
            f"/v1/patients/{pid}/trials",
            auth,
            {
                "kind": "antidepressant",
                "agent": "sertraline",
                "dose_mg_per_day": 50,
                "started_on": "2026-01-10",
            },
        )
        events_before = len((await http.get(f"/v1/patients/{pid}/events", headers=auth)).json())
        appended_before = _appended((await http.get("/metrics")).text)

        # Every numeric field of intake's bodies; `{}` is where the number goes.
        cases = [
            (
                "/v1/patients",
                '{"external_id": "num-2", "birth_year": {}, "sex": "male", "timezone": "UTC"}',
                "birth_year",
            ),
            (
                f"/v1/patients/{pid}/trials",
                '{"kind": "antidepressant", "agent": "sertraline", "dose_mg_per_day": {}, "started_on": "2026-02-01"}',
                "dose_mg_per_day",
            ),
            (
                f"/v1/patients/{pid}/trials",
                '{"kind": "combination", "agents": [{"agent": "sertraline", "dose_mg_per_day": {}}], "started_on": "2026-02-01"}',
                "agents.0.dose_mg_per_day",
            ),
            (
                f"/v1/patients/{pid}/trials",
                '{"kind": "antidepressant", "agent": "sertraline", "started_on": "2026-02-01", "baseline": {"instrument": "PHQ-9", "score": {}}}',
                "baseline.score",
            ),
            (
                f"/v1/patients/{pid}/trials/{trial['id']}/completion",
                '{"ended_on": "2026-03-01", "max_dose_mg_per_day": {}}',
                "max_dose_mg_per_day",
            ),
            (
                f"/v1/patients/{pid}/trials/{trial['id']}/completion",
                '{"ended_on": "2026-03-01", "adherence_pct": {}}',
                "adherence_pct",
            ),
            (
                f"/v1/patients/{pid}/trials/{trial['id']}/completion",
                '{"ended_on": "2026-03-01", "sessions": {}}',
                "sessions",
            ),
            (
                f"/v1/patients/{pid}/trials/{trial['id']}/completion",
                '{"ended_on": "2026-03-01", "final": {"instrument": "PHQ-9", "score": {}}}',
                "final.score",
            ),
            (
                f"/v1/patients/{pid}/assessments",
                '{"instrument": "PHQ-9", "score": {}, "taken_on": "2026-03-01"}',
                "score",
            ),
            (
                f"/v1/patients/{pid}/assessments",
                '{"instrument": "PHQ-9", "score": 10, "item9": {}, "taken_on": "2026-03-01"}',
                "item9",
            ),
        ]
        for path, template, field in cases:
            for number in NONFINITE:
                r = await http.post(path, content=template.replace("{}", number), headers=auth)
                assert r.status_code == 422, (path, number, r.status_code, r.text)
                assert field in [e["field"] for e in r.json()["errors"]], (path, number, r.json())
        assert len((await http.get(f"/v1/patients/{pid}/events", headers=auth)).json()) == events_before
        assert _appended((await http.get("/metrics")).text) == appended_before
        # The record still reads (the 500s came from a stored Infinity).
        assert (await http.get(f"/v1/patients/{pid}", headers=auth)).status_code == 200

    async with httpx.AsyncClient(base_url=network.url("notify"), timeout=10) as http:
        await eventually(
            lambda: _status(http, f"/v1/patients/{pid}/contact", auth, 404), what="notify to know the patient"
        )
        for email in (
            "a@b.org,c",
            "x\x00y@example.org",
            "a@b.org\r\nBcc: c@d.org",
            "<a@b.org>",
            "a@b.org c@d.org",
            "no-at-sign",
        ):
            r = await http.put(
                f"/v1/patients/{pid}/contact",
                content=json.dumps({"email": email, "channel": "email", "reminders": True}),
                headers=auth,
            )
            assert r.status_code == 422 and r.json()["field"] == "email", (email, r.text)
        for phone in (
            "12345",
            "+4477009",
            "+1415555012345678",
            "+44 7700 900461; +1 415",
            "0044 7700 900461",
        ):
            r = await http.put(
                f"/v1/patients/{pid}/contact",
                json={"phone": phone, "channel": "sms", "reminders": True},
                headers=auth,
            )
            assert r.status_code == 422 and r.json()["field"] == "phone", (phone, r.text)
        r = await http.put(
            f"/v1/patients/{pid}/contact",
            json={
                "email": "Pat@Example.ORG",
                "phone": "+1 (415) 555-0123",
                "channel": "sms",
                "reminders": True,
            },
            headers=auth,
        )
        assert r.status_code == 200, r.text
        assert r.json()["phone"] == "+14155550123" and r.json()["email"] == "Pat@example.org"


async def test_spans_metrics_headers_and_idempotency_at_the_edge(edge_network: Network) -> None:
    network = edge_network
    key = network.add_clinic("Headers clinic")
    auth = {"Authorization": f"Bearer {key}"}
    intake = network.services["intake"]
    async with httpx.AsyncClient(base_url=intake.url, timeout=10) as http:
        patient = await eventually(
            lambda: _created(
                http,
                "/v1/patients",
                auth,
                {"external_id": "hdr-1", "birth_year": 1970, "sex": "female", "timezone": "UTC"},
            ),
            what="intake to accept the clinic",
        )
        pid = patient["id"]

        # A query string with an address in it: the route and ids reach the span, not it.
        assert (
            await http.get(f"/v1/patients/{pid}", params={"note": "jane.doe@example.org"}, headers=auth)
        ).status_code == 200
        # Made-up methods: one metric series between them, whatever they are called.
        for method in ("BREW", "PROPFIND", "X-TRY-1", "X-TRY-2"):
            await http.request(method, f"/v1/patients/{pid}", headers=auth)
        metrics = (await http.get("/metrics")).text
        assert 'method="other"' in metrics
        assert not re.search(r'method="(BREW|PROPFIND|X-TRY-1|X-TRY-2)"', metrics)

        async def span_written() -> bool:
            text = intake.trace_file.read_text() if intake.trace_file.exists() else ""
            return "/v1/patients/{patient_id}" in text

        await eventually(span_written, what="the request's span")
        spans = intake.trace_file.read_text()
        assert "jane.doe" not in spans and "note=" not in spans

        # Security headers: on the API's answers, its pages, and the edge's own refusals.
        for path, headers in (
            ("/openapi.json", {}),
            ("/v1/patients/x", {}),
            (f"/v1/patients/{pid}", auth),
            ("/docs", {}),
        ):
            r = await http.get(path, headers=headers)
            assert r.headers["x-content-type-options"] == "nosniff", path
            assert r.headers["x-frame-options"] == "DENY", path
            assert r.headers["referrer-policy"] == "no-referrer", path
            csp = r.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp, (path, csp)
        assert (await http.get("/docs/init.js")).status_code == 200

        # Idempotency compares the canonical JSON: a re-serialised retry is the same request.
        body = {"onset_date": "2026-01-05", "severity": "severe", "diagnosis": "mdd"}
        first = await http.post(
            f"/v1/patients/{pid}/episodes",
            content=json.dumps(body),
            headers={**auth, "Idempotency-Key": "ep-1", "Content-Type": "application/json"},
        )
        assert first.status_code == 201, first.text
        respelled = json.dumps(dict(reversed(list(body.items()))), indent=4)
        again = await http.post(
            f"/v1/patients/{pid}/episodes",
            content=respelled,
            headers={**auth, "Idempotency-Key": "ep-1", "Content-Type": "application/json"},
        )
        assert again.status_code == 201 and again.json()["id"] == first.json()["id"]
        other = await http.post(
            f"/v1/patients/{pid}/episodes",
            json={**body, "severity": "mild"},
            headers={**auth, "Idempotency-Key": "ep-1"},
        )
        assert other.status_code == 422 and other.json()["field"] == "Idempotency-Key"


def _appended(metrics: str) -> float:
    return sum(
        float(v) for v in re.findall(r"^care_events_appended_total\{[^}]*\} ([0-9.e+]+)$", metrics, re.M)
    )


async def _status(http: httpx.AsyncClient, path: str, headers: dict, status: int) -> bool:
    return (await http.get(path, headers=headers)).status_code == status


async def _created(http: httpx.AsyncClient, path: str, headers: dict, body: dict) -> dict | None:
    r = await http.post(path, json=body, headers=headers)
    return r.json() if r.status_code == 201 else None


async def _ok(http: httpx.AsyncClient, path: str, headers: dict, body: dict) -> dict:
    r = await http.post(path, json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()
