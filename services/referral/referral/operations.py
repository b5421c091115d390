"""Operator commands: add a coordinator (the key is shown once), and seed the demo network
that `make run` starts with (a few directory clinics and a demo coordinator)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from care_shared.cli import key_command
from care_shared.migrations import migrate
from care_shared.service import Runtime
from referral.access import add_coordinator, coordinator_key_known, revoke_coordinator, rotate_coordinator_key
from referral.adapters.records import directory, register_directory_clinic

DEMO_CLINICS = (
    (
        "Northside Mood Disorders Centre",
        "north",
        ["mood_disorder_clinic", "ect", "esketamine", "psychotherapy"],
        10,
    ),
    (
        "Riverside Interventional Psychiatry",
        "north",
        ["mood_disorder_clinic", "rtms", "ketamine", "esketamine"],
        6,
    ),
    (
        "Southgate Neuromodulation and Trials",
        "south",
        ["mood_disorder_clinic", "ect", "rtms", "vns", "dbs", "clinical_trials"],
        4,
    ),
    ("Harbour Psychotherapy Service", "south", ["psychotherapy"], 20),
)


def _read_key(key_file: str | None) -> str | None:
    return Path(key_file).read_text().strip() if key_file and Path(key_file).exists() else None


def _write_key(key_file: str, key: str) -> None:
    path = Path(key_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")


async def _coordinator(runtime: Runtime, name: str, key_file: str | None) -> dict[str, str]:
    """With --key-file: reuse the key in the file if this database knows it, else make a new
    coordinator and write the key there (mode 600)."""
    existing = _read_key(key_file)
    if existing and await coordinator_key_known(runtime, existing):
        return {"name": name, "api_key": existing, "existing": "true"}
    made = await add_coordinator(runtime, name)
    if key_file:
        _write_key(key_file, made["api_key"])
    return made


def add_coordinator_command(runtime: Runtime, name: str, key_file: str | None) -> int:
    async def run() -> dict[str, str]:
        try:
            await migrate(runtime.db, runtime.migrations)
            return await _coordinator(runtime, name, key_file)
        finally:
            await runtime.db.dispose()

    print(json.dumps(asyncio.run(run())))
    return 0


def rotate_coordinator_key_command(runtime: Runtime, current_key: str) -> int:
    async def step() -> dict[str, str]:
        await migrate(runtime.db, runtime.migrations)
        return await rotate_coordinator_key(runtime, current_key)

    return key_command(runtime.db, step)


def revoke_coordinator_command(runtime: Runtime, coordinator_id: str) -> int:
    async def step() -> dict[str, str]:
        await migrate(runtime.db, runtime.migrations)
        return await revoke_coordinator(runtime, coordinator_id)

    return key_command(runtime.db, step)


async def seed_demo(runtime: Runtime, key_file: str | None, partner_clinic_id: str | None = None) -> dict:
    """Idempotent: clinics only into an empty directory; the coordinator's key is reused."""
    await migrate(runtime.db, runtime.migrations)
    async with runtime.db.transaction() as session:
        if not await directory(session):
            for i, (name, region, capabilities, capacity) in enumerate(DEMO_CLINICS):
                await register_directory_clinic(
                    session,
                    runtime.store,
                    name=name,
                    region=region,
                    capabilities=capabilities,
                    weekly_capacity=capacity,
                    # The demo partner clinic's referrals count as coming from the north.
                    partner_clinic_id=partner_clinic_id if i == 0 else None,
                    now=runtime.clock.now(),
                )
        clinics = await directory(session)
    coordinator = await _coordinator(runtime, "Demo coordinator", key_file)
    return {
        "coordinator_key": coordinator["api_key"],
        "coordinator_page": "/coordinator",
        "clinics": [
            {"id": c.clinic_id, "name": c.name, "region": c.region, "capabilities": sorted(c.capabilities)}
            for c in clinics
        ],
    }


def demo_seed_command(runtime: Runtime, key_file: str | None, partner_clinic_id: str | None) -> int:
    async def run() -> dict:
        try:
            return await seed_demo(runtime, key_file, partner_clinic_id)
        finally:
            await runtime.db.dispose()

    print(json.dumps(asyncio.run(run())))
    return 0
