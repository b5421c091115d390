"""Urgency (docs/CLINICAL.md section 5), decided from the suicide ratings by date, never by the order
they were entered in.

- One rating: PHQ-9 item 9 >= 1 or a clinician `flagged` risk is urgent; item 9 = 3 or
  `active_intent` is an emergency. With item 9 missing the total forces it (the other eight
  items sum to at most 24): 25-26 urgent, 27 emergency.
- Ratings are PHQ-9s with item 9 known or forced, and assessments with a clinician
  `suicide_risk`; nothing else changes urgency.
- On one date the highest rating stands; only a strictly later date can lower it. A clinician
  rating is lowered only by a later clinician rating: a later self-report can raise it, not
  lower it (convention).
- Carried per patient, across episodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pathway.engine import conventions as c
from pathway.engine.facts import Observation

LEVELS = ("routine", "urgent", "emergency")
RANK = {level: i for i, level in enumerate(LEVELS)}


@dataclass(frozen=True)
class Rating:
    observation: Observation
    level: str
    why: str

    @property
    def on(self) -> date:
        return self.observation.taken_on

    @property
    def by_clinician(self) -> bool:
        return self.observation.source == "clinician"


def rating(o: Observation) -> Rating | None:
    """The urgency one assessment gives, or None if it rates no suicidality (CLINICAL 5)."""
    found: list[tuple[str, str]] = []
    if o.instrument == "PHQ-9":
        # The other eight items sum to at most 24, so the total forces item 9 up to score - 24
        # whether or not item 9 was sent: a recorded item 9 below that contradicts the total and
        # never lowers urgency (CLINICAL 5: safety rules fail closed).
        forced = max(0, o.score - c.PHQ9_OTHER_ITEMS_MAX)
        if o.item9 is not None and o.item9 >= forced:
            level = "emergency" if o.item9 == 3 else "urgent" if o.item9 >= 1 else "routine"
            found.append((level, f"PHQ-9 item 9 = {o.item9}"))
        elif o.item9 is not None:
            level = "emergency" if forced == 3 else "urgent"
            found.append(
                (
                    level,
                    f"PHQ-9 total {o.score} with item 9 = {o.item9} is inconsistent: the total forces item 9 >= {forced}",
                )
            )
        elif o.score >= c.PHQ9_TOTAL_FORCES_URGENT:
            # item 9 not recorded: the other eight items sum to at most 24
            level = "emergency" if o.score >= c.PHQ9_TOTAL_FORCES_EMERGENCY else "urgent"
            item = "= 3" if level == "emergency" else ">= 1"
            found.append((level, f"PHQ-9 total {o.score} without item 9 forces item 9 {item}"))
    if o.suicide_risk is not None:
        level = {"none": "routine", "flagged": "urgent", "active_intent": "emergency"}[o.suicide_risk]
        found.append((level, f"clinician suicide risk {o.suicide_risk}"))
    if not found:
        return None
    level, why = max(found, key=lambda f: RANK[f[0]])
    return Rating(o, level, why)


def _highest(ratings: list[Rating]) -> Rating:
    # ties broken by event sequence only so that the same rating is named whatever the order
    return max(ratings, key=lambda r: (RANK[r.level], r.by_clinician, r.observation.sequence))


@dataclass(frozen=True)
class Urgency:
    level: str
    reason: str
    deciding: Rating | None
    later_rating: bool  # a rating dated after the deciding one exists


def urgency(observations: list[Observation]) -> Urgency:
    ratings = [r for o in observations if (r := rating(o)) is not None]
    if not ratings:
        return Urgency("routine", "no suicidality recorded", None, False)
    clinician_days = [r.on for r in ratings if r.by_clinician]
    last_day = max(r.on for r in ratings)
    if clinician_days:
        dc = max(clinician_days)
        on_dc = [r for r in ratings if r.on == dc]
        later_self = [r for r in ratings if r.on > dc]
        if later_self:
            dp = max(r.on for r in later_self)
            self_report = _highest([r for r in later_self if r.on == dp])
            floor = _highest([r for r in on_dc if r.by_clinician])
            # a self-report raises a clinician's rating, never lowers it (convention)
            deciding = self_report if RANK[self_report.level] > RANK[floor.level] else floor
            note = (
                ""
                if deciding is self_report
                else (f"; a later self-report ({self_report.level}) does not lower a clinician's rating")
            )
        else:
            deciding, note = _highest(on_dc), ""
    else:
        deciding, note = _highest([r for r in ratings if r.on == last_day]), ""
    where = f"{deciding.why}, {'clinician' if deciding.by_clinician else 'self-report'} on {deciding.on.isoformat()}"
    if deciding.level == "routine":
        reason = f"no suicidality at the latest rating ({where}){note}"
    else:
        reason = f"{deciding.level}: {where}{note}"
    return Urgency(deciding.level, reason, deciding, last_day > deciding.on)


def stale(u: Urgency, assessment_date: date | None) -> dict | None:
    """CLINICAL 5: an urgent/emergency whose deciding rating is more than 90 days before the
    assessment date, with no later rating, keeps its urgency and asks for a reassessment."""
    if u.deciding is None or u.level == "routine" or u.later_rating or assessment_date is None:
        return None
    age = (assessment_date - u.deciding.on).days
    if age <= c.STALE_RATING_DAYS:
        return None
    return {
        "flag": "reassess_suicide_risk",
        "rating_on": u.deciding.on.isoformat(),
        "age_days": age,
        "detail": f"the {u.level} rating is {age} days old (> {c.STALE_RATING_DAYS}): reassess suicide risk",
    }


def suicide_item_not_recorded(observations: list[Observation]) -> dict | None:
    """CLINICAL 5: every PHQ-9 without item 9 carries the flag; shown for the latest PHQ-9 date,
    if any PHQ-9 of that date lacks it (whatever the order they were entered in)."""
    phq9 = [o for o in observations if o.instrument == "PHQ-9"]
    if not phq9:
        return None
    day = max(o.taken_on for o in phq9)
    without = [o for o in phq9 if o.taken_on == day and o.item9 is None]
    if not without:
        return None
    latest = max(without, key=lambda o: o.score)
    forced = ""
    if latest.score >= c.PHQ9_TOTAL_FORCES_URGENT:
        forced = (
            f"; total {latest.score} forces item 9 >= 1"
            if latest.score < c.PHQ9_TOTAL_FORCES_EMERGENCY
            else (f"; total {latest.score} forces item 9 = 3")
        )
    return {"flag": "suicide_item_not_recorded", "detail": f"the latest PHQ-9 has no item 9{forced}: ask it"}
