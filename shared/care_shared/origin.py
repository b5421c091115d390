"""Where an event came from, checked on arrival: the bus is a trust boundary (DESIGN.md 5b).

NATS permissions already keep each service to its own subjects; this is the second wall, for
an event a credential could put where it is allowed but that claims to be something it is not.
An event is accepted only when all of these name the same producer:

- the stream it arrived in (its owner in care_shared.topology),
- its type (`care.<service>.<name>.vN`),
- its envelope `source` (`/<service>`),
- the first token of its NATS subject (`<service>.<name>.<subject>`), whose middle token is
  the type's name and whose last token is the envelope's `subject`.

Access events (clinic keys, coordinator keys) therefore come only from intake's, or for
coordinators referral's, stream. An event id is a UUIDv7 whose time may not lie in the future
beyond a small clock skew: an id from the future would otherwise win every "newer" test.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from care_shared.envelope import Envelope
from care_shared.topology import STREAM_OWNER

MAX_CLOCK_SKEW = timedelta(minutes=5)


class ForgedEvent(Exception):
    """An event whose origin does not hold together; the message says which part (names and
    ids only)."""


def uuid7_time(event_id: str) -> datetime:
    try:
        parsed = uuid.UUID(event_id)
    except ValueError:
        raise ForgedEvent("event id is not a UUID") from None
    if parsed.version != 7:
        raise ForgedEvent(f"event id {event_id} is not a UUIDv7")
    millis = parsed.int >> 80
    try:
        return datetime.fromtimestamp(millis / 1000, UTC)
    except (ValueError, OverflowError, OSError):  # past year 9999: from the future, surely
        raise ForgedEvent(f"event id {event_id} is dated beyond any calendar, in the future") from None


def verify_origin(envelope: Envelope, stream: str, subject: str, now: datetime | None = None) -> None:
    owner = STREAM_OWNER.get(stream)
    if owner is None:
        raise ForgedEvent(f"stream {stream} has no producer in the topology")
    producer = envelope.event_type.service
    if producer != owner:
        raise ForgedEvent(
            f"{envelope.type} belongs to {producer}, but arrived on {stream} ({owner}'s stream)"
        )
    if envelope.source != f"/{owner}":
        raise ForgedEvent(f"source {envelope.source!r} is not /{owner}, the producer of {stream}")
    tokens = subject.split(".")
    if len(tokens) != 3 or tokens[0] != owner or tokens[1] != envelope.event_type.name:
        raise ForgedEvent(f"subject {'.'.join(tokens[:2])}.* does not carry {envelope.type}")
    if tokens[2] != envelope.subject:
        raise ForgedEvent(f"subject token {tokens[2]} differs from the envelope subject {envelope.subject}")
    minted = uuid7_time(envelope.id)
    if minted - (now or datetime.now(UTC)) > MAX_CLOCK_SKEW:
        raise ForgedEvent(f"event id {envelope.id} is dated {minted.isoformat()}, in the future")
