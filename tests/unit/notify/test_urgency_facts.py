"""notify's urgency and crisis facts, pure: given these assessment-changed events, in this
order, these are the facts (CLINICAL.md: one crisis-resources message per rise)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from care_shared.contracts.pathway import Urgency
from notify.domain.urgency import UrgencyChange, UrgencyFacts, fold, take

T0 = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
R, U, E = Urgency.ROUTINE, Urgency.URGENT, Urgency.EMERGENCY


def change(position: int, urgency: Urgency) -> UrgencyChange:
    return UrgencyChange(urgency, f"as-of-{position}", position, T0 + timedelta(minutes=position))


def test_a_rise_is_remembered_with_the_assessment_that_raised_it() -> None:
    facts = fold([change(1, R), change(2, U)])
    assert (facts.urgency, facts.crisis_since, facts.crisis_raised_at) == (
        U,
        "as-of-2",
        T0 + timedelta(minutes=2),
    )


def test_a_second_urgent_assessment_is_not_a_second_rise() -> None:
    facts = fold([change(1, U), change(2, E), change(3, U)])
    assert (facts.urgency, facts.as_of_event, facts.crisis_since) == (U, "as-of-3", "as-of-1")


def test_going_down_ends_the_rise_and_the_next_rise_is_a_new_one() -> None:
    assert fold([change(1, U), change(2, R)]).crisis_since is None
    assert fold([change(1, U), change(2, R), change(3, E)]).crisis_since == "as-of-3"


def test_an_older_assessment_never_overwrites_a_newer_urgency() -> None:
    newer = fold([change(5, R)])
    assert take(newer, change(4, E)) is newer
    assert take(newer, change(5, E)) is newer  # the same position again: a redelivery


def test_no_assessment_yet_is_routine() -> None:
    assert fold([]) == UrgencyFacts()
    assert fold([change(1, E)]).crisis_since == "as-of-1"  # rising from nothing is a rise


def rises(changes: list[UrgencyChange]) -> int:
    """Crisis messages the facts ask for: how often crisis_since takes a new value."""
    facts, count = UrgencyFacts(), 0
    for c in changes:
        after = take(facts, c)
        count += after.crisis_since is not None and after.crisis_since != facts.crisis_since
        facts = after
    return count


@given(
    st.lists(st.sampled_from([R, U, E]), min_size=1, max_size=8).flatmap(
        lambda urgencies: st.tuples(st.just(urgencies), st.permutations(range(len(urgencies))))
    ),
    st.lists(st.integers(min_value=0, max_value=7), max_size=4),
)
def test_any_order_and_any_repeats_give_the_stream_orders_urgency_and_no_extra_rise(
    given_events, repeats
) -> None:
    urgencies, order = given_events
    in_stream_order = [change(i + 1, u) for i, u in enumerate(urgencies)]
    delivered = [in_stream_order[i] for i in order] + [in_stream_order[i % len(urgencies)] for i in repeats]
    expected, facts = fold(in_stream_order), fold(delivered)
    # The newest assessment decides, whatever the order of arrival.
    assert (facts.urgency, facts.as_of_event, facts.position) == (
        expected.urgency,
        expected.as_of_event,
        expected.position,
    )
    # A crisis is on exactly while urgency is raised, and it names a raising assessment.
    assert (facts.crisis_since is not None) == facts.raised
    raising = {c.as_of_event for c in in_stream_order if c.urgency in (U, E)}
    assert facts.crisis_since is None or facts.crisis_since in raising
    # Reordering and redelivery never ask for more crisis messages than the stream has rises.
    assert rises(delivered) <= rises(in_stream_order)
