"""A patient's contact details and consent (DESIGN.md section 6: they live only in notify).
Pure validation: a bad request names the field at fault and stores nothing."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from care_shared.refusals import Rejected

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


def valid_email(text: str) -> str:
    """One address (RFC 5321/5322 syntax, by email-validator): a list (`a@b.org,c`), a NUL
    or a line break is refused, so one contact is one SMTP recipient. Deliverability is the
    mail server's business (no DNS look-up here). Returns the normalised address."""
    if len(text) > 254:
        raise Rejected("email", "not an e-mail address")
    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError:
        raise Rejected("email", "not an e-mail address") from None


def valid_phone(text: str) -> str:
    """E.164 (by phonenumbers): international form, a possible number for its country.
    Spaces, dots, dashes and brackets are allowed and dropped; returns +<digits>."""
    compact = re.sub(r"[\s().-]", "", text)
    reason = "not a phone number in international form, e.g. +14155550123"
    if not PHONE.match(compact):
        raise Rejected("phone", reason)
    try:
        number = phonenumbers.parse(compact, None)
    except phonenumbers.NumberParseException:
        raise Rejected("phone", reason) from None
    if not phonenumbers.is_possible_number(number):
        raise Rejected("phone", reason)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def contact_preferences(
    *,
    email: str | None,
    phone: str | None,
    channel: ContactChannel,
    reminders: bool,
    adherence: AdherenceFrequency | None,
    journal_prompts: bool = False,
) -> ContactPreferences:
    email = valid_email(email.strip()) if email else None
    phone = valid_phone(phone) if phone else None
    if channel is ContactChannel.EMAIL and email is None:
        raise Rejected("channel", "channel email needs an email")
    if channel is ContactChannel.SMS and phone is None:
        raise Rejected("channel", "channel sms needs a phone")
    return ContactPreferences(
        email, phone, channel, reminders, adherence or AdherenceFrequency.OFF, journal_prompts
    )
