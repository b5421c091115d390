"""Events pathway publishes on `pathway.>`."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from care_shared.contracts import EventData, event


class Urgency(StrEnum):
    ROUTINE = "routine"
    URGENT = "urgent"
    EMERGENCY = "emergency"


class ReferralAdvice(BaseModel):
    """CLINICAL.md section 7: whether to refer, the capabilities the receiving clinic needs
    (ect, rtms, esketamine, ketamine, vns, dbs, clinical_trials, psychotherapy,
    mood_disorder_clinic) and the reasons, each naming its rule."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    advised: bool
    capabilities: list[str] = []
    reasons: list[str] = []


class AssessmentSummary(BaseModel):
    """The fields of an assessment other services act on. The full assessment (DESIGN.md
    section 6: stages, flags, recommendations with their reasons) travels alongside; readers
    ignore what they do not use."""

    model_config = ConfigDict(extra="allow", frozen=True)
    status: str
    urgency: Urgency
    referral: ReferralAdvice


@event
class AssessmentChanged(EventData):
    """A patient's assessment changed. `as_of_event` is the latest intake event it reflects."""

    event_type = "care.pathway.assessment-changed.v1"
    patient_id: str
    as_of_event: str
    assessment: AssessmentSummary
