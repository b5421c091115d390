"""The coordinators' web page in headless Chromium, against `python -m referral serve` as a
real process on a real nats-server: a coordinator claims, schedules and completes a task by
clicking. A screenshot is saved as a test artifact. The page is served with its security
headers (a CSP without inline script, which the page keeps to: the browser refuses nothing),
and axe-core finds no accessibility violation with tasks rendered."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from care_shared.contracts.pathway import AssessmentChanged
from care_shared.db import sqlite_url_for
from care_shared.envelope import nats_subject, new_event_id, to_envelope
from care_shared.testing.nats_server import NatsServer
from care_shared.testing.polling import eventually
from care_shared.testing.processes import ServiceProcess

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.e2e


def _browser_or_skip() -> None:
    missing = []
    if not CHROMIUM.exists():
        missing.append("chromium (scripts/ensure-chromium.sh)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing.append("playwright (pip)")
    if missing:
        message = "browser test needs " + " and ".join(missing)
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def service(own_nats: NatsServer, tmp_path: Path) -> Iterator[tuple[ServiceProcess, str]]:
    _browser_or_skip()
    svc = ServiceProcess(
        "referral",
        {"DATABASE_URL": sqlite_url_for(tmp_path / "referral.db"), **own_nats.env("referral")},
        tmp_path,
    )
    seeded = subprocess.run(
        [sys.executable, "-m", "referral", "demo-seed", "--key-file", str(tmp_path / "demo-coordinator.key")],
        env=svc.env_for_cli(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    key = json.loads(seeded.stdout.strip().splitlines()[-1])["coordinator_key"]
    assert (tmp_path / "demo-coordinator.key").read_text().strip() == key
    svc.start()
    try:
        svc.wait_ready()
        yield svc, key
    finally:
        svc.stop()


async def _axe_violations(page) -> list[dict]:
    """axe-core (as the axe-playwright-python wheel ships it) over the whole page: each
    violation with its rule, impact and the elements at fault."""
    import axe_playwright_python

    source = (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text()
    await page.evaluate(source)  # evaluated by the test, not a script the page's CSP must allow
    result = await page.evaluate("async () => await axe.run(document)")
    assert any(p["id"] == "label" for p in result["passes"])  # the form controls were checked
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in result["violations"]
    ]


async def _advise(server: NatsServer, patient_id: str) -> None:
    event = AssessmentChanged.model_validate(
        {
            "patient_id": patient_id,
            "as_of_event": new_event_id(),
            "assessment": {
                "status": "trd",
                "urgency": "urgent",
                "referral": {
                    "advised": True,
                    "capabilities": ["mood_disorder_clinic", "ect"],
                    "reasons": ["status trd", "suicidality (urgent)"],
                },
            },
        }
    )
    env = to_envelope(
        event_id=new_event_id(),
        source="/pathway",
        type=event.event_type,
        subject=patient_id,
        time=datetime.now(UTC),
        data=event.to_data(),
        sequence=1,
        traceparent=None,
        clinicid=None,
    )
    nc = await server.connect()
    try:
        await nc.jetstream().publish(
            nats_subject(event.event_type, patient_id),
            env.model_dump_json().encode(),
            headers={"Nats-Msg-Id": env.id},
        )
    finally:
        await nc.drain()


async def test_a_coordinator_claims_schedules_and_completes_by_clicking(
    service, own_nats: NatsServer
) -> None:
    from playwright.async_api import async_playwright, expect

    svc, key = service
    patient_id = "0b6f2b1e-5d8c-4a4e-9d55-1f6f3c2a9e01"
    await _advise(own_nats, patient_id)
    auth = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=svc.url, headers=auth, timeout=5) as http:

        async def task() -> dict | None:
            tasks = (await http.get("/v1/tasks")).json()
            return next((t for t in tasks if t["patient_id"] == patient_id), None)

        queued = await eventually(task, timeout=30, what="the referral task in the queue")
        assert queued["clinic"]["name"]  # routed to a demo clinic offering ECT

        ARTIFACTS.mkdir(exist_ok=True)
        async with async_playwright() as p:
            browser = await p.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
            )
            try:
                page = await browser.new_page(viewport={"width": 1280, "height": 720})
                refused: list[str] = []
                page.on(
                    "console",
                    lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
                )
                response = await page.goto(f"{svc.url}/coordinator")
                headers = response.headers
                csp = headers["content-security-policy"]
                assert (
                    "script-src 'self'" in csp
                    and "unsafe-inline" not in csp
                    and "frame-ancestors 'none'" in csp
                )
                assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
                assert headers["referrer-policy"] == "no-referrer"
                await page.fill("#key", key)
                await page.click("#save-key")
                row = page.locator(f"tr[data-task='{queued['id']}']")
                await expect(row).to_be_visible()
                await expect(row.locator(".urgency.urgent")).to_be_visible()
                await expect(row).to_contain_text("suicidality (urgent)")  # pathway's reasons
                assert await page.locator("#tasks tr[data-task]").count() >= 1
                violations = await _axe_violations(page)
                assert violations == [], violations

                await row.locator("button[data-action=claim]").click()
                await expect(row.locator("[data-status]")).to_have_text("claimed")
                # Claimed, the row shows its form controls (appointment time, decline reason).
                assert await _axe_violations(page) == []
                await row.locator("input[data-field=appointment_at]").fill("2031-03-04T09:30")
                await row.locator("button[data-action=schedule]").click()
                await expect(row.locator("[data-status]")).to_have_text("scheduled")
                await page.screenshot(path=str(ARTIFACTS / "coordinator.png"), full_page=True)
                await row.locator("button[data-action=complete]").click()
                await expect(page.locator("#message")).to_contain_text("task now completed")
                await expect(row).to_have_count(0)  # gone from the open queue
            finally:
                await browser.close()

        done = (await http.get(f"/v1/tasks/{queued['id']}")).json()
        assert done["status"] == "completed" and done["appointment_at"].startswith("2031-03-04")
        assert [e["event"] for e in done["history"]][-3:] == ["claimed", "scheduled", "completed"]
    assert not refused, refused  # nothing on the page needed what its CSP forbids
    assert (ARTIFACTS / "coordinator.png").stat().st_size > 10_000
    # Ids only in the service's log: no reasons text (clinical facts) leaked there.
    assert "suicidality" not in svc.log_path.read_text(errors="replace")
