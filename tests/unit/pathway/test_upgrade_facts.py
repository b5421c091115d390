"""Facts stored by the trd-rules 2026.06 engine still load after the upgrade (CLINICAL.md 2026.12).

The old facts kept only the latest assessment, the latest suicide rating, the latest PHQ-9 and each
episode's first PHQ-9, and no sex: those are carried over, so urgency, remission, severity and the
stagings read as a fresh fold of the same events does. What only the full history gives (the TRD
risk factor female sex, every rating) needs a replay of intake's stream (`pathway rebuild` compares).
The fixture is `PatientFacts.to_json()` of the 2026.06 engine (commit 3ecb7ef) on these stories.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pathway.engine import PatientFacts, assess, fold
from pathway.projection import acted_on
from tests.unit.pathway.builders import PATIENT, ad, build, episode, phq9
from tests.unit.pathway.test_vignettes import ONSET, T1, two_failures

STORED = json.loads((Path(__file__).parent / "data" / "facts_2026_06.json").read_text())["facts"]
STORIES = {
    "trd_urgent": [episode(ONSET), phq9(18, 2, "2024-01-05"), *two_failures()],
    "severity_from_first_phq9": [
        episode(ONSET, severity=None),
        phq9(22, 0, "2024-01-05"),
        ad("sertraline", 50, *T1, max_dose=150),
        phq9(12, 0, "2024-03-10"),
    ],
    "remission_then_phq9": [
        episode(ONSET),
        ad("sertraline", 100, *T1, outcome="remission"),
        phq9(3, 0, "2024-04-01"),
    ],
}


@pytest.mark.parametrize("name", sorted(STORIES))
def test_old_facts_load_and_read_as_a_fresh_fold(name):
    old = assess(PatientFacts.from_json(STORED[name]))
    fresh = assess(fold(PATIENT, build(STORIES[name])))
    assert old["rules_version"] == "trd-rules 2026.12"
    for key in (
        "status",
        "urgency",
        "failed_adequate_trials",
        "tried",
        "declined",
        "not_offered",
        "assessment_date",
    ):
        assert old[key] == fresh[key], key
    assert acted_on(old)["stages"] == acted_on(fresh)["stages"]
    if fresh["status"] not in {"no_adequate_failure", "inadequate_response"}:
        assert acted_on(old) == acted_on(fresh)  # nothing read from sex


def test_old_facts_hand_worked():
    # trd_urgent: item 9 = 2 -> urgent (CLINICAL 5); sertraline and venlafaxine failed -> trd; Maudsley
    # 1 + 3 + 1 + 0 + 0 = 5. severity_from_first_phq9: severe from the first PHQ-9 of 22 (CLINICAL 4),
    # Maudsley 1 + 4 + 1 = 6; MGH 1 + 0.5 (150 > 50, the trial-level maximum carried to the agent) = 1.5.
    a = assess(PatientFacts.from_json(STORED["trd_urgent"]))
    assert (a["status"], a["urgency"], a["stages"]["maudsley"]["score"]) == ("trd", "urgent", 5)
    b = assess(PatientFacts.from_json(STORED["severity_from_first_phq9"]))
    assert (b["status"], b["stages"]["maudsley"]["score"], b["stages"]["mgh"]["score"]) == (
        "inadequate_response",
        6,
        1.5,
    )
    c = assess(PatientFacts.from_json(STORED["remission_then_phq9"]))
    assert c["status"] == "in_remission"
