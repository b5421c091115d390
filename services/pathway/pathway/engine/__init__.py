"""The TRD clinical engine: a pure function of a patient's intake events (docs/CLINICAL.md).

    facts = PatientFacts.empty(patient_id)
    for event in events_in_stream_order: facts = apply(facts, event)
    assessment = assess(facts)

`apply` folds one event into a small state whose size does not grow with the number of
assessments, so the cost of a new event stays flat however long the history. `assess` turns
facts into the assessment clinicians read: status, trial adequacy, three stagings, urgency,
flags, recommendations and referral advice, each with its reasons and its source.
"""

from pathway.engine.assessment import assess
from pathway.engine.facts import PatientFacts, apply, fold

__all__ = ["PatientFacts", "apply", "assess", "fold"]
