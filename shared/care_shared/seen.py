"""What a consuming service has received for a patient: the `seen_events` log.

Each consumer records every event it accepted (after the inbox check, in the same
transaction), and `GET /v1/patients/{id}/seen` shows it to the patient's clinic, so the flow
through the network is visible end to end.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from care_shared.auth import Clinic, access_metadata, ensure_patient_of
from care_shared.envelope import Envelope

seen_events = sa.Table(
    "seen_events",
    access_metadata,
    sa.Column("consumer", sa.String(120), primary_key=True),
    sa.Column("event_id", sa.String(36), primary_key=True),
    sa.Column("patient_id", sa.String(36), nullable=False, index=True),
    sa.Column("type", sa.String(160), nullable=False),
    sa.Column("source", sa.String(40), nullable=False),
    sa.Column("sequence", sa.Integer, nullable=True),
    sa.Column("caused_by", sa.String(36), nullable=True),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
)


def create_seen_table() -> None:
    """Migration helper (schema version 1 of seen_events)."""
    from alembic import op

    op.create_table(
        "seen_events",
        sa.Column("consumer", sa.String(120), primary_key=True),
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("patient_id", sa.String(36), nullable=False, index=True),
        sa.Column("type", sa.String(160), nullable=False),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("sequence", sa.Integer, nullable=True),
        sa.Column("caused_by", sa.String(36), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )


async def record_seen(
    session: AsyncSession, consumer: str, envelope: Envelope, patient_id: str, caused_by: str | None = None
) -> None:
    await session.execute(
        sa.insert(seen_events).values(
            consumer=consumer,
            event_id=envelope.id,
            patient_id=patient_id,
            type=envelope.type,
            source=envelope.source,
            sequence=envelope.sequence,
            caused_by=caused_by,
            received_at=datetime.now(UTC),
        )
    )


async def position_holder(
    session: AsyncSession, consumer: str, patient_id: str, envelope: Envelope
) -> str | None:
    """The id of another event this consumer already took at the same position of the same
    producer's patient stream, if any: two events cannot both be version N of one stream."""
    if envelope.sequence is None:
        return None
    held = await session.scalar(
        sa.select(seen_events.c.event_id)
        .where(
            seen_events.c.consumer == consumer,
            seen_events.c.patient_id == patient_id,
            seen_events.c.source == envelope.source,
            seen_events.c.type.like(f"care.{envelope.event_type.service}.%"),
            seen_events.c.sequence == envelope.sequence,
            seen_events.c.event_id != envelope.id,
        )
        .limit(1)
    )
    return held


def seen_router(current_clinic, runtime_of) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["flow"])

    @router.get(
        "/patients/{patient_id}/seen",
        summary="Events this service has received for the patient, in arrival order",
    )
    async def seen(patient_id: str, request: Request, clinic: Clinic = Depends(current_clinic)):
        db = runtime_of(request).db
        async with db.read() as session:
            await ensure_patient_of(session, clinic, patient_id)
            rows = (
                await session.execute(
                    sa.select(seen_events)
                    .where(seen_events.c.patient_id == patient_id)
                    .order_by(seen_events.c.received_at, seen_events.c.event_id)
                )
            ).all()
        return [
            {
                "event_id": r.event_id,
                "type": r.type,
                "source": r.source,
                "sequence": r.sequence,
                "caused_by": r.caused_by,
                "consumer": r.consumer,
                "received_at": r.received_at,
            }
            for r in rows
        ]

    return router
