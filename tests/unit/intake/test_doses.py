"""intake's dose rules, pure (CLINICAL.md 2): names resolved to the generic, doses in mg
converted exactly from the unit entered (none: the agent's table unit), and the plausibility
band (above 3 x the maximum or below the minimum / 20 refused, the bounds themselves kept)."""

from __future__ import annotations

import pytest

from care_shared.contracts.intake import DoseUnit
from intake.domain import DoseIn, Rejected, resolve_dose


def resolve(agent: str, dose: float | None, unit: DoseUnit | None = None):
    return resolve_dose(DoseIn(agent, dose, unit), agent_field="agent", dose_field="dose")


@pytest.mark.parametrize(
    ("agent", "dose", "unit", "mg"),
    [
        ("sertraline", 600, None, 600),  # 3 x 200: the bound is kept
        ("sertraline", 2.5, None, 2.5),  # 50 / 20
        ("T3", 150, None, 0.15),  # 3 x 50 micrograms
        ("T3", 0.15, DoseUnit.MG, 0.15),
        ("T3", 1.25, None, 0.00125),  # 25 / 20 micrograms
        ("cariprazine", 0.075, None, 0.075),  # 1.5 / 20
        ("Spravato", 252, None, 252),  # 3 x 84 mg per session
        ("Spravato", 0.001, None, 0.001),  # no minimum: adequacy is by sessions
        ("Ketalar", 5000, None, 5000),  # no doses in the table
        ("Zuranolone", 1e6, None, 1e6),  # unknown: not checked
    ],
)
def test_doses_inside_the_band_are_kept_in_mg(
    agent: str, dose: float, unit: DoseUnit | None, mg: float
) -> None:
    assert resolve(agent, dose, unit).dose_mg_per_day == mg


@pytest.mark.parametrize(
    ("agent", "dose", "unit"),
    [
        ("sertraline", 600.001, None),
        ("sertraline", 2.499, None),
        ("T3", 150.1, None),
        ("T3", 25, DoseUnit.MG),  # the handbook's example: liothyronine "25 mg"
        ("T3", 1.24, None),
        ("Lithium carbonate", 5401, None),
        ("Spravato", 252.1, None),
        ("sertraline", 100, DoseUnit.MICROGRAM),
    ],
)
def test_doses_outside_the_band_are_refused_naming_the_field(
    agent: str, dose: float, unit: DoseUnit | None
) -> None:
    with pytest.raises(Rejected) as refused:
        resolve(agent, dose, unit)
    assert refused.value.field == "dose"
    assert str(dose) not in refused.value.reason  # the dose sent is clinical data: never echoed


def test_the_event_carries_the_generic_the_entered_name_and_the_unit_applied() -> None:
    dose = resolve("  Effexor XR ", 150)
    assert (dose.agent, dose.entered_as, dose.dose_mg_per_day, dose.unit) == (
        "venlafaxine",
        "Effexor XR",
        150,
        DoseUnit.MG,
    )
    t3 = resolve("T3", 25)
    assert (t3.agent, t3.dose_mg_per_day, t3.unit) == ("liothyronine", 0.025, DoseUnit.MICROGRAM)
    no_dose = resolve("Zoloft", None, DoseUnit.MG)
    assert (no_dose.agent, no_dose.dose_mg_per_day, no_dose.unit) == ("sertraline", None, None)
    unknown = resolve("New Drug", 10)
    assert (unknown.agent, unknown.unit) == ("new drug", DoseUnit.MG)
