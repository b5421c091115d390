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


class TriedOption(BaseModel):
    """CLINICAL.md section 6: an agent or modality that failed adequately or was stopped for
    intolerance in the episode; never recommended again."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    option: str
    trial_id: str
    result: str  # failed_adequate | intolerance
    ended_on: str


class DeclinedStrategy(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    strategy: str
    recorded_on: str


class NotOffered(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    strategy: str
    reason: str
    source: str


class AssessmentSummary(BaseModel):
    """The fields of an assessment other services act on. The full assessment (DESIGN.md
    section 6: stages, flags, recommendations with their reasons, workup, journal) travels
    alongside; readers ignore what they do not use. v2 (trd-rules 2026.12) adds the rule set
    and the lists kept apart from the recommendations; a v1 assessment has none of them."""

    model_config = ConfigDict(extra="allow", frozen=True)
    status: str
    urgency: Urgency
    referral: ReferralAdvice
    rules_version: str | None = None  # e.g. "trd-rules 2026.12"; None in v1 data
    tried: list[TriedOption] = []
    declined: list[DeclinedStrategy] = []
    not_offered: list[NotOffered] = []


@event
class AssessmentChanged(EventData):
    """A patient's assessment changed. `as_of_event` is the latest intake event it reflects."""

    event_type = "care.pathway.assessment-changed.v2"
    reads_versions = (1,)  # v2 added rules_version, tried, declined and not_offered (optional)
    patient_id: str
    as_of_event: str
    assessment: AssessmentSummary


@event
class CdsCardIssued(EventData):
    """pathway's CDS Hooks service answered a hook with this card (issue 16), so feedback on
    it can be traced to the patient, the clinic and the advice it carried. Kept in pathway's
    own store, not published: nothing on the bus acts on it."""

    event_type = "care.pathway.cds-card-issued.v1"
    patient_id: str
    card_id: str
    clinic_id: str
    service_id: str  # trd-patient-view | trd-order-select
    kind: str  # status | strategy | urgency | referral | failed_agent | buspirone | low_dose
    hook_instance: str


@event
class CdsCardFeedbackRecorded(EventData):
    """A clinician accepted or overrode a card (CDS Hooks 2.0 feedback). The override reason
    is its coding only: the free-text `userComment` may name the patient, so it is recorded
    only as present or not. Kept in pathway's own store, not published."""

    event_type = "care.pathway.cds-card-feedback.v1"
    patient_id: str
    card_id: str
    service_id: str
    outcome: str  # accepted | overridden
    accepted_suggestions: list[str] = []
    override_reason_system: str | None = None
    override_reason_code: str | None = None
    user_comment_given: bool = False
    outcome_timestamp: str
