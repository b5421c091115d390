"""referral on a real nats-server and a real database (SQLite and PostgreSQL): pathway's
advice in, referrals routed, and the coordinators' queue worked through the REST API."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import nats
import pytest
from sqlalchemy import func, select

from care_shared.eventstore import events
from care_shared.testing.polling import eventually
from referral.escalation import escalate_due
from referral.tables import referral_needs
from referral.work_queue import TASK_STREAM, task_subject
from tests.integration.referral.conftest import NOW, Harness, new_patient


async def stored(session, event: str, patient_id: str) -> int:
    """How many `care.referral.<event>` events (any version) referral stored for the patient."""
    query = (
        select(func.count())
        .select_from(events)
        .where(events.c.type.like(f"care.referral.{event}.v%"), events.c.subject == patient_id)
    )
    return (await session.execute(query)).scalar_one()


async def test_advice_is_routed_by_capability_region_capacity_and_queue(referral: Harness) -> None:
    h = referral
    # The referring clinic is in the north (its directory entry links its partner key).
    home = await h.add_clinic(
        "Home MDC", "north", ["mood_disorder_clinic"], capacity=2, partner=h.referring_clinic
    )
    north_ect = await h.add_clinic("North ECT", "north", ["mood_disorder_clinic", "ect"], capacity=1)
    south_ect = await h.add_clinic("South ECT", "south", ["mood_disorder_clinic", "ect"], capacity=30)
    trials = await h.add_clinic(
        "Trials centre", "south", ["mood_disorder_clinic", "clinical_trials"], capacity=3
    )

    cases = [
        (["mood_disorder_clinic"], home),  # in region, the most capacity left (2 against 1)
        (["mood_disorder_clinic"], north_ect),  # 1 left each: the shorter queue (0 against 1)
        (["mood_disorder_clinic", "ect"], north_ect),  # the region before capacity (0 left, south has 30)
        (["mood_disorder_clinic", "clinical_trials"], trials),  # only one offers it, out of region
        (["mood_disorder_clinic"], home),  # capacity again: 1 left against -1
    ]
    for capabilities, expected in cases:
        pid = new_patient()
        await h.advise(pid, capabilities=capabilities)
        r = await h.referral_of(pid, what=f"a referral needing {capabilities}")
        assert (r["clinic_id"], r["status"], r["patient_region"]) == (expected, "queued", "north"), (
            capabilities
        )
    assert south_ect  # never chosen: out of region while the north has room

    clinics = {c["id"]: c for c in (await h.get("/v1/clinics")).json()}
    assert clinics[home]["remaining_capacity"] == 0 and clinics[north_ect]["queue"] == 2


async def test_redelivered_and_reordered_advice_opens_exactly_one_referral(referral: Harness) -> None:
    h = referral
    await h.add_clinic("MDC", "north", ["mood_disorder_clinic", "ect"])
    pid = new_patient()
    older = h.assessment(pid, urgency="urgent", reasons=["suicidality (urgent)"])
    newer = h.assessment(
        pid,
        urgency="emergency",
        capabilities=["mood_disorder_clinic", "ect"],
        reasons=["suicidality (emergency)"],
    )
    # Newest first, then the older one late, then each redelivered (same event id; a new
    # message id so JetStream's own dedupe does not hide it from the consumer's inbox).
    first = await h.publish(newer, subject=pid, clinicid=h.referring_clinic)
    second = await h.publish(older, subject=pid, clinicid=h.referring_clinic)
    await h.publish(newer, subject=pid, clinicid=h.referring_clinic, event_id=first, msg_id=first + "-again")
    await h.publish(
        older, subject=pid, clinicid=h.referring_clinic, event_id=second, msg_id=second + "-again"
    )
    # A different patient's advice marks the end of the stream for this patient.
    marker = new_patient()
    await h.advise(marker)
    await h.referral_of(marker)

    [r] = await h.referrals(pid)
    assert r["urgency"] == "emergency" and r["capabilities"] == ["mood_disorder_clinic", "ect"]
    assert [e["event"] for e in r["history"]].count("opened") == 1
    async with h.runtime.db.read() as s:
        needs = (
            await s.execute(
                select(func.count()).select_from(referral_needs).where(referral_needs.c.patient_id == pid)
            )
        ).scalar_one()
        opened = await stored(s, "referral-opened", pid)
    assert (needs, opened) == (1, 1)

    # A newer assessment updates the same referral, never opens another.
    await h.advise(
        pid, urgency="urgent", capabilities=["mood_disorder_clinic", "ect"], reasons=["suicidality (urgent)"]
    )
    r = await h.referral_of(
        pid, lambda r: r["urgency"] == "urgent", what="the re-assessment to update the referral"
    )
    assert len(await h.referrals(pid)) == 1 and "reassessed" in [e["event"] for e in r["history"]]


async def test_emergency_advice_after_a_completed_referral_opens_a_new_one_at_the_head_of_the_queue(
    referral: Harness,
) -> None:
    h = referral
    mdc = await h.add_clinic("MDC", "north", ["mood_disorder_clinic"], capacity=50)
    pid = new_patient()
    earlier = h.assessment(pid)
    earlier_id = await h.publish(earlier, subject=pid, clinicid=h.referring_clinic)
    first = await h.referral_of(pid)
    await h.post(f"/v1/tasks/{first['id']}/claim")
    await h.post(f"/v1/tasks/{first['id']}/schedule", {"appointment_at": "2026-06-18T09:00:00Z"})
    h.clock.at += timedelta(days=3)
    assert (await h.post(f"/v1/tasks/{first['id']}/complete")).json()["status"] == "completed"

    h.clock.at = NOW + timedelta(days=60)
    others = [new_patient(), new_patient()]
    await h.advise(others[0], urgency="urgent", reasons=["suicidality (urgent)"])
    await h.advise(others[1])
    for other in others:
        await h.referral_of(other)

    async def settled() -> None:
        """Redeliver the earlier assessment event (its event id: the inbox knows it) and
        republish it (a new event id, as a replay would: only the referral can tell), then
        wait for a marker patient's referral: everything before it has been handled."""
        await h.publish(
            earlier,
            subject=pid,
            clinicid=h.referring_clinic,
            event_id=earlier_id,
            msg_id=earlier_id + "-again",
        )
        await h.publish(earlier, subject=pid, clinicid=h.referring_clinic)
        marker = new_patient()
        await h.advise(marker)
        await h.referral_of(marker)

    await settled()
    assert [r["id"] for r in await h.referrals(pid)] == [first["id"]]  # taken already: nothing reopens

    h.clock.at += timedelta(hours=1)
    emergency = h.assessment(pid, urgency="emergency", reasons=["suicidality (emergency)"])
    emergency_id = await h.publish(emergency, subject=pid, clinicid=h.referring_clinic)

    async def two() -> list[dict] | None:
        found = await h.referrals(pid)
        return found if len(found) == 2 else None

    old, new = await eventually(two, timeout=20, what="the emergency to open a new referral")
    assert (old["id"], old["status"]) == (first["id"], "completed")
    assert new["id"] != first["id"] and new["need"] == first["need"]
    assert (new["urgency"], new["status"], new["clinic_id"], new["opened_at"]) == (
        "emergency",
        "queued",
        mdc,
        h.clock.at.isoformat(),
    )
    assert [e["event"] for e in new["history"]] == ["opened", "routed", "task-queued"]
    # At the head of the coordinators' queue, before the urgent task that waited longer.
    assert [t["id"] for t in (await h.get("/v1/tasks")).json()][0] == new["id"]

    # The emergency redelivered, the earlier assessment again: still exactly these two.
    await h.publish(
        emergency,
        subject=pid,
        clinicid=h.referring_clinic,
        event_id=emergency_id,
        msg_id=emergency_id + "-again",
    )
    await settled()
    assert [r["id"] for r in await h.referrals(pid)] == [first["id"], new["id"]]
    assert (await h.task(new["id"]))["urgency"] == "emergency"
    async with h.runtime.db.read() as s:
        needs = (
            (
                await s.execute(
                    select(referral_needs.c.sequence)
                    .where(referral_needs.c.patient_id == pid)
                    .order_by(referral_needs.c.sequence)
                )
            )
            .scalars()
            .all()
        )
        opened = await stored(s, "referral-opened", pid)
    assert (needs, opened) == ([1, 2], 2)


async def test_unroutable_names_what_is_missing_and_a_coordinator_routes_it_by_hand(
    referral: Harness,
) -> None:
    h = referral
    mdc = await h.add_clinic("MDC", "north", ["mood_disorder_clinic"])
    pid = new_patient()
    await h.advise(pid, capabilities=["mood_disorder_clinic", "vns"])
    r = await h.referral_of(pid)
    assert (r["status"], r["clinic_id"], r["missing_capabilities"]) == ("unroutable", None, ["vns"])
    assert [t["id"] for t in (await h.get("/v1/tasks", status="unroutable")).json()] == [r["id"]]

    assert (await h.post(f"/v1/tasks/{r['id']}/route", {"clinic_id": mdc})).status_code == 409  # claim first
    assert (await h.post(f"/v1/tasks/{r['id']}/claim")).status_code == 200
    routed = await h.post(f"/v1/tasks/{r['id']}/route", {"clinic_id": mdc})
    assert routed.status_code == 200, routed.text
    assert (routed.json()["clinic_id"], routed.json()["status"]) == (mdc, "claimed")

    # Each offered somewhere, never together: nothing is missing alone, and the task says so.
    await h.add_clinic("ECT unit", "north", ["ect"])
    apart = new_patient()
    await h.advise(apart, capabilities=["mood_disorder_clinic", "ect"])
    r = await h.referral_of(apart)
    assert (r["status"], r["missing_capabilities"], r["not_offered_together"]) == (
        "unroutable",
        [],
        ["ect", "mood_disorder_clinic"],
    )
    assert r["unroutable_reason"] == "no one clinic offers ect and mood_disorder_clinic together"


async def test_decline_reroutes_to_the_next_fitting_clinic_never_back(referral: Harness) -> None:
    h = referral
    a = await h.add_clinic("A", "north", ["mood_disorder_clinic", "ect"], capacity=9)
    b = await h.add_clinic("B", "north", ["mood_disorder_clinic", "ect"], capacity=5)
    await h.add_clinic("No ECT", "north", ["mood_disorder_clinic"], capacity=50)
    pid = new_patient()
    await h.advise(pid, capabilities=["mood_disorder_clinic", "ect"])
    r = await h.referral_of(pid)
    assert r["clinic_id"] == a

    declined = await h.post(f"/v1/tasks/{r['id']}/decline", {"reason": "no ECT slots this month"})
    assert declined.status_code == 200, declined.text
    assert (declined.json()["clinic_id"], declined.json()["status"], declined.json()["declined_by"]) == (
        b,
        "queued",
        [a],
    )

    again = (await h.post(f"/v1/tasks/{r['id']}/decline", {"reason": "full"})).json()
    assert (again["status"], again["clinic_id"], again["missing_capabilities"]) == (
        "unroutable",
        None,
        ["ect"],
    )
    assert again["unroutable_reason"] == "no clinic offers ect (not counting the clinics that declined)"
    assert [d["reason"] for d in again["declines"]] == ["no ECT slots this month", "full"]
    # By hand, not back to a decliner either.
    await h.post(f"/v1/tasks/{r['id']}/claim")
    back = await h.post(f"/v1/tasks/{r['id']}/route", {"clinic_id": a})
    assert back.status_code == 422 and back.json()["field"] == "clinic_id"


async def test_claim_race_exactly_one_wins_and_the_lease_runs_out(referral: Harness) -> None:
    h = referral
    await h.add_clinic("MDC", "north", ["mood_disorder_clinic"])
    pid = new_patient()
    await h.advise(pid, urgency="urgent")
    task_id = (await h.referral_of(pid))["id"]

    one, two = await asyncio.gather(
        h.post(f"/v1/tasks/{task_id}/claim", key=h.coordinator),
        h.post(f"/v1/tasks/{task_id}/claim", key=h.coordinator_2),
    )
    assert sorted([one.status_code, two.status_code]) == [200, 409], (one.text, two.text)
    loser = two if one.status_code == 200 else one
    assert (
        loser.headers["content-type"].startswith("application/problem+json")
        and loser.json()["field"] == "status"
    )
    winner_key = h.coordinator if one.status_code == 200 else h.coordinator_2
    other_key = h.coordinator_2 if winner_key == h.coordinator else h.coordinator
    claimed = await h.task(task_id)
    assert claimed["status"] == "claimed" and claimed["lease_until"].startswith("2026-06-15T12:15")
    async with h.runtime.db.read() as s:
        claims = await stored(s, "task-claimed", pid)
    assert claims == 1

    # Before the lease ends, the other coordinator cannot claim; after it, the task is back.
    h.clock.at += timedelta(minutes=14)
    assert (await h.post(f"/v1/tasks/{task_id}/claim", key=other_key)).status_code == 409
    h.clock.at += timedelta(minutes=1)
    back = await h.task(task_id)
    assert (back["status"], back["claimed_by"], back.get("lease_expired")) == ("queued", None, True)
    assert task_id in [t["id"] for t in (await h.get("/v1/tasks", status="queued")).json()]
    retaken = await h.post(f"/v1/tasks/{task_id}/claim", key=other_key)
    assert retaken.status_code == 200 and retaken.json()["status"] == "claimed"


async def test_claim_schedule_complete_and_illegal_transitions_are_409(referral: Harness) -> None:
    h = referral
    await h.add_clinic("MDC", "north", ["mood_disorder_clinic"])
    pid = new_patient()
    await h.advise(pid)
    task_id = (await h.referral_of(pid))["id"]

    early = await h.post(f"/v1/tasks/{task_id}/complete")
    assert early.status_code == 409 and early.headers["content-type"].startswith("application/problem+json")
    assert (
        await h.post(f"/v1/tasks/{task_id}/schedule", {"appointment_at": "2026-06-20T09:00:00Z"})
    ).status_code == 409
    await h.post(f"/v1/tasks/{task_id}/claim")
    past = await h.post(f"/v1/tasks/{task_id}/schedule", {"appointment_at": "2026-06-01T09:00:00Z"})
    assert past.status_code == 422 and past.json()["field"] == "appointment_at"
    scheduled = await h.post(
        f"/v1/tasks/{task_id}/schedule",
        {"appointment_at": "2026-06-20T09:00:00Z"},
        **{"Idempotency-Key": "sched-1"},
    )
    assert scheduled.status_code == 200 and scheduled.json()["status"] == "scheduled"
    replay = await h.post(
        f"/v1/tasks/{task_id}/schedule",
        {"appointment_at": "2026-06-20T09:00:00Z"},
        **{"Idempotency-Key": "sched-1"},
    )
    assert replay.json() == scheduled.json()
    done = await h.post(f"/v1/tasks/{task_id}/complete")
    assert done.status_code == 200 and done.json()["status"] == "completed"
    assert (await h.post(f"/v1/tasks/{task_id}/claim")).status_code == 409
    history = [e["event"] for e in done.json()["history"]]
    assert history == ["opened", "routed", "task-queued", "claimed", "scheduled", "completed"]
    async with h.runtime.db.read() as s:
        schedules = await stored(s, "referral-scheduled", pid)
    assert schedules == 1  # the idempotent retry stored nothing
    metrics = (await h.client.get("/metrics")).text
    for step in ("queued", "claimed", "scheduled", "completed"):
        assert f'care_referral_tasks_total{{step="{step}"}} 1.0' in metrics, step


async def test_escalation_by_the_clock_moves_tasks_up(referral: Harness) -> None:
    h = referral
    await h.add_clinic("MDC", "north", ["mood_disorder_clinic"], capacity=50)
    ids = {}
    for urgency in ("routine", "urgent", "emergency"):
        pid = new_patient()
        await h.advise(pid, urgency=urgency)
        ids[urgency] = (await h.referral_of(pid))["id"]
    h.clock.at += timedelta(minutes=1)
    pid = new_patient()
    await h.advise(pid, urgency="routine")
    ids["routine-later"] = (await h.referral_of(pid))["id"]

    order = [t["id"] for t in (await h.get("/v1/tasks", status="queued")).json()]
    assert order == [ids["emergency"], ids["urgent"], ids["routine"], ids["routine-later"]]

    h.clock.at += timedelta(minutes=13)  # 14 minutes: nothing due yet
    assert await escalate_due(h.runtime) == []
    h.clock.at += timedelta(minutes=1)  # the emergency has waited 15 minutes
    assert await escalate_due(h.runtime) == [ids["emergency"]]
    assert await escalate_due(h.runtime) == []  # once
    h.clock.at += timedelta(hours=24)
    assert await escalate_due(h.runtime) == [ids["urgent"]]
    await h.post(f"/v1/tasks/{ids['routine-later']}/claim")  # a claimed task does not escalate
    h.clock.at += timedelta(days=4)
    assert await escalate_due(h.runtime) == [ids["routine"]]

    tasks = (await h.get("/v1/tasks")).json()
    assert [t["id"] for t in tasks][:3] == [ids["emergency"], ids["urgent"], ids["routine"]]
    assert [t["escalated"] for t in tasks] == [True, True, True, False]
    assert "escalated" in [e["event"] for e in tasks[0]["history"]]
    assert 'care_referral_tasks_total{step="escalated"} 3.0' in (await h.client.get("/metrics")).text


async def test_an_escalated_task_moves_up_past_older_tasks_of_its_urgency_but_not_past_the_urgency_above(
    referral: Harness,
) -> None:
    """GET /v1/tasks sorts by (band, urgency, waiting since or opened): the band is the
    urgency's, one up when escalated. Waiting tasks of one urgency escalate oldest first, so
    escalation shows against an older task that is not waiting: one the clinic accepted."""
    h = referral
    await h.add_clinic("MDC", "north", ["mood_disorder_clinic"], capacity=50)
    ids = {}
    for name, urgency in [("accepted", "routine"), ("waiting", "routine")]:
        pid = new_patient()
        await h.advise(pid, urgency=urgency)
        ids[name] = (await h.referral_of(pid))["id"]
        h.clock.at += timedelta(minutes=1)
    assert (await h.post(f"/v1/tasks/{ids['accepted']}/accept")).json()["status"] == "accepted"
    h.clock.at = NOW + timedelta(days=5)  # the waiting routine task is due in a minute
    pid = new_patient()
    await h.advise(pid, urgency="urgent", reasons=["suicidality (urgent)"])
    ids["urgent"] = (await h.referral_of(pid))["id"]

    async def order() -> list[str]:
        return [t["id"] for t in (await h.get("/v1/tasks")).json()]

    assert await order() == [ids["urgent"], ids["accepted"], ids["waiting"]]  # routine: oldest first
    h.clock.at += timedelta(minutes=1)
    assert await escalate_due(h.runtime) == [ids["waiting"]]
    assert await order() == [ids["urgent"], ids["waiting"], ids["accepted"]]


async def test_an_escalation_ends_when_a_decline_reroutes_the_task_and_the_new_clinics_clock_starts(
    referral: Harness,
) -> None:
    h = referral
    a = await h.add_clinic("A", "north", ["mood_disorder_clinic"], capacity=9)
    b = await h.add_clinic("B", "north", ["mood_disorder_clinic"], capacity=5)
    late, other = new_patient(), new_patient()
    await h.advise(late)
    late_id = (await h.referral_of(late))["id"]
    h.clock.at += timedelta(days=2)
    await h.advise(other)
    other_id = (await h.referral_of(other))["id"]
    h.clock.at = NOW + timedelta(days=5)
    assert await escalate_due(h.runtime) == [late_id]

    async def queue() -> list[tuple[str, bool]]:
        return [(t["id"], t["escalated"]) for t in (await h.get("/v1/tasks", status="queued")).json()]

    assert await queue() == [(late_id, True), (other_id, False)]
    rerouted = (await h.post(f"/v1/tasks/{late_id}/decline", {"reason": "no beds"})).json()
    assert (rerouted["clinic_id"], rerouted["declined_by"], rerouted["escalated"]) == (b, [a], False)
    assert rerouted["waiting_since"] == h.clock.at.isoformat()
    # The other task has waited longer than the re-routed one has waited for B.
    assert await queue() == [(other_id, False), (late_id, False)]
    assert "escalated" in [e["event"] for e in rerouted["history"]]  # the history keeps it

    h.clock.at = NOW + timedelta(days=10) - timedelta(seconds=1)
    assert await escalate_due(h.runtime) == [other_id]
    h.clock.at += timedelta(seconds=1)  # five days at B
    assert await escalate_due(h.runtime) == [late_id]


async def test_queue_filters_and_cross_clinic_isolation(referral: Harness) -> None:
    h = referral
    other_clinic, other_key = await h.partner_clinic()
    receiving, receiving_key = await h.partner_clinic()
    north = await h.add_clinic("North", "north", ["mood_disorder_clinic"], partner=receiving)
    south = await h.add_clinic("South", "south", ["mood_disorder_clinic", "rtms"])
    mine, theirs = new_patient(), new_patient()
    await h.advise(mine)
    await h.advise(theirs, clinicid=other_clinic, capabilities=["mood_disorder_clinic", "rtms"])
    r_mine = await h.referral_of(mine)
    r_theirs = await h.referral_of(theirs)
    assert (r_mine["clinic_id"], r_theirs["clinic_id"]) == (north, south)

    assert [t["id"] for t in (await h.get("/v1/tasks", region="south")).json()] == [r_theirs["id"]]
    assert [t["id"] for t in (await h.get("/v1/tasks", clinic=north)).json()] == [r_mine["id"]]

    # The referring clinic sees its patient's referral, not the other clinic's patient's.
    assert [r["id"] for r in await h.referrals(mine, key=h.referring_key)] == [r_mine["id"]]
    assert await h.referrals(theirs, key=h.referring_key) == []
    assert (await h.get(f"/v1/referrals/{r_theirs['id']}", key=h.referring_key)).status_code == 404
    assert [r["id"] for r in (await h.get("/v1/referrals", key=other_key)).json()] == [r_theirs["id"]]
    # The receiving clinic sees what was sent to it.
    assert [t["id"] for t in (await h.get("/v1/tasks", key=receiving_key)).json()] == [r_mine["id"]]
    # Clinics read; only coordinators work the queue or change the directory.
    assert (await h.post(f"/v1/tasks/{r_mine['id']}/claim", key=receiving_key)).status_code == 403
    assert (
        await h.post(
            "/v1/clinics",
            {"name": "X", "region": "x", "capabilities": ["ect"], "weekly_capacity": 1},
            key=h.referring_key,
        )
    ).status_code == 403
    unknown = await h.get("/v1/tasks", key="trd_not-a-key")
    assert unknown.status_code == 401 and unknown.json()["field"] == "Authorization"


async def test_bad_input_is_problem_json_naming_the_field_and_stores_nothing(referral: Harness) -> None:
    h = referral
    async with h.runtime.db.read() as s:
        before = (await s.execute(select(func.count()).select_from(events))).scalar_one()
    bad = [
        (
            {"name": "X", "region": "north", "capabilities": ["teleportation"], "weekly_capacity": 1},
            "capabilities.0",
        ),
        ({"name": "X", "region": "north", "capabilities": [], "weekly_capacity": 1}, "capabilities"),
        ({"name": "X", "region": "north", "capabilities": ["ect"], "weekly_capacity": -1}, "weekly_capacity"),
        ({"name": "", "region": "north", "capabilities": ["ect"], "weekly_capacity": 1}, "name"),
        ({"name": "X", "region": "North Side!", "capabilities": ["ect"], "weekly_capacity": 1}, "region"),
    ]
    for body, field in bad:
        r = await h.post("/v1/clinics", body)
        assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json"), (
            r.text
        )
        assert r.json()["field"] == field
    assert (await h.get("/v1/tasks", status="lost")).json()["field"] == "status"
    assert (await h.post("/v1/tasks/nope/claim")).status_code == 404
    async with h.runtime.db.read() as s:
        assert (await s.execute(select(func.count()).select_from(events))).scalar_one() == before


async def test_tasks_reach_the_receiving_clinics_work_queue(referral: Harness) -> None:
    h = referral
    first = await h.add_clinic("First", "north", ["mood_disorder_clinic"], capacity=9)
    second = await h.add_clinic("Second", "north", ["mood_disorder_clinic"], capacity=5)
    pid = new_patient()
    await h.advise(pid, urgency="emergency", reasons=["suicidality (emergency)"])
    r = await h.referral_of(pid)
    assert r["clinic_id"] == first
    await h.post(f"/v1/tasks/{r['id']}/decline", {"reason": "no beds"})

    js = h.nc.jetstream()

    async def pulled(clinic_id: str) -> list[dict]:
        sub = await js.pull_subscribe(task_subject(clinic_id), durable=None, stream=TASK_STREAM)
        try:
            msgs = await sub.fetch(10, timeout=0.5)
        except nats.errors.TimeoutError:
            return []
        finally:
            await sub.unsubscribe()
        for m in msgs:
            await m.ack()
        return [json.loads(m.data)["data"] for m in msgs]

    got_first = await eventually(lambda: pulled(first), what="the first clinic's task on its work queue")
    got_second = await eventually(
        lambda: pulled(second), what="the re-routed task on the second clinic's queue"
    )
    assert [(t["referral_id"], t["urgency"], t["reasons"]) for t in got_first] == [
        (r["id"], "emergency", ["suicidality (emergency)"])
    ]
    assert [t["referral_id"] for t in got_second] == [r["id"]]


@pytest.mark.parametrize("advised", [False])
async def test_advice_not_to_refer_opens_nothing(referral: Harness, advised: bool) -> None:
    h = referral
    await h.add_clinic("MDC", "north", ["mood_disorder_clinic"])
    quiet, marker = new_patient(), new_patient()
    await h.advise(quiet, advised=advised, capabilities=[])
    await h.advise(marker)
    await h.referral_of(marker)
    assert await h.referrals(quiet) == []


async def test_directory_changes_are_events_and_a_referral_can_be_accepted_or_cancelled(
    referral: Harness,
) -> None:
    h = referral
    cid = await h.add_clinic("MDC", "north", ["mood_disorder_clinic"], capacity=3)
    changed = await h.client.patch(
        f"/v1/clinics/{cid}",
        json={"capabilities": ["mood_disorder_clinic", "rtms"], "weekly_capacity": 7},
        headers=h.auth(),
    )
    assert changed.status_code == 200 and changed.json()["capabilities"] == ["mood_disorder_clinic", "rtms"]
    async with h.runtime.db.read() as s:
        kinds = (
            (
                await s.execute(
                    select(events.c.type).where(events.c.subject == cid).order_by(events.c.position)
                )
            )
            .scalars()
            .all()
        )
    assert kinds == [
        "care.referral.directory-clinic-registered.v1",
        "care.referral.directory-clinic-changed.v1",
    ]

    pid = new_patient()
    await h.advise(pid, capabilities=["mood_disorder_clinic", "rtms"])
    task_id = (await h.referral_of(pid))["id"]
    await h.post(f"/v1/tasks/{task_id}/claim")
    accepted = await h.post(f"/v1/tasks/{task_id}/accept")
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    assert (await h.post(f"/v1/tasks/{task_id}/cancel", {"reason": ""})).json()["field"] == "reason"
    cancelled = await h.post(f"/v1/tasks/{task_id}/cancel", {"reason": "patient moved away"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert (await h.post(f"/v1/tasks/{task_id}/accept")).status_code == 409


async def test_rebuild_from_the_referrals_events_matches_the_live_queue_and_names_a_drift(
    referral: Harness,
) -> None:
    from sqlalchemy import update

    from referral.rebuild import rebuild_and_compare
    from referral.tables import tasks

    h = referral
    await h.add_clinic("MDC", "north", ["mood_disorder_clinic"])
    pids = [new_patient() for _ in range(3)]
    for pid in pids:
        await h.advise(pid)
    first = (await h.referral_of(pids[0]))["id"]
    await h.post(f"/v1/tasks/{first}/claim")
    await h.post(f"/v1/tasks/{first}/schedule", {"appointment_at": "2026-06-20T09:00:00Z"})

    report = await rebuild_and_compare(h.runtime.db)
    assert report.ok and report.identical == 3, report.to_json()

    async with h.runtime.db.transaction() as s:
        await s.execute(update(tasks).where(tasks.c.referral_id == first).values(status="queued"))
    assert (await rebuild_and_compare(h.runtime.db)).different == [first]


async def test_a_rotated_coordinator_key_stops_working_and_the_new_one_works(referral: Harness) -> None:
    from referral.access import rotate_coordinator_key

    h = referral
    old = h.coordinator
    rotated = await rotate_coordinator_key(h.runtime, old)
    assert (await h.get("/v1/tasks", key=old)).status_code == 401
    assert (await h.get("/v1/tasks", key=rotated["api_key"])).status_code == 200
