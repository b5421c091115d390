"""One reminder as an event-sourced aggregate, pure: its state is a fold of its events
(scheduled, moved, sent, failed, cancelled), and each decision checks the state allows it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from care_shared.contracts import EventData
from care_shared.contracts.notify import (
    Channel,
    ReminderCancelled,
    ReminderFailed,
    ReminderKind,
    ReminderMoved,
    ReminderScheduled,
    ReminderSent,
)

SCHEDULED, SENT, FAILED, CANCELLED = "scheduled", "sent", "failed", "cancelled"


class NotPending(Exception):
    """The reminder was sent, failed or cancelled meanwhile: nothing to do."""


@dataclass
class Reminder:
    reminder_id: str
    patient_id: str
    kind: ReminderKind
    status: str
    due_at: datetime
    deliver_at: datetime
    trial_id: str | None = None
    referral_id: str | None = None
    channel: Channel | None = None
    sent_at: datetime | None = None
    failed_at: datetime | None = None
    attempts: int = 0
    reason: str | None = None
    crisis_resources: bool = False

    @property
    def pending(self) -> bool:
        return self.status == SCHEDULED


def fold(history: list[EventData]) -> Reminder | None:
    r: Reminder | None = None
    for e in history:
        match e:
            case ReminderScheduled():
                r = Reminder(
                    e.reminder_id,
                    e.patient_id,
                    e.kind,
                    SCHEDULED,
                    e.due_at,
                    e.deliver_at,
                    e.trial_id,
                    e.referral_id,
                )
            case ReminderMoved() if r:
                r.due_at, r.deliver_at = e.due_at, e.deliver_at
            case ReminderSent() if r:
                r.status, r.channel, r.sent_at, r.attempts = SENT, e.channel, e.sent_at, e.attempts
                r.crisis_resources = e.crisis_resources
            case ReminderFailed() if r:
                r.status, r.channel, r.failed_at, r.attempts, r.reason = (
                    FAILED,
                    e.channel,
                    e.failed_at,
                    e.attempts,
                    e.reason,
                )
            case ReminderCancelled() if r:
                r.status, r.reason = CANCELLED, e.reason
    return r


def schedule(current: Reminder | None, event: ReminderScheduled) -> ReminderScheduled:
    if current is not None and current.status != CANCELLED:
        raise NotPending(event.reminder_id)
    return event


def move(current: Reminder, due_at: datetime, deliver_at: datetime) -> ReminderMoved:
    if not current.pending:
        raise NotPending(current.reminder_id)
    return ReminderMoved(
        reminder_id=current.reminder_id, patient_id=current.patient_id, due_at=due_at, deliver_at=deliver_at
    )


def cancel(current: Reminder, reason: str) -> ReminderCancelled:
    if not current.pending:
        raise NotPending(current.reminder_id)
    return ReminderCancelled(reminder_id=current.reminder_id, patient_id=current.patient_id, reason=reason)


def record_sent(
    current: Reminder, channel: Channel, at: datetime, attempts: int, crisis: bool
) -> ReminderSent:
    # A message that went out is recorded even if the reminder was cancelled meanwhile:
    # the record must say what the patient received.
    if current.status in (SENT, FAILED):
        raise NotPending(current.reminder_id)
    return ReminderSent(
        reminder_id=current.reminder_id,
        patient_id=current.patient_id,
        channel=channel,
        sent_at=at,
        attempts=attempts,
        crisis_resources=crisis,
    )


def record_failed(
    current: Reminder, channel: Channel | None, at: datetime, attempts: int, reason: str
) -> ReminderFailed:
    if not current.pending:
        raise NotPending(current.reminder_id)
    return ReminderFailed(
        reminder_id=current.reminder_id,
        patient_id=current.patient_id,
        channel=channel,
        failed_at=at,
        attempts=attempts,
        reason=reason,
    )
