"""Events referral publishes on `referral.>`.

A referral is opened once per patient and need, routed to a clinic with every capability the
need names, and worked by coordinators as a task. notify acts on `referral-scheduled` (an
appointment, or a new time for it) and `referral-cancelled`.
"""

from __future__ import annotations

from datetime import datetime

from care_shared.contracts import EventData, event
from care_shared.contracts.pathway import Urgency


@event
class ReferralOpened(EventData):
    event_type = "care.referral.referral-opened.v1"
    referral_id: str
    patient_id: str
    need: str
    urgency: Urgency
    capabilities: list[str]
    reasons: list[str] = []


@event
class ReferralRouted(EventData):
    event_type = "care.referral.referral-routed.v1"
    referral_id: str
    patient_id: str
    clinic_id: str


@event
class ReferralScheduled(EventData):
    """An appointment was booked; a later one for the same referral moves it."""

    event_type = "care.referral.referral-scheduled.v1"
    referral_id: str
    patient_id: str
    clinic_id: str | None = None
    appointment_at: datetime


@event
class ReferralCancelled(EventData):
    event_type = "care.referral.referral-cancelled.v1"
    referral_id: str
    patient_id: str
    reason: str | None = None


@event
class ReferralCompleted(EventData):
    event_type = "care.referral.referral-completed.v1"
    referral_id: str
    patient_id: str
