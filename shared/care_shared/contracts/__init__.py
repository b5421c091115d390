"""The published language: the data schema of every event type on the bus.

Producers build their events from these models; consumers validate what they receive
against them. A type that is not here is unknown (dead-lettered); a newer version of a known
type than this code understands is dead-lettered too, to be replayed after an upgrade.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from care_shared.envelope import EventType, describe_validation_error


class EventData(BaseModel):
    """Base of every event payload. Unknown fields are ignored (tolerant reader); a
    non-finite number (NaN, Infinity: JSON has neither) is invalid in every event."""

    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)
    event_type: ClassVar[str]
    # Older schema versions of this type that this model reads unchanged (additive changes).
    reads_versions: ClassVar[tuple[int, ...]] = ()

    def to_data(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


_REGISTRY: dict[str, type[EventData]] = {}


def event(cls: type[EventData]) -> type[EventData]:
    """Class decorator: register a payload model under its versioned type name, and under
    each older version it reads (`reads_versions`): an additive change (new optional fields)
    makes a new version whose model reads the old data as it is, so stored and in-flight
    events of the old version still decode (upcast on the way in, never edited)."""
    parsed = EventType(cls.event_type)  # validates the name
    _REGISTRY[cls.event_type] = cls
    for older in getattr(cls, "reads_versions", ()):
        if older >= parsed.version:
            raise ValueError(f"{cls.event_type}: reads_versions must be older versions")
        _REGISTRY[f"{parsed.unversioned}.v{older}"] = cls
    return cls


class UnknownEventType(Exception):
    pass


class UnsupportedVersion(Exception):
    pass


class InvalidEventData(Exception):
    pass


def schema_for(event_type: str) -> type[EventData]:
    try:
        return _REGISTRY[event_type]
    except KeyError:
        pass
    parsed = EventType(event_type)
    known = [EventType(t) for t in _REGISTRY if EventType(t).unversioned == parsed.unversioned]
    if known:
        newest = max(k.version for k in known)
        raise UnsupportedVersion(f"{event_type}: this consumer understands up to v{newest}")
    raise UnknownEventType(f"unknown event type {event_type}")


def decode(event_type: str, data: dict[str, Any]) -> EventData:
    model = schema_for(event_type)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidEventData(
            f"{event_type} data failed validation: {describe_validation_error(exc)}"
        ) from None


def registered_types() -> list[str]:
    """The current type names (older versions read through their successor are left out)."""
    return sorted(name for name, model in _REGISTRY.items() if model.event_type == name)


# Import the modules that register types, so any importer sees the whole language.
from care_shared.contracts import intake as intake  # noqa: E402
from care_shared.contracts import notify as notify  # noqa: E402
from care_shared.contracts import pathway as pathway  # noqa: E402
from care_shared.contracts import referral as referral  # noqa: E402
