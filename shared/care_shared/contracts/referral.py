"""Events referral publishes on `referral.>`.

A referral is opened once per patient and need, routed to a clinic with every capability the
need names, and worked by coordinators as a task. notify acts on `referral-scheduled` (an
appointment, or a new time for it) and `referral-cancelled`.

Events about a referral have the patient as subject. Times that rules depend on (`at`) come
from the service's clock and travel in the data, so a fold of the stream never asks the wall
clock. Two kinds of event have another subject: the directory's (`directory-clinic-*`, the
directory clinic's id) and `task-dispatched` (the receiving clinic's id), which a work-queue
stream copies to `tasks.<clinic id>` for clinics that pull their tasks.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from care_shared.contracts import EventData, event
from care_shared.contracts.pathway import Urgency


class Capability(StrEnum):
    ECT = "ect"
    RTMS = "rtms"
    ESKETAMINE = "esketamine"
    KETAMINE = "ketamine"
    VNS = "vns"
    DBS = "dbs"
    CLINICAL_TRIALS = "clinical_trials"
    PSYCHOTHERAPY = "psychotherapy"
    MOOD_DISORDER_CLINIC = "mood_disorder_clinic"


# --- the directory -------------------------------------------------------------------------


@event
class DirectoryClinicRegistered(EventData):
    """A clinic joined the referral directory. `partner_clinic_id` links it to a partner
    clinic's API key (intake's clinic id), so that clinic sees the referrals sent to it."""

    event_type = "care.referral.directory-clinic-registered.v1"
    clinic_id: str
    name: str
    region: str
    capabilities: list[Capability]
    weekly_capacity: int
    partner_clinic_id: str | None = None


@event
class DirectoryClinicChanged(EventData):
    """Only the fields that changed are present."""

    event_type = "care.referral.directory-clinic-changed.v1"
    clinic_id: str
    name: str | None = None
    region: str | None = None
    capabilities: list[Capability] | None = None
    weekly_capacity: int | None = None


# --- coordinators --------------------------------------------------------------------------


@event
class CoordinatorRegistered(EventData):
    event_type = "care.referral.coordinator-registered.v1"
    coordinator_id: str
    name: str
    key_sha256: str


@event
class CoordinatorKeyRotated(EventData):
    """The coordinator's key was replaced: `replaces_sha256` stops working."""

    event_type = "care.referral.coordinator-key-rotated.v1"
    coordinator_id: str
    key_sha256: str
    replaces_sha256: str


@event
class CoordinatorKeyRevoked(EventData):
    """An operator revoked the coordinator's key (`carectl coordinator revoke`), e.g. when
    they left: it stops working at once."""

    event_type = "care.referral.coordinator-key-revoked.v1"
    coordinator_id: str
    key_sha256: str


# --- a referral's life ---------------------------------------------------------------------


@event
class ReferralOpened(EventData):
    event_type = "care.referral.referral-opened.v2"
    reads_versions = (1,)  # v2 added as_of_position
    referral_id: str
    patient_id: str
    need: str
    urgency: Urgency
    capabilities: list[str]
    reasons: list[str] = []
    region: str | None = None  # the patient's region, when known (the referring clinic's)
    as_of_event: str | None = None
    # The advice's place in pathway's stream for the patient: what "newer" is measured by.
    as_of_position: int | None = None
    at: datetime | None = None


@event
class ReferralReassessed(EventData):
    """A newer assessment for the same need: urgency, capabilities or reasons changed."""

    event_type = "care.referral.referral-reassessed.v2"
    reads_versions = (1,)  # v2 added as_of_position
    referral_id: str
    patient_id: str
    urgency: Urgency
    capabilities: list[str]
    reasons: list[str] = []
    as_of_event: str | None = None
    as_of_position: int | None = None
    at: datetime | None = None


@event
class ReferralRouted(EventData):
    event_type = "care.referral.referral-routed.v1"
    referral_id: str
    patient_id: str
    clinic_id: str
    by: str | None = None  # "rules", or the coordinator who routed it by hand
    at: datetime | None = None


@event
class TaskQueued(EventData):
    """The referral waits for a coordinator: `queued` at its clinic, or `unroutable` with
    the capabilities no clinic offers (or every fitting clinic declined)."""

    event_type = "care.referral.task-queued.v1"
    referral_id: str
    patient_id: str
    status: str  # queued | unroutable
    clinic_id: str | None = None
    missing_capabilities: list[str] = []
    at: datetime | None = None


@event
class TaskDispatched(EventData):
    """The task as a receiving clinic pulls it (subject: that clinic's id)."""

    event_type = "care.referral.task-dispatched.v1"
    referral_id: str
    patient_id: str
    clinic_id: str
    urgency: Urgency
    capabilities: list[str]
    reasons: list[str] = []
    at: datetime | None = None


@event
class TaskClaimed(EventData):
    event_type = "care.referral.task-claimed.v1"
    referral_id: str
    patient_id: str
    coordinator_id: str
    lease_until: datetime
    at: datetime | None = None


@event
class ReferralAccepted(EventData):
    event_type = "care.referral.referral-accepted.v1"
    referral_id: str
    patient_id: str
    clinic_id: str
    at: datetime | None = None


@event
class ReferralDeclined(EventData):
    event_type = "care.referral.referral-declined.v1"
    referral_id: str
    patient_id: str
    clinic_id: str
    reason: str
    by: str | None = None
    at: datetime | None = None


@event
class ReferralScheduled(EventData):
    """An appointment was booked; a later one for the same referral moves it."""

    event_type = "care.referral.referral-scheduled.v1"
    referral_id: str
    patient_id: str
    clinic_id: str | None = None
    appointment_at: datetime


@event
class ReferralCompleted(EventData):
    event_type = "care.referral.referral-completed.v1"
    referral_id: str
    patient_id: str
    at: datetime | None = None


@event
class ReferralEscalated(EventData):
    """Unclaimed past its urgency's limit (emergency 15 min, urgent 24 h, routine 5 days)."""

    event_type = "care.referral.referral-escalated.v1"
    referral_id: str
    patient_id: str
    urgency: Urgency
    unclaimed_since: datetime
    at: datetime


@event
class ReferralCancelled(EventData):
    event_type = "care.referral.referral-cancelled.v1"
    referral_id: str
    patient_id: str
    reason: str | None = None
