"""Who is asking: a referral coordinator (their own key, kept here) or a partner clinic (its
key from intake's events). Coordinators work the whole network's queue; a clinic sees its own
patients' referrals and those sent to it, and changes nothing.

Keys are random tokens stored only as SHA-256 hashes (see care_shared.auth for why that is
enough); a coordinator's key is shown once, when it is made.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import Request
from sqlalchemy import insert, select, update

from care_shared.auth import Clinic, bearer_key, clinic_for_key, generate_api_key, hash_key
from care_shared.contracts.referral import CoordinatorKeyRevoked, CoordinatorKeyRotated, CoordinatorRegistered
from care_shared.envelope import new_id
from care_shared.eventstore import NewEvent
from care_shared.problems import ProblemError, Unauthorized
from care_shared.service import Runtime, runtime_of
from referral.adapters.tables import coordinators


class Forbidden(ProblemError):
    status = 403
    title = "Forbidden"
    slug = "forbidden"


@dataclass(frozen=True)
class Coordinator:
    coordinator_id: str
    name: str


Actor = Coordinator | Clinic


def coordinator_stream(coordinator_id: str) -> str:
    return f"coordinator-{coordinator_id}"


async def actor_for_key(runtime: Runtime, key: str) -> Actor | None:
    """A coordinator's active key, else a partner clinic's; None for anything else."""
    async with runtime.db.read() as session:
        row = (
            await session.execute(
                select(coordinators.c.coordinator_id, coordinators.c.name).where(
                    coordinators.c.key_sha256 == hash_key(key), coordinators.c.active.is_(True)
                )
            )
        ).first()
        if row:
            return Coordinator(row.coordinator_id, row.name)
        return await clinic_for_key(session, key)


async def current_actor(request: Request) -> Actor:
    """Who the edge found for the request's key (checked before the body was read)."""
    principal = getattr(request.state, "principal", None)
    if principal is not None:
        return principal
    actor = await actor_for_key(runtime_of(request), bearer_key(request))
    if actor is None:
        raise Unauthorized("unknown or revoked API key", field="Authorization")
    return actor


async def current_coordinator(request: Request) -> Coordinator:
    actor = await current_actor(request)
    if not isinstance(actor, Coordinator):
        raise Forbidden("only a referral coordinator may do this", field="Authorization")
    return actor


async def add_coordinator(runtime: Runtime, name: str, key: str | None = None) -> dict[str, str]:
    """Register a coordinator; the key is returned once and stored only as its hash."""
    coordinator_id = new_id()
    api_key = key or generate_api_key()
    event = CoordinatorRegistered(coordinator_id=coordinator_id, name=name, key_sha256=hash_key(api_key))
    async with runtime.db.transaction() as session:
        # Not published: a coordinator's key concerns no other service.
        await runtime.store.append(
            session,
            coordinator_stream(coordinator_id),
            0,
            [NewEvent(type=event.event_type, subject=coordinator_id, data=event.to_data())],
            publish=False,
        )
        await session.execute(
            insert(coordinators).values(
                coordinator_id=coordinator_id,
                name=name,
                key_sha256=event.key_sha256,
                active=True,
                created_at=datetime.now(UTC),
            )
        )
    return {"coordinator_id": coordinator_id, "name": name, "api_key": api_key}


async def rotate_coordinator_key(runtime: Runtime, current_key: str) -> dict[str, str]:
    """Replace a coordinator's key; the old one stops working at once, the new one is shown once."""
    old_hash = hash_key(current_key)
    async with runtime.db.transaction() as session:
        row = (
            await session.execute(
                select(coordinators.c.coordinator_id).where(
                    coordinators.c.key_sha256 == old_hash, coordinators.c.active.is_(True)
                )
            )
        ).first()
        if row is None:
            raise LookupError("no active coordinator key matches")
        new_key = generate_api_key()
        event = CoordinatorKeyRotated(
            coordinator_id=row.coordinator_id, key_sha256=hash_key(new_key), replaces_sha256=old_hash
        )
        stream = coordinator_stream(row.coordinator_id)
        await runtime.store.append(
            session,
            stream,
            await runtime.store.current_version(session, stream),
            [NewEvent(type=event.event_type, subject=row.coordinator_id, data=event.to_data())],
            publish=False,  # a coordinator's key concerns no other service
        )
        await session.execute(
            update(coordinators)
            .where(coordinators.c.coordinator_id == row.coordinator_id)
            .values(key_sha256=event.key_sha256)
        )
    return {"coordinator_id": row.coordinator_id, "api_key": new_key}


async def revoke_coordinator(runtime: Runtime, coordinator_id: str) -> dict[str, str]:
    """An operator revokes a coordinator's key by the coordinator's id, without the key: the
    next request with it is a 401 (every replica reads the same table). The coordinator's
    past work and its id in the audit stay; a new key is `coordinator add`."""
    async with runtime.db.transaction() as session:
        row = (
            await session.execute(
                select(coordinators.c.coordinator_id, coordinators.c.key_sha256, coordinators.c.active).where(
                    coordinators.c.coordinator_id == coordinator_id
                )
            )
        ).first()
        if row is None:
            raise LookupError("no such coordinator")
        if not row.active:
            return {"coordinator_id": coordinator_id, "revoked": "already"}
        event = CoordinatorKeyRevoked(coordinator_id=coordinator_id, key_sha256=row.key_sha256)
        stream = coordinator_stream(coordinator_id)
        await runtime.store.append(
            session,
            stream,
            await runtime.store.current_version(session, stream),
            [NewEvent(type=event.event_type, subject=coordinator_id, data=event.to_data())],
            publish=False,  # a coordinator's key concerns no other service
        )
        await session.execute(
            update(coordinators).where(coordinators.c.coordinator_id == coordinator_id).values(active=False)
        )
    return {"coordinator_id": coordinator_id, "revoked": "true"}


async def coordinator_key_known(runtime: Runtime, key: str) -> bool:
    async with runtime.db.read() as session:
        row = (
            await session.execute(
                select(coordinators.c.coordinator_id).where(coordinators.c.key_sha256 == hash_key(key))
            )
        ).first()
    return row is not None
