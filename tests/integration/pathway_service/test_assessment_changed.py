"""AssessmentChanged is published only when the assessment actually changed: in what a clinician
or a downstream service (referral, notify) acts on, not in its provenance (the event it is as
of, event ids and dates in its reasons, the assessment date).

Driven through the service's own handler on SQLite (no NATS needed), and at the projection level.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from care_shared.contracts.intake import (
    AgentDose,
    AssessmentRecorded,
    EpisodeOpened,
    PatientRegistered,
    TrialCompleted,
    TrialStarted,
)
from care_shared.contracts.pathway import AssessmentChanged
from care_shared.db import Database, sqlite_url_for
from care_shared.envelope import new_event_id, to_envelope
from care_shared.eventstore import EventStore, events
from care_shared.migrations import migrate
from pathway.bootstrap import MIGRATIONS
from pathway.handlers import IntakeEventHandler, assessment_stream
from pathway.projection import PatientProjection, same_assessment

CHANGED = AssessmentChanged.event_type  # v2 since trd-rules 2026.12


def phq9(pid: str, score: int, item9: int, on: date) -> AssessmentRecorded:
    return AssessmentRecorded(
        patient_id=pid,
        assessment_id=str(uuid.uuid4()),
        instrument="PHQ-9",
        score=score,
        item9=item9,
        taken_on=on,
    )


def one_failed_trial(pid: str) -> list:
    """Registered, an episode, one adequate sertraline trial that failed: inadequate_response."""
    return [
        PatientRegistered(
            patient_id=pid, clinic_id="c1", external_id="x1", birth_year=1980, sex="female", timezone="UTC"
        ),
        EpisodeOpened(
            patient_id=pid, episode_id="e1", onset_date=date(2024, 1, 1), severity="moderate", diagnosis="mdd"
        ),
        TrialStarted(
            patient_id=pid,
            trial_id="t1",
            episode_id="e1",
            kind="antidepressant",
            agents=[AgentDose(agent="sertraline", dose_mg_per_day=100)],
            started_on=date(2024, 1, 10),
        ),
        TrialCompleted(
            patient_id=pid, trial_id="t1", ended_on=date(2024, 3, 6), adherence_pct=90, outcome="no_response"
        ),
    ]


class Pathway:
    """pathway's intake handler on a SQLite database, fed one event per transaction as the consumer does."""

    def __init__(self, db: Database, pid: str) -> None:
        self.db, self.pid = db, pid
        self.handler = IntakeEventHandler(EventStore())
        self.sequence = 0

    async def take(self, payload) -> None:
        self.sequence += 1
        envelope = to_envelope(
            event_id=new_event_id(),
            source="/intake",
            type=payload.event_type,
            subject=self.pid,
            time=datetime.now(UTC),
            data=payload.to_data(),
            sequence=self.sequence,
            traceparent=None,
            clinicid="c1",
        )
        async with self.db.transaction() as session:
            await self.handler(session, envelope, payload)

    async def published(self) -> list[dict]:
        async with self.db.read() as session:
            rows = await session.execute(
                sa.select(events.c.data)
                .where(events.c.stream_id == assessment_stream(self.pid), events.c.type == CHANGED)
                .order_by(events.c.version)
            )
            return [r.data["assessment"] for r in rows]


@pytest.fixture
async def pathway(tmp_path: Path) -> AsyncIterator[Pathway]:
    db = Database(sqlite_url_for(tmp_path / "pathway.db"))
    await migrate(db, MIGRATIONS)
    try:
        yield Pathway(db, str(uuid.uuid4()))
    finally:
        await db.dispose()


async def test_an_identical_phq9_on_a_later_day_publishes_nothing_and_one_that_changes_urgency_does(
    pathway: Pathway,
) -> None:
    pid = pathway.pid
    for payload in one_failed_trial(pid):
        await pathway.take(payload)
    await pathway.take(phq9(pid, 14, 0, date(2024, 3, 10)))
    before = await pathway.published()
    assert before[-1]["status"] == "inadequate_response" and before[-1]["urgency"] == "routine"

    # The same score a month later: only provenance moves (as_of_event, the urgency reason's
    # event id and date, the assessment date), so nothing is published.
    await pathway.take(phq9(pid, 14, 0, date(2024, 4, 10)))
    assert len(await pathway.published()) == len(before)

    # Item 9 = 1 makes it urgent (CLINICAL.md 5): that is a change referral and notify act on.
    await pathway.take(phq9(pid, 14, 1, date(2024, 5, 10)))
    after = await pathway.published()
    assert len(after) == len(before) + 1
    assert after[-1]["urgency"] == "urgent" and after[-1]["referral"]["advised"] is True


def test_same_assessment_ignores_provenance_and_sees_what_is_acted_on() -> None:
    pid = "p-same"
    projection = PatientProjection.new(pid)
    sequence = 0

    def take(payload) -> dict:
        nonlocal sequence
        sequence += 1
        projection.add(sequence, f"ev{sequence}", payload.event_type, payload.to_data())
        return projection.assessment()

    for payload in one_failed_trial(pid):
        take(payload)
    first = take(phq9(pid, 14, 0, date(2024, 3, 10)))
    again = take(phq9(pid, 14, 0, date(2024, 4, 10)))
    assert first["urgency_reason"] != again["urgency_reason"] and first["as_of_event"] != again["as_of_event"]
    assert same_assessment(first, again)
    urgent = take(phq9(pid, 14, 1, date(2024, 5, 10)))
    assert not same_assessment(again, urgent)
    # a change in any acted-on part counts on its own
    for part, changed in [
        ("status", "trd"),
        ("flags", [{"flag": "possible_relapse", "detail": "x"}]),
        ("referral", {**again["referral"], "capabilities": ["mood_disorder_clinic", "ect"]}),
        ("recommendations", [{**r, "priority": r["priority"] + 1} for r in again["recommendations"]]),
        ("stages", {**again["stages"], "mgh": {**again["stages"]["mgh"], "score": 9.0}}),
    ]:
        assert not same_assessment(again, {**again, part: changed}), part
    assert same_assessment(None, None) and not same_assessment(None, again)


async def test_a_second_event_claiming_a_taken_position_is_refused_with_both_ids(pathway: Pathway) -> None:
    """Squatting: an event at a version of the patient's intake stream that another event
    already holds is never dropped as a duplicate, and never replaces what is there."""
    from care_shared.consumer import PositionTaken

    pid = pathway.pid
    for payload in one_failed_trial(pid):
        await pathway.take(payload)
    held = to_envelope(
        event_id=new_event_id(),
        source="/intake",
        type=AssessmentRecorded.event_type,
        subject=pid,
        time=datetime.now(UTC),
        data=phq9(pid, 27, 3, date(2024, 3, 7)).to_data(),
        sequence=5,
        traceparent=None,
        clinicid="c1",
    )
    squatter = held.model_copy(
        update={"id": new_event_id(), "data": phq9(pid, 2, 0, date(2024, 3, 7)).to_data()}
    )
    async with pathway.db.transaction() as session:
        await pathway.handler(session, held, phq9(pid, 27, 3, date(2024, 3, 7)))
    with pytest.raises(PositionTaken) as refused:
        async with pathway.db.transaction() as session:
            await pathway.handler(session, squatter, phq9(pid, 2, 0, date(2024, 3, 7)))
    assert held.id in str(refused.value) and squatter.id in str(refused.value)
    assert (await pathway.published())[-1]["urgency"] == "emergency"  # the real one stands
