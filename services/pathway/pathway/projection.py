"""Applying intake events to a patient's facts in stream order, whatever order they arrive in.

JetStream does not promise per-patient order to a shared durable consumer, so each event is
placed by its stream `sequence`: applied if it is the next one, held in `pending` if it came
early (until the gap fills), ignored if already applied. The result therefore depends only
on the set of events, never on delivery order or duplicates. A gap that never fills (an
event dead-lettered upstream) holds the assessment at the last complete point, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from care_shared.contracts import decode
from pathway.engine import PatientFacts, apply, assess


@dataclass
class PatientProjection:
    facts: PatientFacts
    pending: dict[str, dict[str, Any]]  # sequence (as str, for JSON) -> {event_id, type, data}

    @classmethod
    def new(cls, patient_id: str) -> PatientProjection:
        return cls(PatientFacts.empty(patient_id), {})

    def add(self, sequence: int, event_id: str, event_type: str, data: dict[str, Any]) -> bool:
        """Take in one event; True if any event was applied."""
        if sequence <= self.facts.applied_through or str(sequence) in self.pending:
            return False  # already applied or already waiting: a duplicate
        self.pending[str(sequence)] = {"event_id": event_id, "type": event_type, "data": data}
        applied = False
        while (nxt := str(self.facts.applied_through + 1)) in self.pending:
            item = self.pending.pop(nxt)
            apply(
                self.facts, decode(item["type"], item["data"]), event_id=item["event_id"], sequence=int(nxt)
            )
            self.facts.applied_through = int(nxt)  # also for events with no clinical content
            applied = True
        return applied

    @property
    def waiting_for(self) -> int | None:
        return self.facts.applied_through + 1 if self.pending else None

    def assessment(self) -> dict[str, Any]:
        return assess(self.facts)


def acted_on(a: dict[str, Any]) -> dict[str, Any]:
    """The part of an assessment a clinician or a downstream service (referral, notify) acts on:
    status, each staging's values, urgency, flags, strategies and referral advice. Provenance is
    left out: the event it is as of, the assessment date, and the reasons and rationales, which
    cite event ids and dates that move with every event (so do the stagings' inputs)."""
    return {
        "status": a["status"],
        "stages": {
            name: None if s is None else {k: v for k, v in s.items() if k not in {"inputs", "source"}}
            for name, s in a["stages"].items()
        },
        "urgency": a["urgency"],  # also the referral's urgency
        "flags": a["flags"],  # their details name no event and no date
        "strategies": [
            {k: r[k] for k in ("strategy", "options", "setting", "priority")} for r in a["recommendations"]
        ],
        "referral": {k: a["referral"][k] for k in ("advised", "capabilities")},
        # trd-rules 2026.12 (absent from assessments stored before it)
        "rules_version": a.get("rules_version"),
        "tried": [{k: t[k] for k in ("option", "result")} for t in a.get("tried", [])],
        "declined": [x["strategy"] for x in a.get("declined", [])],
        "not_offered": [x["strategy"] for x in a.get("not_offered", [])],
        "workup": [(w["check"], w["state"]) for w in a.get("workup") or []],
    }


def same_assessment(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    """Equal in everything acted on: publish AssessmentChanged only when this is False."""
    if a is None or b is None:
        return a is b
    return acted_on(a) == acted_on(b)
