"""Events notify publishes on `notify.>`: the life of one patient reminder.

A reminder is scheduled (and may be moved or cancelled), then sent once, or failed after its
last try. They carry ids, kinds and times only: never an e-mail address, a phone number or a
message text (DESIGN.md section 3).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from care_shared.contracts import EventData, event


class ReminderKind(StrEnum):
    FIRST_REVIEW = "first_review"  # week 2, or week 1 when aged 18-25 or suicidality flagged
    RESPONSE_CHECK = "response_check"  # week 4, with a PHQ-9
    WEEK_8_REVIEW = "week_8_review"
    ADHERENCE = "adherence"  # daily or weekly while a medication trial runs, if opted in
    JOURNAL_PROMPT = "journal_prompt"  # daily mood-journal prompt, if opted in (CLINICAL.md 8)
    APPOINTMENT_48H = "appointment_48h"
    APPOINTMENT_2H = "appointment_2h"
    CRISIS_RESOURCES = "crisis_resources"  # once when urgency rises to urgent or emergency (CLINICAL.md 5)


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


@event
class ReminderScheduled(EventData):
    """`due_at` is when the rule wants it; `deliver_at` is that time moved out of the
    patient's quiet hours. A cancelled reminder may be scheduled again (consent restored)."""

    event_type = "care.notify.reminder-scheduled.v1"
    reminder_id: str
    patient_id: str
    kind: ReminderKind
    due_at: datetime
    deliver_at: datetime
    trial_id: str | None = None
    referral_id: str | None = None


@event
class ReminderMoved(EventData):
    event_type = "care.notify.reminder-moved.v1"
    reminder_id: str
    patient_id: str
    due_at: datetime
    deliver_at: datetime


@event
class ReminderSent(EventData):
    event_type = "care.notify.reminder-sent.v1"
    reminder_id: str
    patient_id: str
    channel: Channel
    sent_at: datetime
    attempts: int
    crisis_resources: bool = False


@event
class ReminderFailed(EventData):
    """The last try failed; `reason` names the error class, never the message or address."""

    event_type = "care.notify.reminder-failed.v1"
    reminder_id: str
    patient_id: str
    channel: Channel | None = None
    failed_at: datetime
    attempts: int
    reason: str


@event
class ReminderCancelled(EventData):
    event_type = "care.notify.reminder-cancelled.v1"
    reminder_id: str
    patient_id: str
    reason: str
