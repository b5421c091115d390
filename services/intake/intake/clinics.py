"""Operator commands for partner clinics: register one and show its API key once."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from sqlalchemy import select

from care_shared.auth import clinic_keys, generate_api_key, hash_key, record_clinic_key, revoke_clinic_key
from care_shared.cli import key_command
from care_shared.contracts.intake import ClinicKeyRevoked, ClinicKeyRotated, ClinicRegistered
from care_shared.envelope import new_id
from care_shared.eventstore import NewEvent
from care_shared.migrations import migrate
from care_shared.outbox import OutboxRelay
from care_shared.service import Runtime
from intake.records import clinic_stream


async def add_clinic(runtime: Runtime, name: str, key: str | None = None) -> dict[str, str]:
    """Append clinic-registered (published through the outbox to every service) and record
    the key's hash here. Returns the key: it is shown once and stored nowhere in clear."""
    await migrate(runtime.db, runtime.migrations)
    clinic_id = new_id()
    api_key = key or generate_api_key()
    event = ClinicRegistered(clinic_id=clinic_id, name=name, key_sha256=hash_key(api_key))
    async with runtime.db.transaction() as session:
        await runtime.store.append(
            session,
            clinic_stream(clinic_id),
            0,
            [
                NewEvent(
                    type=event.event_type,
                    subject=clinic_id,
                    data=event.to_data(),
                    meta={"clinicid": clinic_id},
                )
            ],
        )
        await record_clinic_key(session, clinic_id, event.key_sha256)
    return {"clinic_id": clinic_id, "name": name, "api_key": api_key}


async def rotate_key(runtime: Runtime, current_key: str) -> dict[str, str]:
    """Replace a clinic's key: the old one stops working in every service as the event
    reaches it, the new one is shown once."""
    await migrate(runtime.db, runtime.migrations)
    old_hash = hash_key(current_key)
    async with runtime.db.transaction() as session:
        row = (
            await session.execute(
                select(clinic_keys.c.clinic_id).where(
                    clinic_keys.c.key_sha256 == old_hash, clinic_keys.c.active.is_(True)
                )
            )
        ).first()
        if row is None:
            raise LookupError("no active clinic key matches")
        clinic_id = row.clinic_id
        new_key = generate_api_key()
        event = ClinicKeyRotated(clinic_id=clinic_id, key_sha256=hash_key(new_key), replaces_sha256=old_hash)
        stream = clinic_stream(clinic_id)
        await runtime.store.append(
            session,
            stream,
            await runtime.store.current_version(session, stream),
            [
                NewEvent(
                    type=event.event_type,
                    subject=clinic_id,
                    data=event.to_data(),
                    meta={"clinicid": clinic_id},
                )
            ],
        )
        await record_clinic_key(session, clinic_id, event.key_sha256, replaces_sha256=old_hash)
    return {"clinic_id": clinic_id, "api_key": new_key}


async def revoke_clinic(runtime: Runtime, clinic_id: str) -> dict:
    """An operator revokes every active key of a clinic by the clinic's id, without the key:
    here at once, in every other service as clinic-key-revoked reaches it. The outbox is
    published from this command too, so that takes a moment, not the relay's next poll."""
    await migrate(runtime.db, runtime.migrations)
    async with runtime.db.transaction() as session:
        hashes = (
            (
                await session.execute(
                    select(clinic_keys.c.key_sha256).where(
                        clinic_keys.c.clinic_id == clinic_id, clinic_keys.c.active.is_(True)
                    )
                )
            )
            .scalars()
            .all()
        )
        known = (
            await session.execute(
                select(clinic_keys.c.key_sha256).where(clinic_keys.c.clinic_id == clinic_id)
            )
        ).first()
        if known is None:
            raise LookupError("no such clinic")
        stream = clinic_stream(clinic_id)
        version = await runtime.store.current_version(session, stream)
        new = []
        for key_sha256 in hashes:
            event = ClinicKeyRevoked(clinic_id=clinic_id, key_sha256=key_sha256)
            new.append(
                NewEvent(
                    type=event.event_type,
                    subject=clinic_id,
                    data=event.to_data(),
                    meta={"clinicid": clinic_id},
                )
            )
            await revoke_clinic_key(session, clinic_id, key_sha256)
        if new:
            await runtime.store.append(session, stream, version, new)
    published = await publish_now(runtime) if new else 0
    return {"clinic_id": clinic_id, "revoked_keys": len(new), "published": published}


async def publish_now(runtime: Runtime, timeout: float = 5.0) -> int:
    """One pass of the outbox relay from this process: what the service's relay would send
    on its next poll. NATS away: nothing lost, the service's relay sends it later."""
    import nats

    from care_shared.nats_auth import client_options

    try:
        nc = await asyncio.wait_for(
            nats.connect(
                servers=runtime.settings.nats_servers(),
                allow_reconnect=False,
                **client_options(runtime.settings),
            ),
            timeout,
        )
    except Exception:
        return 0
    try:
        relay = OutboxRelay(
            runtime.db, runtime.source, lambda: nc.jetstream(), tracer_provider=runtime.tracer_provider
        )
        return await asyncio.wait_for(relay.publish_pending(), timeout)
    except Exception:
        return 0
    finally:
        await nc.close()


def revoke_clinic_command(runtime: Runtime, clinic_id: str) -> int:
    return key_command(runtime.db, lambda: revoke_clinic(runtime, clinic_id))


def rotate_key_command(runtime: Runtime, current_key: str) -> int:
    return key_command(runtime.db, lambda: rotate_key(runtime, current_key))


async def clinic_of_key(runtime: Runtime, key: str) -> str | None:
    await migrate(runtime.db, runtime.migrations)
    async with runtime.db.read() as session:
        row = (
            await session.execute(
                select(clinic_keys.c.clinic_id).where(clinic_keys.c.key_sha256 == hash_key(key))
            )
        ).first()
    return row.clinic_id if row else None


def add_clinic_command(runtime: Runtime, name: str, key_file: str | None) -> int:
    """With --key-file (for `make run`'s demo clinic): reuse the key in the file if this
    database knows it, else register a new clinic and write its key there (mode 600)."""

    existing_key = Path(key_file).read_text().strip() if key_file and Path(key_file).exists() else None

    async def run() -> dict[str, str]:
        try:
            if existing_key:
                key = existing_key
                if clinic_id := await clinic_of_key(runtime, key):
                    return {"clinic_id": clinic_id, "name": name, "api_key": key, "existing": "true"}
            return await add_clinic(runtime, name)
        finally:
            await runtime.db.dispose()

    result = asyncio.run(run())
    if key_file and not result.get("existing"):
        path = Path(key_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(result["api_key"] + "\n")
    print(json.dumps(result))
    return 0
