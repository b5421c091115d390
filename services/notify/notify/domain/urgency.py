"""A patient's urgency and crisis facts as a fold of pathway's assessment-changed events.

Events may arrive in any order and more than once. Newer is later in pathway's stream for the
patient (its position, never a larger id), so an older assessment never overwrites a newer
urgency, and a repeat changes nothing. A rise to urgent or emergency (from routine, or no
assessment yet) is remembered until urgency goes down again: one crisis-resources message
per rise, not one per urgent assessment.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from care_shared.contracts.pathway import Urgency

RAISED_URGENCY = frozenset({Urgency.URGENT, Urgency.EMERGENCY})


@dataclass(frozen=True)
class UrgencyChange:
    """What notify takes from one assessment-changed: urgency, the intake event it reflects,
    its position in pathway's stream, and notify's time when it arrived."""

    urgency: Urgency
    as_of_event: str | None
    position: int
    at: datetime


@dataclass(frozen=True)
class UrgencyFacts:
    urgency: Urgency = Urgency.ROUTINE
    as_of_event: str | None = None
    position: int | None = None
    # The latest rise (the assessment that raised it, notify's time then); None while routine.
    crisis_since: str | None = None
    crisis_raised_at: datetime | None = None

    @property
    def raised(self) -> bool:
        return self.urgency in RAISED_URGENCY


def take(facts: UrgencyFacts, change: UrgencyChange) -> UrgencyFacts:
    if facts.position is not None and facts.position >= change.position:
        return facts  # older than (or the same as) what the facts already reflect
    raised = change.urgency in RAISED_URGENCY
    if not raised:
        crisis_since, crisis_raised_at = None, None
    elif not facts.raised:
        crisis_since, crisis_raised_at = change.as_of_event, change.at
    else:
        crisis_since, crisis_raised_at = facts.crisis_since, facts.crisis_raised_at
    return UrgencyFacts(change.urgency, change.as_of_event, change.position, crisis_since, crisis_raised_at)


def fold(changes: Iterable[UrgencyChange], facts: UrgencyFacts | None = None) -> UrgencyFacts:
    facts = facts or UrgencyFacts()
    for change in changes:
        facts = take(facts, change)
    return facts
