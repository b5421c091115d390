"""The event envelope on the bus: CloudEvents 1.0, structured JSON mode.

`type` is versioned (`care.intake.trial-completed.v2`); `subject` is the patient (or clinic)
id; `traceparent` is the distributed-tracing extension; `sequence` is the version of the event
in its producer's stream, written as the CloudEvents Sequence extension requires: a
lexicographically orderable string (zero-padded to 10 digits) with `sequencetype: Integer`
(in Python it is the int; an integer `sequence` from before still reads); `clinicid` names the
clinic that owns the patient, so that a consumer can keep tenants apart whatever order events
arrive in. Consumers ignore unknown fields. On NATS every event travels with
`Content-Type: application/cloudevents+json` (structured mode).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import uuid6
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_serializer, field_validator

TYPE_PATTERN = re.compile(r"^care\.(?P<service>[a-z]+)\.(?P<name>[a-z][a-z-]*)\.v(?P<version>\d+)$")
SUBJECT_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")
MAX_EVENT_BYTES = 256 * 1024
CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json"
SEQUENCE_DIGITS = 10  # CloudEvents' Integer sequence is a signed 32-bit value: 10 digits


def new_event_id() -> str:
    """UUIDv7: time-ordered, so ids sort roughly by creation and index well."""
    return str(uuid6.uuid7())


def new_id() -> str:
    return str(uuid6.uuid7())


class EventType:
    """A parsed versioned type name: care.<service>.<name>.v<version>."""

    def __init__(self, full: str) -> None:
        m = TYPE_PATTERN.match(full)
        if not m:
            raise ValueError(f"not a care event type: {full!r}")
        self.full = full
        self.service = m["service"]
        self.name = m["name"]
        self.version = int(m["version"])

    @property
    def unversioned(self) -> str:
        return f"care.{self.service}.{self.name}"


def nats_subject(event_type: str, subject: str) -> str:
    """`intake.trial-completed.<patient id>`: service, event and patient, so a patient's
    history can be filtered and streams partitioned."""
    t = EventType(event_type)
    if not SUBJECT_TOKEN.match(subject):
        raise ValueError("subject must be a single NATS token")
    return f"{t.service}.{t.name}.{subject}"


class Envelope(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: str = Field(pattern=r"^1\.0$")
    id: str = Field(min_length=1, max_length=64)
    source: str = Field(min_length=1)
    type: str
    subject: str = Field(min_length=1, max_length=120)
    time: datetime
    datacontenttype: str = "application/json"
    data: dict[str, Any]
    traceparent: str | None = None
    # CloudEvents' Integer: a signed 32-bit value (so a forged 10**12 is no envelope at all).
    sequence: int | None = Field(default=None, ge=0, le=2**31 - 1)
    sequencetype: str | None = None
    clinicid: str | None = None

    @field_validator("sequence", mode="before")
    @classmethod
    def _sequence_string(cls, value: Any) -> Any:
        """The wire form is a zero-padded string; integers (events stored before) still read."""
        if isinstance(value, str):
            if not value.isdigit():
                raise ValueError("sequence must be a string of digits")
            return int(value)
        return value

    @field_serializer("sequence")
    def _padded(self, value: int | None) -> str | None:
        return None if value is None else str(value).zfill(SEQUENCE_DIGITS)

    @field_validator("type")
    @classmethod
    def _versioned_type(cls, value: str) -> str:
        EventType(value)
        return value

    @field_validator("datacontenttype")
    @classmethod
    def _json_only(cls, value: str) -> str:
        if value != "application/json":
            raise ValueError("only application/json data is accepted")
        return value

    @property
    def event_type(self) -> EventType:
        return EventType(self.type)


class EnvelopeError(Exception):
    """A message that is not a valid event envelope. The reason names fields, never values,
    since a payload may carry clinical facts."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_input=False, include_url=False, include_context=False):
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def parse_envelope(raw: bytes) -> Envelope:
    if len(raw) > MAX_EVENT_BYTES:
        raise EnvelopeError(f"message too large: {len(raw)} bytes > {MAX_EVENT_BYTES}")
    try:
        return Envelope.model_validate_json(raw)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise EnvelopeError("malformed JSON") from None
        raise EnvelopeError("invalid envelope: " + describe_validation_error(exc)) from None


def to_envelope(
    *,
    event_id: str,
    source: str,
    type: str,
    subject: str,
    time: datetime,
    data: dict[str, Any],
    sequence: int | None,
    traceparent: str | None,
    clinicid: str | None,
) -> Envelope:
    return Envelope(
        specversion="1.0",
        id=event_id,
        source=source,
        type=type,
        subject=subject,
        time=time,
        data=data,
        sequence=sequence,
        sequencetype=None if sequence is None else "Integer",
        traceparent=traceparent,
        clinicid=clinicid,
    )
