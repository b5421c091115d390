"""Delivery channels behind one small interface: e-mail over SMTP and SMS through an HTTP
gateway. Each message carries the reminder's idempotency key where the receiver honours it:
the gateway's `Idempotency-Key` header, and a stable e-mail `Message-ID`.

Errors name their class only: an address or a message text never reaches a log or an event.
"""

from __future__ import annotations

import asyncio
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol

import httpx

from care_shared.contracts.notify import Channel
from notify.domain.contact import Rejected, valid_email


@dataclass(frozen=True)
class Outgoing:
    key: str  # the reminder's idempotency key: the same on every try
    to: str
    subject: str
    text: str


class DeliveryError(Exception):
    """The channel did not take the message; `str()` is safe to store (no patient data)."""


class ChannelSender(Protocol):
    channel: Channel

    async def send(self, message: Outgoing) -> None: ...

    async def delivered(self, key: str) -> bool | None:
        """After a crash left a try in doubt: True if the channel has the message, False if
        not, None if it cannot tell."""
        ...


class SmtpChannel:
    channel = Channel.EMAIL

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        timeout: float = 10.0,
        domain: str = "notify.trd-care.example",
    ) -> None:
        self.host, self.port, self.sender, self.timeout, self.domain = host, port, sender, timeout, domain

    def message_id(self, key: str) -> str:
        return f"<{key}@{self.domain}>"

    def _send(self, message: Outgoing) -> None:
        # Checked again here, for an address stored before addresses were validated: one
        # contact is exactly one recipient, and no NUL or line break reaches the server.
        try:
            recipient = valid_email(message.to)
        except Rejected:
            raise DeliveryError("smtp: invalid recipient address") from None
        email = EmailMessage()
        email["From"] = self.sender
        email["To"] = message.to
        email["Subject"] = message.subject
        # Stable across tries: a receiver that has it already can drop the copy.
        email["Message-ID"] = self.message_id(message.key)
        email.set_content(message.text)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            smtp.send_message(email, to_addrs=[recipient])

    async def send(self, message: Outgoing) -> None:
        try:
            await asyncio.to_thread(self._send, message)
        except DeliveryError:
            raise
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"smtp: {type(exc).__name__}") from None

    async def delivered(self, key: str) -> bool | None:
        return None  # SMTP has no way to ask; the stable Message-ID is the safeguard


class SmsGatewayChannel:
    """`POST {url}/v1/messages {to, text}` with `Idempotency-Key`; `GET {url}/v1/messages/{key}`
    answers 200 for a message the gateway has, 404 for one it has not."""

    channel = Channel.SMS

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 10.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.AsyncClient(base_url=url.rstrip("/"), timeout=timeout, headers=headers)

    async def send(self, message: Outgoing) -> None:
        try:
            r = await self.client.post(
                "/v1/messages",
                json={"to": message.to, "text": message.text},
                headers={"Idempotency-Key": message.key},
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"sms gateway: {type(exc).__name__}") from None
        if r.status_code >= 300:
            raise DeliveryError(f"sms gateway: HTTP {r.status_code}")

    async def delivered(self, key: str) -> bool | None:
        try:
            r = await self.client.get(f"/v1/messages/{key}")
        except httpx.HTTPError:
            return None
        return True if r.status_code == 200 else False if r.status_code == 404 else None

    async def close(self) -> None:
        await self.client.aclose()
