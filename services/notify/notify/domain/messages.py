"""What a reminder says, pure. E-mail and SMS are not private: a message names no diagnosis,
no medicine and no clinic, only "your care team" (CLINICAL.md section 8). While the patient's
urgency is urgent or emergency, every message carries the crisis resources of the patient's
country (sections 5 and 8), naming the row of the table it used."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from care_shared.contracts.notify import ReminderKind
from notify.domain.crisis_resources import CrisisResources

SUBJECT = "A reminder from your care team"
CRISIS_SUBJECT = "A message from your care team"
CRISIS_TEXT = "Your care team wants you to know that support is there for you, day and night."
CRISIS_INTRO = "If you are in crisis, help is available now."

_TEXT = {
    ReminderKind.FIRST_REVIEW: "It is time for your first check-in with your care team. Please get in touch to arrange it.",
    ReminderKind.RESPONSE_CHECK: (
        "It is time for your check-in with your care team, with a short questionnaire about how "
        "you have been feeling. Please get in touch to arrange it."
    ),
    ReminderKind.WEEK_8_REVIEW: "It is time for your next check-in with your care team. Please get in touch to arrange it.",
    ReminderKind.ADHERENCE: "A reminder to keep to the treatment plan you agreed with your care team.",
    ReminderKind.JOURNAL_PROMPT: (
        "A reminder from your care team to note in your mood journal how today has been: your mood, "
        "anything that bothered you, and what may have set it off."
    ),
}


@dataclass(frozen=True)
class Message:
    subject: str
    text: str


def crisis_block(resources: CrisisResources) -> str:
    """The row's resources word for word, under the row's name (section 8: each message names
    the row used)."""
    return f"{CRISIS_INTRO}\nCrisis resources ({resources.row}): {resources.resources}"


def crisis_message(resources: CrisisResources) -> Message:
    """Sent once when the patient's urgency rises to urgent or emergency (section 5)."""
    return Message(CRISIS_SUBJECT, f"{CRISIS_TEXT}\n\n{crisis_block(resources)}")


def compose(
    kind: ReminderKind,
    *,
    crisis: CrisisResources | None,
    appointment_at: datetime | None = None,
    timezone: str = "UTC",
) -> Message:
    """`crisis`: the row the patient's messages carry now (urgency urgent or emergency), else
    None. The crisis-resources message always carries one."""
    if kind is ReminderKind.CRISIS_RESOURCES:
        if crisis is None:
            raise ValueError("the crisis-resources message needs its row")
        return crisis_message(crisis)
    if kind in (ReminderKind.APPOINTMENT_48H, ReminderKind.APPOINTMENT_2H):
        when = ""
        if appointment_at is not None:
            local = appointment_at.astimezone(ZoneInfo(timezone))
            when = f" on {local:%A %d %B} at {local:%H:%M}"
        text = f"You have an appointment arranged by your care team{when}."
    else:
        text = _TEXT[kind]
    if crisis is not None:
        text = f"{text}\n\n{crisis_block(crisis)}"
    return Message(SUBJECT, text)
