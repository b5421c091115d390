"""A patient's contact details and consent (DESIGN.md section 6: they live only in notify).
Pure validation: a bad request names the field at fault and stores nothing."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

# Deliberately plain: one @, no spaces, a dotted domain. Deliverability is the mail
# server's business; this only catches what can never be an address.
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s.]{2,}$")
# E.164: +, country code, up to 15 digits in all. SMS gateways want this form.
PHONE = re.compile(r"^\+[1-9][0-9]{7,14}$")


class ContactChannel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    NONE = "none"


class AdherenceFrequency(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    OFF = "off"


class Rejected(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class ContactPreferences:
    email: str | None
    phone: str | None
    channel: ContactChannel
    reminders: bool
    adherence: AdherenceFrequency = AdherenceFrequency.OFF
    journal_prompts: bool = False  # CLINICAL.md section 8: daily mood-journal prompts, opt-in
    # When the patient opted in to journal prompts (kept by the store): the first prompt is
    # the first one due after it.
    journal_since: datetime | None = None

    def channel_for(self, crisis_message: bool) -> ContactChannel | None:
        """The channel a message goes by now; None: none (opted out, or no address)."""
        if crisis_message:
            return self.crisis_channel
        return self.channel if self.wants_reminders else None

    @property
    def wants_reminders(self) -> bool:
        """Opt-in: reminders on, and a channel to send them by."""
        return self.reminders and self.channel is not ContactChannel.NONE

    @property
    def wants_adherence(self) -> bool:
        return self.wants_reminders and self.adherence is not AdherenceFrequency.OFF

    @property
    def wants_journal_prompts(self) -> bool:
        return self.wants_reminders and self.journal_prompts

    @property
    def crisis_channel(self) -> ContactChannel | None:
        """Where crisis resources go (CLINICAL.md sections 5 and 8: not turned off by
        preferences): the preferred channel while reminders are on, else any address on
        file, e-mail first. None: no address, nothing to send to."""
        if self.wants_reminders:
            return self.channel
        if self.email:
            return ContactChannel.EMAIL
        if self.phone:
            return ContactChannel.SMS
        return None


def contact_preferences(
    *,
    email: str | None,
    phone: str | None,
    channel: ContactChannel,
    reminders: bool,
    adherence: AdherenceFrequency | None,
    journal_prompts: bool = False,
) -> ContactPreferences:
    email = email.strip() if email else None
    phone = re.sub(r"[\s().-]", "", phone) if phone else None
    if email is not None and (len(email) > 254 or not EMAIL.match(email)):
        raise Rejected("email", "not an e-mail address")
    if phone is not None and not PHONE.match(phone):
        raise Rejected("phone", "not a phone number in international form, e.g. +14155550123")
    if channel is ContactChannel.EMAIL and email is None:
        raise Rejected("channel", "channel email needs an email")
    if channel is ContactChannel.SMS and phone is None:
        raise Rejected("channel", "channel sms needs a phone")
    return ContactPreferences(
        email, phone, channel, reminders, adherence or AdherenceFrequency.OFF, journal_prompts
    )
