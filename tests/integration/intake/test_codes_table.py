"""The codes table (shared/care_shared/data/codes.json) covers the drug table: no agent lacks
an entry, no verified entry lacks its code, and every trial kind and instrument has a row."""

from __future__ import annotations

import re

from care_shared import codes, drugs
from care_shared.contracts.intake import (
    PHQ9_ITEM_LOINC,
    PHQ9_PANEL_LOINC,
    PHQ9_TOTAL_LOINC,
    Instrument,
    Severity,
    TrialKind,
)


def test_every_agent_of_the_drug_table_has_a_row_and_nothing_else_does():
    assert set(codes.table()["agents"]) == set(drugs.all_drugs(rapid_acting=True))


def test_a_verified_code_is_present_and_an_absent_one_says_unverified():
    rows = [*codes.table()["agents"].values(), *codes.table()["modalities"].values()]
    for row in rows:
        code = row.get("rxnorm", row.get("snomed"))
        if row["verified"]:
            assert code and re.fullmatch(r"\d{1,18}", code), row
        elif code is not None:
            assert re.fullmatch(r"\d{1,18}", code), row


def test_verified_rxnorm_ingredients_from_cpic():
    # Spot checks against CPIC's drug table, so a transposed row fails.
    assert codes.agent_codes("sertraline") == {"rxnorm": "36437", "verified": True}
    assert codes.agent_codes("escitalopram")["rxnorm"] == "321988"
    assert codes.agent_codes("aripiprazole")["rxnorm"] == "89013"


def test_every_non_drug_kind_has_a_modality_row():
    non_drug = {k for k in TrialKind} - {
        TrialKind.ANTIDEPRESSANT,
        TrialKind.AUGMENTATION,
        TrialKind.COMBINATION,
    }
    assert {str(k) for k in non_drug} <= set(codes.table()["modalities"])


def test_episode_codes_by_severity_and_psychotic_features():
    assert codes.episode_code("severe", True, recurrent=False)["icd10"] == "F32.3"
    assert codes.episode_code("severe", False, recurrent=True)["icd10"] == "F33.2"
    assert codes.episode_code("moderate", True, recurrent=False)["icd10"] == "F32.1"
    assert codes.episode_code(None, False, recurrent=False)["icd10"] == "F32.9"
    for severity in Severity:
        for recurrent in (False, True):
            assert re.fullmatch(r"F3[23]\.\d", codes.episode_code(severity, False, recurrent)["icd10"])


def test_instruments_and_the_phq9_panel_match_the_contract():
    assert set(codes.table()["instruments"]) == {str(i) for i in Instrument}
    phq9 = codes.instrument_codes("PHQ-9")
    assert (phq9["loinc_panel"], phq9["loinc_total"], tuple(phq9["items"])) == (
        PHQ9_PANEL_LOINC,
        PHQ9_TOTAL_LOINC,
        PHQ9_ITEM_LOINC,
    )
