"""Referrals, pure: the routing rule, and the referral's life as a state machine.

A referral is a fold of its events; every command takes the referral as it stands and the
time from the service's clock, and returns the events it decides (or refuses with an
exception naming why). No I/O here: someone changing a rule reads and tests this module only.

The life of a referral (its task in the coordinators' queue):

    opened -> routed -> queued ----claim----> claimed --schedule--> scheduled --complete--> completed
           \\-> unroutable (no clinic fits)      |  \\--accept--> accepted --schedule--^
                                                 \\-- decline: re-routed to the next fitting clinic
    A claim is a lease: when it runs out, the task is back in the queue (no event needed: the
    lease's end is in the claim). Any open referral may be cancelled.

A patient has at most one open referral per need; once it is completed or cancelled, newer
advice for the need opens the next one when it is urgent or emergency, or more urgent than
the closed one was. An escalation belongs to one wait for a coordinator:
a claim, or a re-route after a decline, ends it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from care_shared.contracts import EventData
from care_shared.contracts.pathway import Urgency
from care_shared.contracts.referral import (
    ReferralAccepted,
    ReferralCancelled,
    ReferralCompleted,
    ReferralDeclined,
    ReferralEscalated,
    ReferralOpened,
    ReferralReassessed,
    ReferralRouted,
    ReferralScheduled,
    TaskClaimed,
    TaskDispatched,
    TaskQueued,
)
from care_shared.refusals import IllegalTransition, Rejected

# The queue's order: emergency first, then urgent, then routine (then oldest first).
URGENCY_RANK = {Urgency.EMERGENCY: 0, Urgency.URGENT: 1, Urgency.ROUTINE: 2}

# How long a task may wait unclaimed before it is escalated (issue 4).
ESCALATE_AFTER = {
    Urgency.EMERGENCY: timedelta(minutes=15),
    Urgency.URGENT: timedelta(hours=24),
    Urgency.ROUTINE: timedelta(days=5),
}

DEFAULT_LEASE = timedelta(minutes=15)

QUEUED, UNROUTABLE, CLAIMED, ACCEPTED, SCHEDULED, COMPLETED, CANCELLED = (
    "queued",
    "unroutable",
    "claimed",
    "accepted",
    "scheduled",
    "completed",
    "cancelled",
)
STATUSES = (QUEUED, UNROUTABLE, CLAIMED, ACCEPTED, SCHEDULED, COMPLETED, CANCELLED)
OPEN_STATUSES = (QUEUED, UNROUTABLE, CLAIMED, ACCEPTED, SCHEDULED)
WAITING = (QUEUED, UNROUTABLE)  # in the queue, nobody working it

_REFERRAL_NAMESPACE = uuid.UUID("6c1d3a52-6c0e-4d36-9b8e-2f4d6a1c9e11")


# --- needs and routing -------------------------------------------------------------------


def need_of(capabilities: Iterable[str]) -> str:
    """The kind of clinic a referral asks for; one open referral per patient and need.

    Pathway advises referral to a mood-disorder clinic (CLINICAL.md 7) and adds what that
    clinic must also offer (ECT, clinical trials...): a re-assessment that changes those
    details updates the same referral. Any other request is its own need, named by its
    capabilities in a fixed order so that the same advice always gives the same need.
    """
    caps = sorted(set(capabilities))
    if "mood_disorder_clinic" in caps or not caps:
        return "mood_disorder_clinic"
    return "+".join(caps)


def referral_id_for(patient_id: str, need: str, sequence: int = 1) -> str:
    """Deterministic: however often or in whatever order the advice arrives, it names the
    same referral (and its stream), so the same one cannot be opened twice. `sequence` counts
    the patient's referrals for the need (the next opens only once the last is closed); the
    first keeps the id it always had."""
    name = f"{patient_id}/{need}" if sequence == 1 else f"{patient_id}/{need}/{sequence}"
    return str(uuid.uuid5(_REFERRAL_NAMESPACE, name))


@dataclass(frozen=True)
class DirectoryClinic:
    clinic_id: str
    name: str
    region: str
    capabilities: frozenset[str]
    weekly_capacity: int
    partner_clinic_id: str | None = None


@dataclass(frozen=True)
class ClinicLoad:
    routed_this_week: int = 0
    queue: int = 0


@dataclass(frozen=True)
class Route:
    clinic: DirectoryClinic | None
    missing: tuple[str, ...] = ()  # needed, and no clinic offers it
    not_together: tuple[str, ...] = ()  # needed, each offered somewhere, but by no one clinic


def choose_clinic(
    capabilities: Iterable[str],
    patient_region: str | None,
    clinics: Sequence[DirectoryClinic],
    loads: dict[str, ClinicLoad],
    excluded: Iterable[str] = (),
) -> Route:
    """A clinic with every needed capability, preferring the patient's region, then the most
    capacity left this week, then the shortest queue (then name, so ties are stable). Never
    one in `excluded` (those that declined). No fit: what is missing, truthfully: the
    capabilities no clinic offers at all, and, when the others are each offered somewhere but
    no one clinic offers them all, those capabilities (they are missing together)."""
    needed = frozenset(capabilities)
    candidates = [c for c in clinics if c.clinic_id not in set(excluded)]
    fitting = [c for c in candidates if needed <= c.capabilities]
    if fitting:

        def preference(c: DirectoryClinic) -> tuple:
            load = loads.get(c.clinic_id, ClinicLoad())
            remaining = c.weekly_capacity - load.routed_this_week
            return (c.region != patient_region, -remaining, load.queue, c.name, c.clinic_id)

        return Route(min(fitting, key=preference))
    offered = frozenset().union(*(c.capabilities for c in candidates)) if candidates else frozenset()
    somewhere = needed & offered
    apart = len(somewhere) > 1 and not any(somewhere <= c.capabilities for c in candidates)
    return Route(
        None, missing=tuple(sorted(needed - offered)), not_together=tuple(sorted(somewhere)) if apart else ()
    )


def _listed_missing(route: Route) -> list[str]:
    """TaskQueued has one list for what is missing: a capability no clinic offers is named as
    it is; capabilities offered only apart are one entry, joined as a need is ("ect+rtms")."""
    return [*route.missing, *(["+".join(route.not_together)] if route.not_together else [])]


def _read_missing(listed: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """`_listed_missing` read back: (missing, not_together)."""
    missing = tuple(m for m in listed if "+" not in m)
    together = next((m for m in listed if "+" in m), "")
    return missing, tuple(together.split("+")) if together else ()


# --- the referral ------------------------------------------------------------------------


@dataclass(frozen=True)
class Referral:
    referral_id: str
    patient_id: str
    need: str
    urgency: Urgency
    capabilities: tuple[str, ...]
    reasons: tuple[str, ...]
    region: str | None
    as_of_event: str | None
    opened_at: datetime | None
    as_of_position: int | None = None
    status: str = QUEUED
    clinic_id: str | None = None
    routed_at: datetime | None = None
    missing: tuple[str, ...] = ()
    not_together: tuple[str, ...] = ()
    declined_by: tuple[str, ...] = ()
    declines: tuple[dict, ...] = ()
    claimed_by: str | None = None
    lease_until: datetime | None = None
    appointment_at: datetime | None = None
    unclaimed_since: datetime | None = None
    escalated_at: datetime | None = None
    version: int = 0
    history: tuple[dict, ...] = field(default=(), repr=False)

    # The lease rule, once: a claim holds the task until `lease_until`; from then on the task
    # is back in the queue (no event needed: the lease's end is in the claim), waiting since
    # the lease's end. Every reader of "is it claimed now?" goes through `as_at`.
    def lease_ran_out(self, now: datetime) -> bool:
        return self.status == CLAIMED and self.lease_until is not None and self.lease_until <= now

    def back_in_queue(self) -> Referral:
        """What a lapsed lease means: waiting again (queued, or unroutable without a clinic),
        nobody holding it, waiting since the lease's end."""
        return replace(
            self,
            status=QUEUED if self.clinic_id else UNROUTABLE,
            claimed_by=None,
            lease_until=None,
            unclaimed_since=self.lease_until,
        )

    def as_at(self, now: datetime) -> Referral:
        """The referral as it stands at `now`."""
        return self.back_in_queue() if self.lease_ran_out(now) else self

    def status_at(self, now: datetime) -> str:
        return self.as_at(now).status

    def waiting_since(self, now: datetime) -> datetime | None:
        r = self.as_at(now)
        return r.unclaimed_since if r.status in WAITING else None

    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def is_escalated(self) -> bool:
        """Escalated in the wait it is in now. An escalation says this wait ran past its limit,
        so it ends with the wait: when a coordinator claims the task, or a decline re-routes it
        (the new clinic's clock starts again). Waiting past the limit again escalates it again."""
        if self.status not in WAITING or self.escalated_at is None or self.unclaimed_since is None:
            return False
        return self.escalated_at > self.unclaimed_since  # escalating takes a wait past a limit

    def unroutable_reason(self) -> str | None:
        """Why no clinic fits, in words a coordinator reads beside the task."""
        if self.clinic_id is not None or not self.is_open():
            return None
        parts = []
        if self.missing:
            parts.append(f"no clinic offers {_and(self.missing)}")
        if self.not_together:
            parts.append(f"no one clinic offers {_and(self.not_together)} together")
        if not parts:
            return "no clinic in the directory fits" if self.status == UNROUTABLE else None
        return "; ".join(parts) + (" (not counting the clinics that declined)" if self.declined_by else "")


def _and(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def fold(events: Iterable[EventData]) -> Referral | None:
    referral: Referral | None = None
    for e in events:
        referral = apply(referral, e)
    return referral


def apply(r: Referral | None, e: EventData) -> Referral | None:
    if isinstance(e, ReferralOpened):
        return Referral(
            referral_id=e.referral_id,
            patient_id=e.patient_id,
            need=e.need,
            urgency=e.urgency,
            capabilities=tuple(e.capabilities),
            reasons=tuple(e.reasons),
            region=e.region,
            as_of_event=e.as_of_event,
            as_of_position=e.as_of_position,
            opened_at=e.at,
            version=1,
            history=({"event": "opened", "at": e.at},),
        )
    if r is None:
        return None
    r = replace(r, version=r.version + 1)
    note = {"at": getattr(e, "at", None)}
    if isinstance(e, ReferralReassessed):
        r = replace(
            r,
            urgency=e.urgency,
            capabilities=tuple(e.capabilities),
            reasons=tuple(e.reasons),
            as_of_event=e.as_of_event,
            as_of_position=e.as_of_position,
        )
        note |= {"event": "reassessed", "urgency": e.urgency}
    elif isinstance(e, ReferralRouted):
        r = replace(r, clinic_id=e.clinic_id, routed_at=e.at, missing=(), not_together=())
        note |= {"event": "routed", "clinic_id": e.clinic_id, "by": e.by}
    elif isinstance(e, TaskQueued):
        missing, not_together = _read_missing(e.missing_capabilities)
        r = replace(
            r,
            status=e.status,
            clinic_id=e.clinic_id,
            missing=missing,
            not_together=not_together,
            claimed_by=None,
            lease_until=None,
            unclaimed_since=r.unclaimed_since or e.at,
        )
        note |= {"event": "task-queued", "status": e.status, "missing_capabilities": e.missing_capabilities}
    elif isinstance(e, TaskDispatched):
        return r  # the clinic's copy of the task: nothing changes here
    elif isinstance(e, TaskClaimed):
        r = replace(
            r, status=CLAIMED, claimed_by=e.coordinator_id, lease_until=e.lease_until, unclaimed_since=None
        )
        note |= {"event": "claimed", "coordinator_id": e.coordinator_id, "lease_until": e.lease_until}
    elif isinstance(e, ReferralAccepted):
        r = replace(r, status=ACCEPTED, unclaimed_since=None)
        note |= {"event": "accepted", "clinic_id": e.clinic_id}
    elif isinstance(e, ReferralDeclined):
        r = replace(
            r,
            declined_by=(*r.declined_by, e.clinic_id),
            declines=(*r.declines, {"clinic_id": e.clinic_id, "reason": e.reason}),
            clinic_id=None,
            unclaimed_since=None,  # the wait for this clinic is over: the re-routed task starts a new one
        )
        note |= {"event": "declined", "clinic_id": e.clinic_id, "reason": e.reason}
    elif isinstance(e, ReferralScheduled):
        r = replace(r, status=SCHEDULED, appointment_at=e.appointment_at, unclaimed_since=None)
        note |= {"event": "scheduled", "appointment_at": e.appointment_at, "at": None}
    elif isinstance(e, ReferralCompleted):
        r = replace(r, status=COMPLETED, claimed_by=None, lease_until=None)
        note |= {"event": "completed"}
    elif isinstance(e, ReferralEscalated):
        # An escalation is only ever decided for a task waiting for a coordinator, so one of a
        # claimed task says its lease ran out: it is back in the queue, waiting since then.
        if r.status == CLAIMED:
            r = r.back_in_queue()
        r = replace(r, escalated_at=e.at, unclaimed_since=e.unclaimed_since)
        note |= {"event": "escalated", "urgency": e.urgency}
    elif isinstance(e, ReferralCancelled):
        r = replace(r, status=CANCELLED, claimed_by=None, lease_until=None)
        note |= {"event": "cancelled", "reason": e.reason}
    return replace(r, history=(*r.history, note))


# --- commands ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Advice:
    """Pathway's referral advice for one need."""

    urgency: Urgency
    capabilities: tuple[str, ...]
    reasons: tuple[str, ...]
    as_of_event: str | None
    # The AssessmentChanged's version in pathway's stream for the patient (its envelope's
    # sequence, checked to have come from pathway's stream): the order of pathway's advice.
    as_of_position: int | None = None


def take_advice(
    last: Referral | None,
    *,
    last_sequence: int,
    patient_id: str,
    advice: Advice,
    region: str | None,
    now: datetime,
    clinics: Sequence[DirectoryClinic],
    loads: dict[str, ClinicLoad],
) -> list[EventData]:
    """Pathway's advice for a need, given the patient's last referral for it (numbered
    `last_sequence`). Exactly one OPEN referral per patient and need: an open one is
    reassessed; when there is none yet, or the last one is closed (completed or cancelled),
    the advice opens the next when it is urgent or emergency (suicidality always refers,
    CLINICAL.md 5, however often), or more urgent than the closed one was. Routine advice
    after a closed referral opens nothing: a patient seen for this need is not re-referred by
    every later re-assessment that still advises it (a TRD status does for good). Advice no
    newer than what a closed referral already reflects (its own assessment redelivered, or an
    older one arriving late) was taken: nothing."""
    if last is not None and last.is_open():
        return reassess(last, advice, now, clinics, loads)
    if last is not None and not _newer(advice, last):
        return []
    if last is not None and not (
        advice.urgency in (Urgency.URGENT, Urgency.EMERGENCY) or _more_urgent(advice, last)
    ):
        return []
    return open_referral(
        patient_id=patient_id,
        advice=advice,
        region=region,
        now=now,
        clinics=clinics,
        loads=loads,
        sequence=last_sequence + 1,
    )


def _more_urgent(advice: Advice, r: Referral) -> bool:
    return URGENCY_RANK[advice.urgency] < URGENCY_RANK[r.urgency]


def _newer(advice: Advice, r: Referral) -> bool:
    """Later in pathway's stream for the patient. Never by ids: an id is only a name. A
    referral recorded before positions were kept takes the advice as newer."""
    if r.as_of_position is None or advice.as_of_position is None:
        return True
    return advice.as_of_position > r.as_of_position


def open_referral(
    *,
    patient_id: str,
    advice: Advice,
    region: str | None,
    now: datetime,
    clinics: Sequence[DirectoryClinic],
    loads: dict[str, ClinicLoad],
    sequence: int = 1,
) -> list[EventData]:
    need = need_of(advice.capabilities)
    referral_id = referral_id_for(patient_id, need, sequence)
    opened = ReferralOpened(
        referral_id=referral_id,
        patient_id=patient_id,
        need=need,
        urgency=advice.urgency,
        capabilities=list(advice.capabilities),
        reasons=list(advice.reasons),
        region=region,
        as_of_event=advice.as_of_event,
        as_of_position=advice.as_of_position,
        at=now,
    )
    referral = fold([opened])
    assert referral is not None
    return [opened, *_route(referral, now, clinics, loads)]


def reassess(
    r: Referral,
    advice: Advice,
    now: datetime,
    clinics: Sequence[DirectoryClinic],
    loads: dict[str, ClinicLoad],
) -> list[EventData]:
    """A newer assessment updates the referral; an older one (arriving late) changes nothing.
    An open task whose clinic no longer fits, or that was unroutable, is routed again."""
    if not r.is_open() or not _newer(advice, r):
        return []
    same = (advice.urgency, tuple(advice.capabilities), tuple(advice.reasons)) == (
        r.urgency,
        r.capabilities,
        r.reasons,
    )
    if same:
        return []
    event = ReferralReassessed(
        referral_id=r.referral_id,
        patient_id=r.patient_id,
        urgency=advice.urgency,
        capabilities=list(advice.capabilities),
        reasons=list(advice.reasons),
        as_of_event=advice.as_of_event,
        as_of_position=advice.as_of_position,
        at=now,
    )
    updated = apply(r, event)
    assert updated is not None
    status = updated.status_at(now)
    clinic = next((c for c in clinics if c.clinic_id == updated.clinic_id), None)
    if status == UNROUTABLE or (
        status == QUEUED and (clinic is None or not set(updated.capabilities) <= clinic.capabilities)
    ):
        return [event, *_route(updated, now, clinics, loads)]
    return [event]


def _route(
    r: Referral, now: datetime, clinics: Sequence[DirectoryClinic], loads: dict[str, ClinicLoad]
) -> list[EventData]:
    route = choose_clinic(r.capabilities, r.region, clinics, loads, excluded=r.declined_by)
    if route.clinic is None:
        return [
            TaskQueued(
                referral_id=r.referral_id,
                patient_id=r.patient_id,
                status=UNROUTABLE,
                missing_capabilities=_listed_missing(route),
                at=now,
            )
        ]
    return _routed_to(r, route.clinic.clinic_id, "rules", now) + [
        TaskQueued(
            referral_id=r.referral_id,
            patient_id=r.patient_id,
            status=QUEUED,
            clinic_id=route.clinic.clinic_id,
            at=now,
        )
    ]


def _routed_to(r: Referral, clinic_id: str, by: str, now: datetime) -> list[EventData]:
    return [
        ReferralRouted(
            referral_id=r.referral_id, patient_id=r.patient_id, clinic_id=clinic_id, by=by, at=now
        ),
        TaskDispatched(
            referral_id=r.referral_id,
            patient_id=r.patient_id,
            clinic_id=clinic_id,
            urgency=r.urgency,
            capabilities=list(r.capabilities),
            reasons=list(r.reasons),
            at=now,
        ),
    ]


def _closed(r: Referral, action: str) -> None:
    if r.status in (COMPLETED, CANCELLED):
        raise IllegalTransition(f"cannot {action}: the referral is {r.status}", field="status")


def _held_by_other(r: Referral, coordinator_id: str, now: datetime) -> bool:
    return r.status_at(now) == CLAIMED and r.claimed_by != coordinator_id


def claim(
    r: Referral, coordinator_id: str, now: datetime, lease: timedelta = DEFAULT_LEASE
) -> list[EventData]:
    _closed(r, "claim")
    status = r.status_at(now)
    if _held_by_other(r, coordinator_id, now):
        raise IllegalTransition("another coordinator holds this task's lease", field="status")
    if status not in (*WAITING, CLAIMED):
        raise IllegalTransition(f"cannot claim: the referral is {status}", field="status")
    return [
        TaskClaimed(
            referral_id=r.referral_id,
            patient_id=r.patient_id,
            coordinator_id=coordinator_id,
            lease_until=now + lease,
            at=now,
        )
    ]


def route_by_hand(
    r: Referral, coordinator_id: str, clinic: DirectoryClinic, now: datetime
) -> list[EventData]:
    """A coordinator routes a task they hold (typically an unroutable one) to a clinic of
    their choosing, though never back to one that declined it. They keep the claim."""
    _closed(r, "route")
    if r.status_at(now) != CLAIMED or r.claimed_by != coordinator_id:
        raise IllegalTransition("claim the task before routing it", field="status")
    if clinic.clinic_id in r.declined_by:
        raise Rejected("clinic_id", "this clinic declined the referral")
    return _routed_to(r, clinic.clinic_id, coordinator_id, now)


def accept(r: Referral, coordinator_id: str, now: datetime) -> list[EventData]:
    """The receiving clinic accepted the referral (recorded by the coordinator working it)."""
    _closed(r, "accept")
    status = r.status_at(now)
    if _held_by_other(r, coordinator_id, now):
        raise IllegalTransition("another coordinator holds this task's lease", field="status")
    if status not in (QUEUED, CLAIMED) or r.clinic_id is None:
        raise IllegalTransition(f"cannot accept: the referral is {status}", field="status")
    return [
        ReferralAccepted(referral_id=r.referral_id, patient_id=r.patient_id, clinic_id=r.clinic_id, at=now)
    ]


def schedule(r: Referral, coordinator_id: str, appointment_at: datetime, now: datetime) -> list[EventData]:
    _closed(r, "schedule")
    status = r.status_at(now)
    if appointment_at.tzinfo is None:
        raise Rejected("appointment_at", "give a time zone (e.g. 2026-07-01T09:30:00+01:00)")
    if appointment_at <= now:
        raise Rejected("appointment_at", "the appointment must be in the future")
    if status == CLAIMED and r.claimed_by != coordinator_id:
        raise IllegalTransition("another coordinator holds this task's lease", field="status")
    if status not in (CLAIMED, ACCEPTED, SCHEDULED):
        raise IllegalTransition(f"cannot schedule: the referral is {status}; claim it first", field="status")
    if r.clinic_id is None:
        raise IllegalTransition("route the referral to a clinic before scheduling", field="clinic_id")
    return [
        ReferralScheduled(
            referral_id=r.referral_id,
            patient_id=r.patient_id,
            clinic_id=r.clinic_id,
            appointment_at=appointment_at,
        )
    ]


def complete(r: Referral, now: datetime) -> list[EventData]:
    _closed(r, "complete")
    if r.status != SCHEDULED:
        raise IllegalTransition(
            f"cannot complete: the referral is {r.status_at(now)}, not scheduled", field="status"
        )
    return [ReferralCompleted(referral_id=r.referral_id, patient_id=r.patient_id, at=now)]


def decline(
    r: Referral,
    coordinator_id: str,
    reason: str,
    now: datetime,
    clinics: Sequence[DirectoryClinic],
    loads: dict[str, ClinicLoad],
) -> list[EventData]:
    """The clinic declined: re-route to the next fitting clinic, never back to a decliner.
    A scheduled appointment is not declined here: cancel the referral instead."""
    _closed(r, "decline")
    status = r.status_at(now)
    if not reason.strip():
        raise Rejected("reason", "say why the clinic declined")
    if _held_by_other(r, coordinator_id, now):
        raise IllegalTransition("another coordinator holds this task's lease", field="status")
    if status not in (QUEUED, CLAIMED, ACCEPTED) or r.clinic_id is None:
        raise IllegalTransition(f"cannot decline: the referral is {status}", field="status")
    declined = ReferralDeclined(
        referral_id=r.referral_id,
        patient_id=r.patient_id,
        clinic_id=r.clinic_id,
        reason=reason.strip(),
        by=coordinator_id,
        at=now,
    )
    after = apply(r, declined)
    assert after is not None
    return [declined, *_route(after, now, clinics, loads)]


def cancel(r: Referral, reason: str, now: datetime) -> list[EventData]:
    _closed(r, "cancel")
    if not reason.strip():
        raise Rejected("reason", "say why the referral is cancelled")
    return [ReferralCancelled(referral_id=r.referral_id, patient_id=r.patient_id, reason=reason.strip())]


def escalation_due(r: Referral, now: datetime) -> bool:
    """Unclaimed past the limit for its urgency, and not yet escalated for this wait."""
    if r.status_at(now) not in WAITING:
        return False
    since = r.waiting_since(now)
    if since is None or now - since < ESCALATE_AFTER[r.urgency]:
        return False
    return r.escalated_at is None or r.escalated_at <= since  # an escalation at its start was the last wait's


def escalate(r: Referral, now: datetime) -> list[EventData]:
    if not escalation_due(r, now):
        return []
    since = r.waiting_since(now)
    assert since is not None
    return [
        ReferralEscalated(
            referral_id=r.referral_id,
            patient_id=r.patient_id,
            urgency=r.urgency,
            unclaimed_since=since,
            at=now,
        )
    ]


def queue_order(
    urgency: Urgency, escalated: bool, waiting_since: datetime | None, opened_at: datetime | None
) -> tuple:
    """Emergency, urgent, routine, then oldest first (waiting since, else opened). An escalated
    task moves up one band: ahead of every task of its urgency that is not escalated, however
    old (one already in hand, say), yet still behind every task of the urgency above."""
    rank = URGENCY_RANK[urgency]
    oldest = waiting_since or opened_at
    return (rank - (1 if escalated else 0), rank, oldest.timestamp() if oldest else 0.0)


def queue_key(r: Referral, now: datetime) -> tuple:
    """Where the referral stands in the queue at `now` (see `queue_order`)."""
    r = r.as_at(now)
    return queue_order(r.urgency, r.is_escalated(), r.unclaimed_since, r.opened_at)
