"""The referral rules, pure: routing for a table of clinics and needs, the state machine,
escalation limits and queue order. Readable without knowing the service."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from care_shared.contracts.pathway import Urgency
from referral import domain
from referral.domain import Advice, ClinicLoad, DirectoryClinic, choose_clinic

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def clinic(cid: str, region: str, caps: str, capacity: int = 10) -> DirectoryClinic:
    return DirectoryClinic(cid, cid, region, frozenset(caps.split()), capacity)


DIRECTORY = [
    clinic("north-mdc", "north", "mood_disorder_clinic psychotherapy", 10),
    clinic("north-ect", "north", "mood_disorder_clinic ect esketamine", 5),
    clinic("south-ect", "south", "mood_disorder_clinic ect", 20),
    clinic("south-trials", "south", "mood_disorder_clinic vns dbs clinical_trials rtms", 4),
    clinic("east-therapy", "east", "psychotherapy", 30),
]


@pytest.mark.parametrize(
    "needs, region, loads, excluded, expected",
    [
        # every needed capability, in the patient's region first
        ("mood_disorder_clinic", "north", {}, (), "north-mdc"),
        ("mood_disorder_clinic ect", "north", {}, (), "north-ect"),
        ("mood_disorder_clinic ect", "south", {}, (), "south-ect"),
        # only one clinic anywhere has it: region does not matter then
        ("mood_disorder_clinic clinical_trials", "north", {}, (), "south-trials"),
        # same region: most remaining capacity this week wins
        ("mood_disorder_clinic", "north", {"north-mdc": ClinicLoad(routed_this_week=8)}, (), "north-ect"),
        # same remaining capacity: shortest queue wins
        (
            "mood_disorder_clinic",
            "north",
            {"north-mdc": ClinicLoad(5, queue=9), "north-ect": ClinicLoad(0, queue=1)},
            (),
            "north-ect",
        ),
        # region comes before capacity
        ("mood_disorder_clinic ect", "north", {"north-ect": ClinicLoad(routed_this_week=5)}, (), "north-ect"),
        # unknown region: capacity decides
        ("mood_disorder_clinic ect", None, {}, (), "south-ect"),
        # never back to a clinic that declined
        ("mood_disorder_clinic ect", "north", {}, ("north-ect",), "south-ect"),
        ("psychotherapy", "east", {}, (), "east-therapy"),
    ],
)
def test_routing_table(needs: str, region: str | None, loads: dict, excluded: tuple, expected: str) -> None:
    route = choose_clinic(needs.split(), region, DIRECTORY, loads, excluded)
    assert route.clinic is not None and route.clinic.clinic_id == expected


@pytest.mark.parametrize(
    "needs, excluded, missing, not_together, reason",
    [
        # nobody offers ketamine
        ("mood_disorder_clinic ketamine", (), ("ketamine",), (), "no clinic offers ketamine"),
        # each is offered (north-ect, south-trials), never both by one clinic: neither is missing alone
        (
            "ect clinical_trials",
            (),
            (),
            ("clinical_trials", "ect"),
            "no one clinic offers clinical_trials and ect together",
        ),
        # both at once: one offered nowhere, the rest never together
        (
            "mood_disorder_clinic ketamine ect clinical_trials",
            (),
            ("ketamine",),
            ("clinical_trials", "ect", "mood_disorder_clinic"),
            "no clinic offers ketamine; no one clinic offers clinical_trials, ect and mood_disorder_clinic together",
        ),
        # the only one offering it declined
        (
            "mood_disorder_clinic clinical_trials",
            ("south-trials",),
            ("clinical_trials",),
            (),
            "no clinic offers clinical_trials (not counting the clinics that declined)",
        ),
    ],
)
def test_no_fit_names_what_is_missing_truthfully(
    needs: str, excluded: tuple, missing: tuple, not_together: tuple, reason: str
) -> None:
    route = choose_clinic(needs.split(), "north", DIRECTORY, {}, excluded)
    assert (route.clinic, route.missing, route.not_together) == (None, missing, not_together)
    # The referral keeps it through its events, and says it in words.
    r = opened(caps=tuple(needs.split()))
    while r.clinic_id is not None:  # routed to the clinics in `excluded`: each declines
        r = then(r, domain.decline(r, "c1", "full", NOW, DIRECTORY, {}))
    assert r.declined_by == excluded
    assert (r.status, r.missing, r.not_together, r.unroutable_reason()) == (
        "unroutable",
        missing,
        not_together,
        reason,
    )


def test_need_is_one_per_kind_of_clinic_whatever_the_details() -> None:
    assert domain.need_of(["mood_disorder_clinic"]) == domain.need_of(
        ["ect", "mood_disorder_clinic", "clinical_trials"]
    )
    assert (
        domain.need_of(["rtms", "psychotherapy"])
        == domain.need_of(["psychotherapy", "rtms"])
        == "psychotherapy+rtms"
    )
    assert domain.referral_id_for("p1", "mood_disorder_clinic") == domain.referral_id_for(
        "p1", "mood_disorder_clinic"
    )
    # A later referral for the same need (once the last is closed) has its own id.
    assert domain.referral_id_for("p1", "mood_disorder_clinic", 2) != domain.referral_id_for(
        "p1", "mood_disorder_clinic"
    )


def opened(
    urgency: Urgency = Urgency.ROUTINE, caps: tuple = ("mood_disorder_clinic",), directory=DIRECTORY
) -> domain.Referral:
    events = domain.open_referral(
        patient_id="p1",
        advice=Advice(urgency, caps, ("status trd",), "0001", 1),
        region="north",
        now=NOW,
        clinics=directory,
        loads={},
    )
    return domain.fold(events)


def then(r: domain.Referral, events: list) -> domain.Referral:
    for e in events:
        r = domain.apply(r, e)
    return r


def test_a_referral_through_its_life() -> None:
    r = opened()
    assert (r.status, r.clinic_id) == ("queued", "north-mdc")
    r = then(r, domain.claim(r, "c1", NOW))
    r = then(r, domain.schedule(r, "c1", NOW + timedelta(days=3), NOW))
    r = then(r, domain.complete(r, NOW))
    assert r.status == "completed"
    assert [h["event"] for h in r.history] == [
        "opened",
        "routed",
        "task-queued",
        "claimed",
        "scheduled",
        "completed",
    ]


@pytest.mark.parametrize(
    "setup, command",
    [
        ("queued", lambda r: domain.complete(r, NOW)),
        ("queued", lambda r: domain.schedule(r, "c1", NOW + timedelta(days=1), NOW)),
        ("claimed-by-c1", lambda r: domain.claim(r, "c2", NOW)),
        ("claimed-by-c1", lambda r: domain.schedule(r, "c2", NOW + timedelta(days=1), NOW)),
        ("completed", lambda r: domain.claim(r, "c1", NOW)),
        ("completed", lambda r: domain.cancel(r, "no longer needed", NOW)),
        ("unroutable", lambda r: domain.decline(r, "c1", "full", NOW, DIRECTORY, {})),
    ],
)
def test_illegal_transitions_are_refused(setup: str, command) -> None:
    r = opened(caps=("ketamine",)) if setup == "unroutable" else opened()
    if setup.startswith("claimed") or setup == "completed":
        r = then(r, domain.claim(r, "c1", NOW))
    if setup == "completed":
        r = then(r, domain.schedule(r, "c1", NOW + timedelta(days=1), NOW))
        r = then(r, domain.complete(r, NOW))
    with pytest.raises(domain.IllegalTransition):
        command(r)


def test_a_lease_runs_out_and_the_task_is_back_in_the_queue() -> None:
    r = opened()
    r = then(r, domain.claim(r, "c1", NOW))
    assert r.status_at(NOW + timedelta(minutes=14)) == "claimed"
    assert r.status_at(NOW + timedelta(minutes=15)) == "queued"
    later = NOW + timedelta(minutes=16)
    r = then(r, domain.claim(r, "c2", later))  # another coordinator may take it now
    assert (r.claimed_by, r.status_at(later)) == ("c2", "claimed")


def _claimed(unroutable: bool = False, minutes: int = 15) -> domain.Referral:
    r = opened(caps=("ketamine",)) if unroutable else opened()
    return then(r, domain.claim(r, "c1", NOW, timedelta(minutes=minutes)))


LEASE_END = NOW + timedelta(minutes=15)


@pytest.mark.parametrize(
    "case, referral, at, status, claimed_by, waiting_since",
    [
        # the lease's last instant before its end: still held
        ("before the end", _claimed, LEASE_END - timedelta(microseconds=1), "claimed", "c1", None),
        # at its very end (lease_until <= now) it has run out: back in the queue, waiting since then
        ("at the end", _claimed, LEASE_END, "queued", None, LEASE_END),
        ("long after", _claimed, LEASE_END + timedelta(days=30), "queued", None, LEASE_END),
        # without a clinic it goes back to where it was: unroutable
        ("unroutable", lambda: _claimed(unroutable=True), LEASE_END, "unroutable", None, LEASE_END),
        # a longer lease ends later
        ("a 60-minute lease", lambda: _claimed(minutes=60), LEASE_END, "claimed", "c1", None),
        # accepted or scheduled: no lease to run out
        (
            "accepted",
            lambda: then(_claimed(), domain.accept(_claimed(), "c1", NOW)),
            LEASE_END,
            "accepted",
            "c1",
            None,
        ),
        # never claimed: waiting since it was queued
        ("queued", opened, LEASE_END, "queued", None, NOW),
    ],
)
def test_the_lease_rule_at_its_edges(
    case: str, referral, at: datetime, status: str, claimed_by, waiting_since
) -> None:
    """One rule (Referral.as_at), read by every caller: status_at, waiting_since, escalation,
    the queue's order and the API's view."""
    r = referral()
    now = r.as_at(at)
    assert (now.status, now.claimed_by, r.status_at(at), r.waiting_since(at)) == (
        status,
        claimed_by,
        status,
        waiting_since,
    )
    assert r.lease_ran_out(at) == (r.status == "claimed" and status != "claimed")
    # An escalation recorded for a lapsed claim reads the same way as the lapsed claim.
    if r.lease_ran_out(at):
        limit = domain.ESCALATE_AFTER[r.urgency]
        [escalated] = domain.escalate(r, at + limit)
        after = domain.apply(r, escalated)
        assert (after.status, after.claimed_by, after.lease_until) == (now.status, None, None)
        assert after.unclaimed_since == now.unclaimed_since == LEASE_END


def test_the_queue_key_reads_a_lapsed_lease_as_waiting_since_its_end() -> None:
    r = _claimed()
    held = domain.queue_key(r, LEASE_END - timedelta(seconds=1))
    lapsed = domain.queue_key(r, LEASE_END)
    assert held[2] == NOW.timestamp()  # in hand: ordered by when it was opened
    assert lapsed[2] == LEASE_END.timestamp()  # back in the queue: waiting since the lease's end


@pytest.mark.parametrize(
    "urgency, limit",
    [
        (Urgency.EMERGENCY, timedelta(minutes=15)),
        (Urgency.URGENT, timedelta(hours=24)),
        (Urgency.ROUTINE, timedelta(days=5)),
    ],
)
def test_escalation_after_the_limit_for_its_urgency(urgency: Urgency, limit: timedelta) -> None:
    r = opened(urgency)
    assert domain.escalate(r, NOW + limit - timedelta(seconds=1)) == []
    [escalated] = domain.escalate(r, NOW + limit)
    r = then(r, [escalated])
    assert r.is_escalated() and domain.escalate(r, NOW + 2 * limit) == []  # once per wait


@pytest.mark.parametrize(
    "claimed_first, after", [(False, timedelta(0)), (False, timedelta(hours=1)), (True, timedelta(hours=1))]
)
def test_an_escalation_ends_with_its_wait_and_a_rerouted_task_starts_a_new_clock(
    claimed_first: bool, after: timedelta
) -> None:
    limit = domain.ESCALATE_AFTER[Urgency.ROUTINE]
    r = opened()
    r = then(r, domain.escalate(r, NOW + limit))
    assert r.is_escalated()
    declined_at = NOW + limit + after  # at the escalation's very instant, too
    if claimed_first:
        r = then(r, domain.claim(r, "c1", declined_at))
        assert not r.is_escalated()  # a coordinator has it: the wait is over
    r = then(r, domain.decline(r, "c1", "full", declined_at, DIRECTORY, {}))
    assert (r.clinic_id, r.status_at(declined_at)) == ("north-ect", "queued")
    assert not r.is_escalated() and r.waiting_since(declined_at) == declined_at
    # The new clinic's clock: escalated again only after the limit from the re-route.
    assert domain.escalate(r, declined_at + limit - timedelta(seconds=1)) == []
    r = then(r, domain.escalate(r, declined_at + limit))
    assert r.is_escalated()


def test_an_escalated_task_whose_lease_runs_out_waits_afresh() -> None:
    limit = domain.ESCALATE_AFTER[Urgency.URGENT]
    r = opened(Urgency.URGENT)
    r = then(r, domain.escalate(r, NOW + limit))
    r = then(r, domain.claim(r, "c1", NOW + limit))
    lease_end = NOW + limit + domain.DEFAULT_LEASE
    assert r.status_at(lease_end) == "queued" and not r.is_escalated()
    assert domain.escalate(r, lease_end + limit - timedelta(seconds=1)) == []
    escalated = then(r, domain.escalate(r, lease_end + limit))
    # The escalation of a lapsed claim shows: the task is back in the queue, escalated, and
    # moves up; it is not escalated again for the same wait.
    assert (escalated.status, escalated.claimed_by, escalated.is_escalated()) == ("queued", None, True)
    assert escalated.waiting_since(lease_end + limit) == lease_end
    assert domain.escalate(escalated, lease_end + 3 * limit) == []


def test_decline_reroutes_and_never_returns_to_a_decliner() -> None:
    r = opened(caps=("mood_disorder_clinic", "ect"))
    assert r.clinic_id == "north-ect"
    r = then(r, domain.decline(r, "c1", "no ECT slots", NOW, DIRECTORY, {}))
    assert r.clinic_id == "south-ect" and r.declined_by == ("north-ect",)
    r = then(r, domain.decline(r, "c1", "full", NOW, DIRECTORY, {}))
    assert (r.status, r.clinic_id, r.missing) == ("unroutable", None, ("ect",))


def test_a_closed_referral_gives_way_to_the_next_for_newer_advice_only() -> None:
    first = opened()
    first = then(first, domain.claim(first, "c1", NOW))
    first = then(first, domain.schedule(first, "c1", NOW + timedelta(days=3), NOW))
    first = then(first, domain.complete(first, NOW + timedelta(days=3)))
    later = NOW + timedelta(days=60)

    def advise(last: domain.Referral, advice: Advice) -> list:
        return domain.take_advice(
            last,
            last_sequence=1,
            patient_id="p1",
            advice=advice,
            region="north",
            now=later,
            clinics=DIRECTORY,
            loads={},
        )

    # Its own assessment again (or an older one) was taken already: nothing reopens.
    assert advise(first, Advice(Urgency.ROUTINE, ("mood_disorder_clinic",), ("status trd",), "0001", 1)) == []
    assert (
        advise(
            first,
            Advice(Urgency.EMERGENCY, ("mood_disorder_clinic",), ("suicidality (emergency)",), "0000", 0),
        )
        == []
    )
    # Newer advice that is routine: the patient was seen for this need; no re-referral.
    assert advise(first, Advice(Urgency.ROUTINE, ("mood_disorder_clinic",), ("status trd",), "0002", 2)) == []
    # Suicidality refers every time (CLINICAL.md 5), even after an urgent referral was closed.
    urgent_before = domain.fold(
        [
            *domain.open_referral(
                patient_id="p1",
                advice=Advice(
                    Urgency.URGENT, ("mood_disorder_clinic",), ("suicidality (urgent)",), "0001", 1
                ),
                region="north",
                now=NOW,
                clinics=DIRECTORY,
                loads={},
            )
        ]
    )
    urgent_before = then(urgent_before, domain.cancel(urgent_before, "patient moved away", NOW))
    again = domain.fold(
        advise(
            urgent_before,
            Advice(Urgency.URGENT, ("mood_disorder_clinic",), ("suicidality (urgent)",), "0002", 2),
        )
    )
    assert again.urgency == Urgency.URGENT and again.status in ("queued", "unroutable")
    # Newer, more urgent advice opens the second referral for the need.
    emergency = Advice(Urgency.EMERGENCY, ("mood_disorder_clinic",), ("suicidality (emergency)",), "0002", 2)
    second = domain.fold(advise(first, emergency))
    assert second.referral_id == domain.referral_id_for("p1", "mood_disorder_clinic", 2) != first.referral_id
    assert (second.status, second.urgency, second.clinic_id) == ("queued", Urgency.EMERGENCY, "north-mdc")
    # While one is open, advice updates it: never a second open one.
    newer = Advice(Urgency.URGENT, ("mood_disorder_clinic",), ("suicidality (urgent)",), "0003", 3)
    assert [
        type(e).__name__
        for e in domain.take_advice(
            second,
            last_sequence=2,
            patient_id="p1",
            advice=newer,
            region="north",
            now=later,
            clinics=DIRECTORY,
            loads={},
        )
    ] == ["ReferralReassessed"]


def test_older_advice_arriving_late_changes_nothing() -> None:
    r = opened(Urgency.URGENT)
    older = Advice(Urgency.ROUTINE, ("mood_disorder_clinic",), ("status trd",), "0000", 0)
    assert domain.reassess(r, older, NOW, DIRECTORY, {}) == []
    newer = Advice(Urgency.EMERGENCY, ("mood_disorder_clinic",), ("suicidality (emergency)",), "0002", 2)
    assert then(r, domain.reassess(r, newer, NOW, DIRECTORY, {})).urgency == Urgency.EMERGENCY


def test_queue_order_emergency_urgent_routine_then_oldest_and_escalated_moves_up() -> None:
    t = NOW
    tasks = {
        "routine-old": domain.queue_order(Urgency.ROUTINE, False, t - timedelta(days=2), None),
        "routine-new": domain.queue_order(Urgency.ROUTINE, False, t, None),
        "urgent": domain.queue_order(Urgency.URGENT, False, t, None),
        "emergency": domain.queue_order(Urgency.EMERGENCY, False, t, None),
        "routine-escalated": domain.queue_order(Urgency.ROUTINE, True, t - timedelta(days=6), None),
    }
    order = sorted(tasks, key=tasks.get)
    assert order == ["emergency", "urgent", "routine-escalated", "routine-old", "routine-new"]
