"""Events pathway publishes on `pathway.>`."""

from __future__ import annotations

from typing import Any

from care_shared.contracts import EventData, event


@event
class AssessmentChanged(EventData):
    """A patient's assessment changed. `as_of_event` is the intake event it reflects;
    `assessment` is the full assessment (DESIGN.md section 6 shape)."""

    event_type = "care.pathway.assessment-changed.v1"
    patient_id: str
    as_of_event: str
    assessment: dict[str, Any]
