"""The typed aggregate store: load a stream as the contract's typed events and append typed
events, so no call site builds a `NewEvent` by hand. What an event is addressed to (its NATS
subject) and which clinic owns it (`clinicid`, the key other services use for patient access)
are said once per aggregate, when its store is made."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from care_shared.contracts import EventData, decode
from care_shared.eventstore import EventStore, NewEvent, StoredEvent


def patient_subject(event: EventData) -> str:
    return event.patient_id  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Loaded:
    """A stream as it stands: its typed events, its version and its owning clinic."""

    events: list[EventData]
    version: int
    clinic_id: str | None

    @property
    def exists(self) -> bool:
        return self.version > 0


class AggregateStore:
    def __init__(self, store: EventStore, subject: Callable[[EventData], str] = patient_subject) -> None:
        self.store = store
        self.subject = subject

    async def load(self, session, stream_id: str) -> Loaded:
        stored = await self.store.read_stream(session, stream_id)
        return Loaded(
            events=[decode(e.type, e.data) for e in stored],
            version=stored[-1].version if stored else 0,
            clinic_id=stored[0].meta.get("clinicid") if stored else None,
        )

    async def version(self, session, stream_id: str) -> int:
        return await self.store.current_version(session, stream_id)

    async def append(
        self,
        session,
        stream_id: str,
        expected_version: int,
        new_events: Sequence[EventData],
        *,
        clinic_id: str | None = None,
        publish: bool = True,
    ) -> list[StoredEvent]:
        """Append at the version the decision was made on: a concurrent writer makes this
        raise ConcurrencyError, so of two racing commands exactly one wins."""
        meta = {"clinicid": clinic_id} if clinic_id else {}
        return await self.store.append(
            session,
            stream_id,
            expected_version,
            [
                NewEvent(type=e.event_type, subject=self.subject(e), data=e.to_data(), meta=meta)
                for e in new_events
            ],
            publish=publish,
        )
