"""Idempotency-Key (issue 12): the same request re-serialised is the same request; a key is
remembered for 24 hours, after which it is forgotten and a request with it is new."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from care_shared.eventstore import idempotency_keys
from tests.integration.intake.conftest import Intake


async def test_a_key_is_forgotten_after_24_hours(intake: Intake) -> None:
    pid = await intake.new_patient()
    body = {"onset_date": "2026-01-05", "severity": "severe"}
    headers = {**intake.auth(), "Idempotency-Key": "episode-once", "Content-Type": "application/json"}
    first = await intake.client.post(
        f"/v1/patients/{pid}/episodes", content=json.dumps(body), headers=headers
    )
    assert first.status_code == 201
    spaced = await intake.client.post(
        f"/v1/patients/{pid}/episodes", content=json.dumps(body, indent=2, sort_keys=True), headers=headers
    )
    assert spaced.json()["id"] == first.json()["id"]  # the same request, spelled differently
    stored = await intake.stored_counts()

    async with intake.runtime.db.transaction() as s:
        await s.execute(update(idempotency_keys).values(created_at=datetime.now(UTC) - timedelta(hours=25)))
    later = await intake.client.post(
        f"/v1/patients/{pid}/episodes", content=json.dumps({**body, "severity": "mild"}), headers=headers
    )
    assert later.status_code == 201 and later.json()["id"] != first.json()["id"]  # a new request, not a 422
    assert await intake.stored_counts() == stored + 1
