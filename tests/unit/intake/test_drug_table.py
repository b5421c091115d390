"""The drug table (shared/care_shared/data/drugs.json) matches CLINICAL.md section 2 row for
row, and names resolve as the handbook says: brand names, case, a trailing release form and the
salt words map to the generic; doses are in mg, converted exactly from the table unit."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from care_shared import drugs

# CLINICAL.md section 2 (trd-rules 2026.12), the table's rows verbatim. A changed handbook
# fails `test_the_transcription_is_the_handbooks` below, where the handbook is on disk.
SECTION_2 = """\
| SSRI | sertraline N06AB06 50-200 (Zoloft, Lustral); fluoxetine N06AB03 20-80 (Prozac, Sarafem); citalopram N06AB04 20-40 (Celexa, Cipramil); escitalopram N06AB10 10-20 (Lexapro, Cipralex); paroxetine N06AB05 20-50 (Paxil, Pexeva, Seroxat); fluvoxamine N06AB08 100-300 (Luvox, Faverin) |
| SNRI | venlafaxine N06AX16 150-375 (Effexor, Efexor); desvenlafaxine N06AX23 50-400 (Pristiq); duloxetine N06AX21 60-120 (Cymbalta); levomilnacipran N06AX28 40-120 (Fetzima) |
| TCA | amitriptyline N06AA09 150-300 (Elavil); nortriptyline N06AA10 75-150 (Pamelor, Aventyl, Allegron); imipramine N06AA02 150-300 (Tofranil); clomipramine N06AA04 150-250 (Anafranil); desipramine N06AA01 150-300 (Norpramin) |
| MAOI | phenelzine N06AF03 45-90 (Nardil); tranylcypromine N06AF04 30-60 (Parnate); moclobemide N06AG02 300-600 (Manerix, Aurorix) |
| NDRI | bupropion N06AX12 150-450 (Wellbutrin, Zyban, Aplenzin) |
| NaSSA | mirtazapine N06AX11 15-45 (Remeron, Zispin); mianserin N06AX03 30-90 (Tolvon) |
| SARI | trazodone N06AX05 150-600 (Desyrel, Oleptro, Molipaxin) |
| multimodal | vortioxetine N06AX26 10-20 (Trintellix, Brintellix); vilazodone N06AX24 20-40 (Viibryd) |
| melatonergic | agomelatine N06AX22 25-50 (Valdoxan) |
| augmenter | aripiprazole N05AX12 2-15 (Abilify); brexpiprazole N05AX16 1-3 (Rexulti); cariprazine N05AX15 1.5-3 (Vraylar, Reagila); quetiapine N05AH04 150-300 (Seroquel); olanzapine N05AH03 5-20 (Zyprexa); risperidone N05AX08 1-6 (Risperdal); ziprasidone N05AE04 40-160 (Geodon); lithium N05AN01 600-1800 (Priadel, Camcolit, Lithobid); liothyronine H03AA02 25-50 microgram (Cytomel; T3); lamotrigine N03AX09 100-400 (Lamictal); buspirone N05BE01 30-60 (BuSpar) |
| rapid-acting (kinds `esketamine`, `ketamine` only: adequacy by sessions, §1) | esketamine N06AX27, max 84 mg per session (Spravato); ketamine N01AX03 (Ketalar) |
"""

ROOT = Path(__file__).resolve().parents[3]
HANDBOOKS = [
    ROOT / "shared" / "CLINICAL.md",
    ROOT.parent / "shared" / "CLINICAL.md",
    Path("/work/shared/CLINICAL.md"),
]
ROW = re.compile(
    r"(?P<name>\w+) (?P<atc>[A-Z]\d\d[A-Z]{2}\d\d)"
    r"(?: (?P<lo>[\d.]+)-(?P<hi>[\d.]+)(?P<mcg> microgram)?)?"
    r"(?:, max (?P<session>\d+) mg per session)?"
    r" \((?P<names>[^)]*)\)$"
)


def handbook_rows() -> list[dict]:
    rows = []
    for line in SECTION_2.splitlines():
        drug_class, body = (c.strip() for c in line.strip("|").split("|"))
        drug_class = drug_class.split(" (")[0]
        for item in re.split(r";\s*(?![^()]*\))", body):
            m = ROW.match(item.strip())
            assert m, item
            brands, *aliases = (part.strip() for part in m["names"].split(";"))
            rows.append(
                {
                    "name": m["name"],
                    "class": drug_class,
                    "atc": m["atc"],
                    "lo": float(m["lo"]) if m["lo"] else None,
                    "hi": float(m["hi"]) if m["hi"] else None,
                    "unit": "microgram" if m["mcg"] else "mg",
                    "session": float(m["session"]) if m["session"] else None,
                    "brands": [b.strip() for b in brands.split(",")],
                    "aliases": aliases,
                }
            )
    return rows


ROWS = handbook_rows()


def test_the_transcription_is_the_handbooks() -> None:
    handbook = next((p for p in HANDBOOKS if p.exists()), None)
    if handbook is None:
        pytest.skip("CLINICAL.md is not on this machine")
    section = handbook.read_text().split("## 2. Drug table")[1].split("\n## 3.")[0]
    table = [
        line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| class ")
    ]
    assert "\n".join(table) + "\n" == SECTION_2


def test_the_table_has_every_agent_of_the_handbook_and_no_other() -> None:
    assert len(ROWS) == 38
    assert {r["name"] for r in ROWS} == set(drugs.all_drugs(rapid_acting=True))
    assert set(drugs.all_drugs()) == {r["name"] for r in ROWS if r["class"] != "rapid-acting"}


@pytest.mark.parametrize("row", ROWS, ids=[r["name"] for r in ROWS])
def test_each_row_matches_the_handbook(row: dict) -> None:
    drug = drugs.lookup(row["name"])
    assert drug is not None
    assert (drug.name, drug.drug_class, drug.atc, drug.unit) == (
        row["name"],
        row["class"],
        row["atc"],
        row["unit"],
    )
    factor = 1000 if row["unit"] == "microgram" else 1
    assert drug.min_mg_per_day == (row["lo"] / factor if row["lo"] is not None else None)
    assert drug.max_mg_per_day == (row["hi"] / factor if row["hi"] is not None else None)
    assert drug.max_mg_per_session == row["session"]
    assert list(drug.brands) == row["brands"] and list(drug.aliases) == row["aliases"]
    for name in (*row["brands"], *row["aliases"], row["name"].upper()):
        assert drugs.lookup(name) is drug, name
        assert drugs.normalise_agent(name) == row["name"]
    assert drug.is_augmenter == (row["class"] == "augmenter")
    assert drug.is_rapid_acting == (row["class"] == "rapid-acting")


def test_the_handbooks_examples() -> None:
    sertraline = drugs.lookup("sertraline")
    assert (sertraline.min_mg_per_day, sertraline.max_mg_per_day) == (50, 200)
    assert drugs.lookup("Zoloft") is sertraline and drugs.lookup("Lustral") is sertraline
    assert drugs.lookup("phenelzine").atc == "N06AF03"
    t3 = drugs.lookup("liothyronine")
    assert (t3.min_mg_per_day, t3.max_mg_per_day, t3.unit) == (0.025, 0.05, "microgram")
    assert drugs.from_mg(t3.min_mg_per_day, t3.unit) == 25 and drugs.from_mg(t3.max_mg_per_day, t3.unit) == 50
    esketamine = drugs.lookup("Spravato")
    assert esketamine.name == "esketamine" and esketamine.is_rapid_acting and not esketamine.is_augmenter
    assert (esketamine.min_mg_per_day, esketamine.max_mg_per_day, esketamine.max_mg_per_session) == (
        None,
        None,
        84,
    )
    assert esketamine.dose_ceiling_mg == 84
    ketamine = drugs.lookup("Ketalar")
    assert (ketamine.name, ketamine.min_mg_per_day, ketamine.dose_ceiling_mg) == ("ketamine", None, None)
    # The class comes from the table, never from an ATC prefix (all N06AX).
    assert [drugs.lookup(n).drug_class for n in ("venlafaxine", "bupropion", "mirtazapine")] == [
        "SNRI",
        "NDRI",
        "NaSSA",
    ]


@pytest.mark.parametrize(
    ("entered", "generic"),
    [
        ("Zoloft", "sertraline"),
        ("ZOLOFT", "sertraline"),
        ("  prozac ", "fluoxetine"),
        ("Effexor XR", "venlafaxine"),
        ("Effexor-XR", "venlafaxine"),
        ("efexor xl", "venlafaxine"),
        ("Wellbutrin XL", "bupropion"),
        ("bupropion SR", "bupropion"),
        ("Seroquel XR", "quetiapine"),
        ("Remeron SolTab", "mirtazapine"),
        ("mirtazapine ODT", "mirtazapine"),
        ("Lamictal ODT", "lamotrigine"),
        ("Pristiq ER", "desvenlafaxine"),
        ("paroxetine CR", "paroxetine"),
        ("Lithobid ER", "lithium"),
        ("Priadel LA", "lithium"),
        ("sertraline hydrochloride", "sertraline"),
        ("Citalopram Hydrobromide", "citalopram"),
        ("Lithium carbonate", "lithium"),
        ("lithium citrate", "lithium"),
        ("desvenlafaxine succinate", "desvenlafaxine"),
        ("escitalopram oxalate", "escitalopram"),
        ("phenelzine mesylate", "phenelzine"),
        ("venlafaxine hydrochloride XR", "venlafaxine"),
        ("T3", "liothyronine"),
        ("t3", "liothyronine"),
        ("Spravato", "esketamine"),
    ],
)
def test_names_resolve_to_the_generic(entered: str, generic: str) -> None:
    assert drugs.normalise_agent(entered) == generic
    assert drugs.lookup(entered).name == generic


def test_unknown_agents_are_kept_as_entered_and_looked_up_as_none() -> None:
    assert drugs.lookup("Zuranolone") is None
    assert drugs.normalise_agent("Zuranolone") == "zuranolone"
    assert drugs.normalise_agent("  New   Drug XR ") == "new drug xr"
    # A release form or salt word alone is not a drug, and is not emptied away.
    assert drugs.lookup("XR") is None and drugs.normalise_agent("XR") == "xr"
    assert drugs.lookup("carbonate") is None


def test_conversion_to_mg_is_exact() -> None:
    assert drugs.to_mg(25, "microgram") == 0.025
    assert drugs.to_mg(50, "microgram") == 0.05
    assert drugs.to_mg(12.5, "microgram") == 0.0125
    assert drugs.to_mg(0.025, "mg") == 0.025
    assert drugs.to_mg(150, "mg") == 150
    with pytest.raises(ValueError):
        drugs.to_mg(1, "grain")
