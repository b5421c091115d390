"""What a reminder says, pure. E-mail and SMS are not private: a message names no diagnosis,
no medicine and no clinic, only "your care team" (CLINICAL.md section 8). While the patient's
urgency is urgent or emergency, every message carries crisis resources (section 5)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from care_shared.contracts.notify import ReminderKind

CRISIS_RESOURCES = (
    "If you are in crisis or thinking about suicide, help is available now: call or text 988 "
    "(988 Suicide and Crisis Lifeline), or text HOME to 741741 (Crisis Text Line)."
)

SUBJECT = "A reminder from your care team"
CRISIS_SUBJECT = "A message from your care team"
CRISIS_TEXT = "Your care team wants you to know that support is there for you, day and night."

_TEXT = {
    ReminderKind.FIRST_REVIEW: "It is time for your first check-in with your care team. Please get in touch to arrange it.",
    ReminderKind.RESPONSE_CHECK: (
        "It is time for your check-in with your care team, with a short questionnaire about how "
        "you have been feeling. Please get in touch to arrange it."
    ),
    ReminderKind.WEEK_8_REVIEW: "It is time for your next check-in with your care team. Please get in touch to arrange it.",
    ReminderKind.ADHERENCE: "A reminder to keep to the treatment plan you agreed with your care team.",
}


@dataclass(frozen=True)
class Message:
    subject: str
    text: str


def crisis_message() -> Message:
    """Sent once when the patient's urgency rises to urgent or emergency (section 5)."""
    return Message(CRISIS_SUBJECT, f"{CRISIS_TEXT}\n\n{CRISIS_RESOURCES}")


def compose(
    kind: ReminderKind, *, crisis: bool, appointment_at: datetime | None = None, timezone: str = "UTC"
) -> Message:
    if kind is ReminderKind.CRISIS_RESOURCES:
        return crisis_message()
    if kind in (ReminderKind.APPOINTMENT_48H, ReminderKind.APPOINTMENT_2H):
        when = ""
        if appointment_at is not None:
            local = appointment_at.astimezone(ZoneInfo(timezone))
            when = f" on {local:%A %d %B} at {local:%H:%M}"
        text = f"You have an appointment arranged by your care team{when}."
    else:
        text = _TEXT[kind]
    if crisis:
        text = f"{text}\n\n{CRISIS_RESOURCES}"
    return Message(SUBJECT, text)
