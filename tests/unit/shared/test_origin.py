"""Where an event came from (care_shared.origin) and how its position is written on the wire."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from care_shared.envelope import new_event_id, parse_envelope, to_envelope
from care_shared.origin import ForgedEvent, uuid7_time, verify_origin


def envelope(**overrides):
    fields = {
        "event_id": new_event_id(),
        "source": "/intake",
        "type": "care.intake.assessment-recorded.v2",
        "subject": "p1",
        "time": datetime.now(UTC),
        "data": {},
        "sequence": 7,
        "traceparent": None,
        "clinicid": None,
    }
    return to_envelope(**{**fields, **overrides})


def test_an_event_from_its_own_producer_passes() -> None:
    verify_origin(envelope(), "INTAKE", "intake.assessment-recorded.p1")
    verify_origin(
        envelope(source="/referral", type="care.referral.coordinator-registered.v1", subject="c1"),
        "REFERRAL",
        "referral.coordinator-registered.c1",
    )


@pytest.mark.parametrize(
    ("env", "stream", "subject", "reason"),
    [
        (envelope(), "PATHWAY", "pathway.assessment-recorded.p1", "belongs to intake"),
        (envelope(source="/evil"), "INTAKE", "intake.assessment-recorded.p1", "is not /intake"),
        (envelope(source="/pathway"), "INTAKE", "intake.assessment-recorded.p1", "is not /intake"),
        (envelope(), "INTAKE", "intake.trial-started.p1", "does not carry"),
        (envelope(), "INTAKE", "intake.assessment-recorded.p2", "differs from the envelope subject"),
        (envelope(), "INTAKE", "intake.assessment-recorded", "does not carry"),
        (envelope(), "DLQ", "dlq.pathway-intake", "no producer"),
        # Access events only from their owner's stream: a coordinator key on intake's, a clinic key on referral's.
        (
            envelope(type="care.referral.coordinator-registered.v1", subject="c1"),
            "INTAKE",
            "intake.coordinator-registered.c1",
            "belongs to referral",
        ),
        (
            envelope(source="/referral", type="care.intake.clinic-registered.v1", subject="c1"),
            "REFERRAL",
            "referral.clinic-registered.c1",
            "belongs to intake",
        ),
        (envelope(event_id=str(uuid.uuid4())), "INTAKE", "intake.assessment-recorded.p1", "not a UUIDv7"),
        (
            envelope(event_id="ffffffff-ffff-7fff-bfff-ffffffffffff"),
            "INTAKE",
            "intake.assessment-recorded.p1",
            "in the future",
        ),
    ],
)
def test_an_event_whose_origin_does_not_hold_together_is_refused(
    env, stream: str, subject: str, reason: str
) -> None:
    with pytest.raises(ForgedEvent, match=reason):
        verify_origin(env, stream, subject)


def test_a_uuid7_time_is_its_first_48_bits() -> None:
    before = datetime.now(UTC) - timedelta(milliseconds=2)
    assert before <= uuid7_time(new_event_id()) <= datetime.now(UTC) + timedelta(milliseconds=2)
    # A little clock skew between producer and consumer is no forgery.
    soon = uuid.UUID(int=(int((datetime.now(UTC).timestamp() + 60) * 1000) << 80) | (7 << 76) | (1 << 63))
    verify_origin(envelope(event_id=str(soon)), "INTAKE", "intake.assessment-recorded.p1")


def test_the_sequence_travels_as_an_orderable_string_and_old_integers_still_read() -> None:
    wire = json.loads(envelope(sequence=12).model_dump_json(exclude_none=True))
    assert (wire["sequence"], wire["sequencetype"]) == ("0000000012", "Integer")
    assert sorted(["0000000010", "0000000009"]) == ["0000000009", "0000000010"]  # why padded
    assert parse_envelope(json.dumps(wire).encode()).sequence == 12
    stored_before = {**wire, "sequence": 12}
    del stored_before["sequencetype"]
    assert parse_envelope(json.dumps(stored_before).encode()).sequence == 12


def test_a_sequence_beyond_a_32_bit_integer_is_no_envelope() -> None:
    from care_shared.envelope import EnvelopeError

    wire = json.loads(envelope(sequence=5).model_dump_json(exclude_none=True))
    with pytest.raises(EnvelopeError, match="sequence"):
        parse_envelope(json.dumps({**wire, "sequence": str(10**9 * 10)}).encode())
