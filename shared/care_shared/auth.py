"""Clinic API keys: random bearer tokens, stored only as SHA-256 hashes.

Intake registers clinics (an operator command) and publishes `clinic-registered` with the
key's hash; every other service projects those events into the same tables, so a clinic
uses one key everywhere and no service ever holds a key in clear.

A random 256-bit token needs no slow password hash: SHA-256 of it cannot be reversed, and
a fast hash lets every request be checked with one indexed lookup.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import Request
from sqlalchemy import Boolean, Column, DateTime, MetaData, String, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncSession

from care_shared.problems import NotFound, Unauthorized
from care_shared.sql import upsert

KEY_PREFIX = "trd_"

access_metadata = MetaData()

clinic_keys = Table(
    "clinic_keys",
    access_metadata,
    Column("key_sha256", String(64), primary_key=True),
    Column("clinic_id", String(36), nullable=False, index=True),
    Column("active", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

patient_clinics = Table(
    "patient_clinics",
    access_metadata,
    Column("patient_id", String(36), primary_key=True),
    Column("clinic_id", String(36), nullable=False, index=True),
)

# Key events (registered, rotated, revoked) this service could not apply: while one is here,
# /readyz says so (an old key may still work here). Cleared when the event is applied, e.g.
# after `carectl dlq replay`.
access_event_failures = Table(
    "access_event_failures",
    access_metadata,
    Column("event_id", String(36), primary_key=True),
    Column("consumer", String(120), nullable=False),
    Column("type", String(160), nullable=False),
    Column("clinic_id", String(36), nullable=True),
    Column("error", Text, nullable=False),
    Column("failed_at", DateTime(timezone=True), nullable=False),
)


def generate_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Clinic:
    clinic_id: str


async def record_clinic_key(
    session: AsyncSession, clinic_id: str, key_sha256: str, *, replaces_sha256: str | None = None
) -> None:
    """Project clinic-registered / clinic-key-rotated, in whatever order they arrive: a key
    that a rotation replaced is recorded inactive first, so its registration, arriving
    later, cannot bring it back."""
    now = datetime.now(UTC)
    insert_or_update = upsert(session)
    if replaces_sha256:
        await session.execute(
            insert_or_update(clinic_keys)
            .values(key_sha256=replaces_sha256, clinic_id=clinic_id, active=False, created_at=now)
            .on_conflict_do_update(index_elements=["key_sha256"], set_={"active": False})
        )
    await session.execute(
        insert_or_update(clinic_keys)
        .values(key_sha256=key_sha256, clinic_id=clinic_id, active=True, created_at=now)
        .on_conflict_do_nothing()
    )


async def revoke_clinic_key(session: AsyncSession, clinic_id: str, key_sha256: str) -> None:
    """Project clinic-key-revoked: the key is inactive for good, whatever arrives after
    (a late registration or rotation that names it inserts nothing over this row)."""
    await session.execute(
        upsert(session)(clinic_keys)
        .values(key_sha256=key_sha256, clinic_id=clinic_id, active=False, created_at=datetime.now(UTC))
        .on_conflict_do_update(index_elements=["key_sha256"], set_={"active": False})
    )


async def record_patient_clinic(session: AsyncSession, patient_id: str, clinic_id: str) -> None:
    stmt = (
        upsert(session)(patient_clinics)
        .values(patient_id=patient_id, clinic_id=clinic_id)
        .on_conflict_do_nothing()
    )
    await session.execute(stmt)


async def clinic_for_key(session: AsyncSession, key: str) -> Clinic | None:
    row = (
        await session.execute(
            select(clinic_keys.c.clinic_id).where(
                clinic_keys.c.key_sha256 == hash_key(key), clinic_keys.c.active.is_(True)
            )
        )
    ).first()
    return Clinic(row.clinic_id) if row else None


async def ensure_patient_of(session: AsyncSession, clinic: Clinic, patient_id: str) -> None:
    """Another clinic's patient is indistinguishable from no patient: 404, never a leak."""
    owner = (
        await session.execute(
            select(patient_clinics.c.clinic_id).where(patient_clinics.c.patient_id == patient_id)
        )
    ).scalar_one_or_none()
    if owner != clinic.clinic_id:
        raise NotFound("no such patient", field="patient_id")


def bearer_key(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("an API key is required: Authorization: Bearer <key>", field="Authorization")
    return token.strip()
