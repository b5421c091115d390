"""Clinical codes as data (`data/codes.json`): RxNorm for each agent of the drug table,
SNOMED CT for the non-drug modalities, ICD-10 for the depressive episode by severity and
psychotic features, LOINC for the instruments. Used by intake's FHIR facade and pathway's
CDS Hooks service.

A code is only as good as its check: each entry says `verified`. An unverified code is
absent (None) rather than guessed, or a candidate a terminologist must confirm; FHIR output
sends only verified codes and always the text, so nothing is lost.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"


@cache
def table() -> dict[str, Any]:
    return json.loads(files("care_shared").joinpath("data/codes.json").read_text())


def agent_codes(agent: str) -> dict[str, Any] | None:
    """{rxnorm, verified} for a drug-table generic name; None for an agent the table lacks."""
    return table()["agents"].get(agent)


def modality_code(kind: str) -> dict[str, Any] | None:
    return table()["modalities"].get(kind)


def episode_code(severity: str | None, psychotic_features: bool, recurrent: bool) -> dict[str, Any]:
    """ICD-10 F32 (single) or F33 (recurrent) by severity; psychotic features only mark a
    severe episode (ICD-10 has no mild or moderate episode with psychotic symptoms)."""
    key = severity or "unknown"
    if key == "severe" and psychotic_features:
        key = "severe_psychotic"
    return table()["episodes"]["recurrent" if recurrent else "single"][key]


def instrument_codes(instrument: str) -> dict[str, Any]:
    return table()["instruments"][instrument]
