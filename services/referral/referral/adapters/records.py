"""Adapters: loading a referral from its stream and appending what the domain decided, the
directory and its streams, and the read models written in the same transaction. The
orchestration (load, decide, append) is referral.handlers'."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from care_shared.aggregates import AggregateStore
from care_shared.contracts import EventData, decode
from care_shared.contracts.referral import (
    DirectoryClinicChanged,
    DirectoryClinicRegistered,
    TaskDispatched,
)
from care_shared.envelope import new_id
from care_shared.eventstore import EventStore
from care_shared.problems import NotFound
from care_shared.sql import upsert, utc
from referral import domain
from referral.adapters.tables import directory_clinics, referral_needs, tasks


def referral_stream(referral_id: str) -> str:
    return f"referral-{referral_id}"


def directory_stream(clinic_id: str) -> str:
    return f"directory-clinic-{clinic_id}"


def _iso(value: datetime | None) -> str | None:
    return utc(value).isoformat() if value else None


def week_start(now: datetime) -> datetime:
    """Capacity is weekly: Monday 00:00 UTC of the clock's current week."""
    day = utc(now).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


# --- the directory ---------------------------------------------------------------------------


def clinic_streams(store: EventStore) -> AggregateStore:
    return AggregateStore(store, subject=lambda e: e.clinic_id)  # type: ignore[attr-defined]


def _directory_clinic(row: Any) -> domain.DirectoryClinic:
    return domain.DirectoryClinic(
        clinic_id=row.clinic_id,
        name=row.name,
        region=row.region,
        capabilities=frozenset(row.capabilities),
        weekly_capacity=row.weekly_capacity,
        partner_clinic_id=row.partner_clinic_id,
    )


async def directory(session: AsyncSession) -> list[domain.DirectoryClinic]:
    rows = (await session.execute(select(directory_clinics).order_by(directory_clinics.c.name))).all()
    return [_directory_clinic(r) for r in rows]


async def directory_clinic(session: AsyncSession, clinic_id: str) -> domain.DirectoryClinic | None:
    row = (
        await session.execute(select(directory_clinics).where(directory_clinics.c.clinic_id == clinic_id))
    ).first()
    return _directory_clinic(row) if row else None


async def register_directory_clinic(
    session: AsyncSession,
    store: EventStore,
    *,
    name: str,
    region: str,
    capabilities: Sequence[str],
    weekly_capacity: int,
    partner_clinic_id: str | None,
    now: datetime,
) -> DirectoryClinicRegistered:
    clinic_id = new_id()
    event = DirectoryClinicRegistered(
        clinic_id=clinic_id,
        name=name,
        region=region,
        capabilities=sorted(set(capabilities)),
        weekly_capacity=weekly_capacity,
        partner_clinic_id=partner_clinic_id,
    )
    await clinic_streams(store).append(
        session, directory_stream(clinic_id), 0, [event], clinic_id=partner_clinic_id
    )
    await session.execute(
        insert(directory_clinics).values(
            clinic_id=clinic_id,
            name=name,
            region=region,
            capabilities=[str(c) for c in event.capabilities],
            weekly_capacity=weekly_capacity,
            partner_clinic_id=partner_clinic_id,
            registered_at=utc(now),
        )
    )
    return event


async def change_directory_clinic(
    session: AsyncSession, store: EventStore, clinic_id: str, changes: dict[str, Any]
) -> DirectoryClinicChanged | None:
    version = await store.current_version(session, directory_stream(clinic_id))
    if version == 0:
        raise NotFound("no such clinic in the directory", field="clinic_id")
    if "capabilities" in changes:
        changes["capabilities"] = sorted(set(changes["capabilities"]))
    event = DirectoryClinicChanged(clinic_id=clinic_id, **changes)
    if not changes:
        return None
    await clinic_streams(store).append(session, directory_stream(clinic_id), version, [event])
    values = {k: ([str(c) for c in v] if k == "capabilities" else v) for k, v in changes.items()}
    await session.execute(
        update(directory_clinics).where(directory_clinics.c.clinic_id == clinic_id).values(**values)
    )
    return event


async def clinic_loads(session: AsyncSession, now: datetime) -> dict[str, domain.ClinicLoad]:
    """Per clinic: referrals routed to it this week (capacity used) and its open queue."""
    routed = dict(
        (
            await session.execute(
                select(tasks.c.clinic_id, func.count())
                .where(
                    tasks.c.clinic_id.is_not(None),
                    tasks.c.routed_at >= week_start(now),
                    tasks.c.status != domain.CANCELLED,
                )
                .group_by(tasks.c.clinic_id)
            )
        ).all()
    )
    queue = dict(
        (
            await session.execute(
                select(tasks.c.clinic_id, func.count())
                .where(tasks.c.clinic_id.is_not(None), tasks.c.status.in_(domain.OPEN_STATUSES))
                .group_by(tasks.c.clinic_id)
            )
        ).all()
    )
    return {c: domain.ClinicLoad(routed.get(c, 0), queue.get(c, 0)) for c in set(routed) | set(queue)}


async def patient_region(session: AsyncSession, referring_clinic_id: str | None) -> str | None:
    """Intake records no address, so a patient's region is taken to be that of the clinic
    that refers them, when that clinic is in the directory (linked by its partner key)."""
    if not referring_clinic_id:
        return None
    return (
        await session.execute(
            select(directory_clinics.c.region)
            .where(directory_clinics.c.partner_clinic_id == referring_clinic_id)
            .order_by(directory_clinics.c.registered_at)
            .limit(1)
        )
    ).scalar_one_or_none()


# --- referrals -----------------------------------------------------------------------------


def _referral_subject(e: EventData) -> str:
    # The clinic's pulled copy is addressed to the clinic; all else to the patient.
    return e.clinic_id if isinstance(e, TaskDispatched) else e.patient_id  # type: ignore[attr-defined]


class Referrals:
    """Load a referral, append what the domain decided, and keep the queue row in step."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.streams = AggregateStore(store, subject=_referral_subject)

    async def load(
        self, session: AsyncSession, referral_id: str
    ) -> tuple[domain.Referral | None, str | None]:
        loaded = await self.streams.load(session, referral_stream(referral_id))
        return domain.fold(loaded.events), loaded.clinic_id

    async def load_many(
        self, session: AsyncSession, referral_ids: Sequence[str]
    ) -> dict[str, tuple[domain.Referral, str | None]]:
        """Several referrals in one read (the queue's answers), each with its owning clinic."""
        by_stream = await self.store.read_streams(session, [referral_stream(i) for i in referral_ids])
        found = {}
        for stored in by_stream.values():
            referral = domain.fold(decode(e.type, e.data) for e in stored)
            if referral is not None:
                found[referral.referral_id] = (referral, stored[0].meta.get("clinicid"))
        return found

    async def load_or_404(
        self, session: AsyncSession, referral_id: str
    ) -> tuple[domain.Referral, str | None]:
        referral, owner = await self.load(session, referral_id)
        if referral is None:
            raise NotFound("no such task", field="task_id")
        return referral, owner

    async def append(
        self,
        session: AsyncSession,
        referral: domain.Referral | None,
        owner: str | None,
        new_events: Sequence[EventData],
    ) -> domain.Referral:
        """Append at the version the decision was made on: a concurrent writer makes this
        raise ConcurrencyError, so of two coordinators claiming at once exactly one wins."""
        version = referral.version if referral else 0
        rid = new_events[0].referral_id  # type: ignore[attr-defined]
        # clinicid stays the referring clinic: other services key patient access on it.
        await self.streams.append(session, referral_stream(rid), version, new_events, clinic_id=owner)
        after = referral
        for e in new_events:
            after = domain.apply(after, e)
        assert after is not None
        await self._save_task(session, after, owner)
        return after

    async def present(self, session: AsyncSession, r: domain.Referral, now: datetime) -> dict[str, Any]:
        clinic = await directory_clinic(session, r.clinic_id) if r.clinic_id else None
        return present(r, clinic, now)

    async def _save_task(self, session: AsyncSession, r: domain.Referral, owner: str | None) -> None:
        row = await task_row(session, r, owner)
        stmt = upsert(session)(tasks).values(referral_id=r.referral_id, **row)
        await session.execute(stmt.on_conflict_do_update(index_elements=[tasks.c.referral_id], set_=row))


async def task_row(session: AsyncSession, r: domain.Referral, owner: str | None) -> dict[str, Any]:
    """The queue row of a referral: a projection of its events (and its clinic's directory
    entry), the same live and on a rebuild."""
    clinic = await directory_clinic(session, r.clinic_id) if r.clinic_id else None
    view = task_view(r, clinic)
    return {
        "patient_id": r.patient_id,
        "owner_clinic_id": owner,
        "need": r.need,
        "urgency": str(r.urgency),
        "status": r.status,
        "clinic_id": r.clinic_id,
        "partner_clinic_id": clinic.partner_clinic_id if clinic else None,
        "region": clinic.region if clinic else r.region,
        "claimed_by": r.claimed_by,
        "lease_until": utc(r.lease_until),
        "waiting_since": utc(r.unclaimed_since),
        "escalated_at": utc(r.escalated_at),
        "routed_at": utc(r.routed_at),
        "opened_at": utc(r.opened_at),
        "version": r.version,
        "view": view,
    }


def task_view(r: domain.Referral, clinic: domain.DirectoryClinic | None) -> dict[str, Any]:
    """The task as the API shows it (stored; `present` adds what depends on the time)."""
    return {
        "id": r.referral_id,
        "referral_id": r.referral_id,
        "patient_id": r.patient_id,
        "need": r.need,
        "urgency": str(r.urgency),
        "capabilities": list(r.capabilities),
        "reasons": list(r.reasons),
        "status": r.status,
        "clinic": {"id": clinic.clinic_id, "name": clinic.name, "region": clinic.region} if clinic else None,
        "clinic_id": r.clinic_id,
        "region": clinic.region if clinic else r.region,
        "patient_region": r.region,
        "missing_capabilities": list(r.missing),
        "not_offered_together": list(r.not_together),
        "unroutable_reason": r.unroutable_reason(),
        "declined_by": list(r.declined_by),
        "declines": list(r.declines),
        "claimed_by": r.claimed_by,
        "lease_until": _iso(r.lease_until),
        "appointment_at": _iso(r.appointment_at),
        "waiting_since": _iso(r.unclaimed_since),
        "escalated": r.is_escalated(),
        "escalated_at": _iso(r.escalated_at),
        "opened_at": _iso(r.opened_at),
        "routed_at": _iso(r.routed_at),
        "version": r.version,
        "history": [
            {k: (_iso(v) if isinstance(v, datetime) else v) for k, v in h.items()} for h in r.history
        ],
    }


def present(r: domain.Referral, clinic: domain.DirectoryClinic | None, now: datetime) -> dict[str, Any]:
    """The task as the API shows it at `now`: the domain says where it stands (a claim whose
    lease has run out is back in the queue, waiting since then)."""
    shown = task_view(r.as_at(now), clinic)
    if r.lease_ran_out(now):
        shown |= {"lease_until": _iso(r.lease_until), "lease_expired": True}
    return shown


async def latest_referral_for_need(session: AsyncSession, patient_id: str, need: str):
    """The patient's last referral for the need: its number (sequence) and id."""
    return (
        await session.execute(
            select(referral_needs.c.sequence, referral_needs.c.referral_id)
            .where(referral_needs.c.patient_id == patient_id, referral_needs.c.need == need)
            .order_by(referral_needs.c.sequence.desc())
            .limit(1)
        )
    ).first()


async def record_need(
    session: AsyncSession, patient_id: str, need: str, sequence: int, referral_id: str
) -> None:
    await session.execute(
        insert(referral_needs).values(
            patient_id=patient_id, need=need, sequence=sequence, referral_id=referral_id
        )
    )


async def waiting_since(session: AsyncSession, at_or_before: datetime) -> list[str]:
    """Tasks that may be waiting for a coordinator since `at_or_before` or earlier: queued,
    unroutable, or claimed with a lease that ended then (the domain decides on each)."""
    return list(
        (
            await session.execute(
                select(tasks.c.referral_id).where(
                    tasks.c.status.in_((*domain.WAITING, domain.CLAIMED)),
                    func.coalesce(tasks.c.lease_until, tasks.c.waiting_since) <= at_or_before,
                )
            )
        )
        .scalars()
        .all()
    )
