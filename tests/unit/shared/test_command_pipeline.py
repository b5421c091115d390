"""The command pipeline (care_shared.commands.execute) on the in-memory unit of work:
the Idempotency-Key, one transaction, the retry on a lost race, refusals left as they are."""

from __future__ import annotations

import pytest

from care_shared.aggregates import AggregateStore
from care_shared.commands import RETRIES_ON_CONFLICT, execute
from care_shared.contracts.referral import ReferralCancelled
from care_shared.eventstore import ConcurrencyError
from care_shared.memory import InMemoryDatabase, InMemoryEventStore
from care_shared.refusals import Conflict, IdempotencyKeyReused, IllegalTransition, Rejected


def cancelled(n: int) -> ReferralCancelled:
    return ReferralCancelled(referral_id="r1", patient_id="p1", reason=f"reason {n}")


@pytest.fixture
def db() -> InMemoryDatabase:
    return InMemoryDatabase()


@pytest.fixture
def streams() -> AggregateStore:
    return AggregateStore(InMemoryEventStore())


async def test_the_same_key_and_request_return_the_first_answer_and_append_nothing_again(db, streams) -> None:
    calls = []

    async def command(session):
        calls.append(1)
        loaded = await streams.load(session, "referral-r1")
        await streams.append(session, "referral-r1", loaded.version, [cancelled(len(calls))], clinic_id="c1")
        return 201, {"n": len(calls)}

    first = await execute(db, "clinic-1", command, key="k1", fingerprint="f")
    again = await execute(db, "clinic-1", command, key="k1", fingerprint="f")
    assert first == again == (201, {"n": 1}) and len(calls) == 1 and db.count("events") == 1
    with pytest.raises(IdempotencyKeyReused):
        await execute(db, "clinic-1", command, key="k1", fingerprint="other request")
    async with db.read() as s:
        loaded = await streams.load(s, "referral-r1")
    assert loaded.events == [cancelled(1)] and loaded.clinic_id == "c1" and db.count("outbox") == 1


async def test_a_lost_race_is_decided_again_on_the_new_state(db, streams) -> None:
    async with db.transaction() as s:
        await streams.append(s, "referral-r1", 0, [cancelled(0)])
    seen_versions = []

    async def command(session):
        loaded = await streams.load(session, "referral-r1")
        seen = loaded.version - (1 if not seen_versions else 0)  # the first pass decides on a stale read
        seen_versions.append(seen)
        await streams.append(session, "referral-r1", seen, [cancelled(1)])
        return 200, {}

    assert await execute(db, "s", command) == (200, {})
    assert seen_versions == [0, 1] and db.count("events") == 2


async def test_a_stream_changing_too_fast_is_a_conflict_and_nothing_is_stored(db) -> None:
    async def command(session):
        raise ConcurrencyError("referral-r1", 0, 1)

    with pytest.raises(Conflict):
        await execute(db, "s", command)
    assert db.count("events") == 0 and RETRIES_ON_CONFLICT > 1


@pytest.mark.parametrize(
    "refusal, status, field",
    [
        (Rejected("reason", "say why"), 422, "reason"),
        (IllegalTransition("cannot", field="status"), 409, "status"),
    ],
)
async def test_a_refusal_passes_through_as_the_problem_it_is_and_nothing_is_remembered(
    db, refusal, status, field
) -> None:
    async def command(session):
        raise refusal

    with pytest.raises(type(refusal)) as raised:
        await execute(db, "s", command, key="k", fingerprint="f")
    assert (raised.value.status, raised.value.body()["field"]) == (status, field)
    assert db.count("idempotency_keys") == 0
