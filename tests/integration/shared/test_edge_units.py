"""Issue 12's edge rules that need no server: DLQ replay only to the consumer's own stream,
Idempotency-Key on canonical JSON with a 24-hour memory, spans without query strings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import insert, select

from care_shared.db import Database, sqlite_url_for
from care_shared.eventstore import idempotency_keys
from care_shared.idempotency import canonical_body, purge_expired_keys
from care_shared.migrations import migrate
from care_shared.ops.carectl import replay_refusal, subject_matches
from care_shared.telemetry import RedactingSpanProcessor

ORIGINS = {
    "pathway-intake": ("INTAKE", ["intake.>"], "intake.>"),
    "notify-referral": ("REFERRAL", ["referral.>"], "referral.>"),
}


@dataclass
class Letter:
    subject: str
    headers: dict = field(default_factory=dict)


def letter(consumer: str, original: str, subject: str | None = None) -> Letter:
    return Letter(
        subject or f"dlq.{consumer}", {"Care-Dlq-Consumer": consumer, "Care-Dlq-Original-Subject": original}
    )


def test_subject_wildcards() -> None:
    assert subject_matches("intake.>", "intake.trial-started.p1")
    assert not subject_matches("intake.>", "intake")
    assert subject_matches("intake.*.p1", "intake.trial-started.p1")
    assert not subject_matches("intake.*", "intake.trial-started.p1")


def test_a_dead_letter_is_replayed_only_to_its_consumers_own_stream() -> None:
    assert replay_refusal(letter("pathway-intake", "intake.assessment-recorded.p1"), ORIGINS) is None
    # A letter naming another service's subject (forged, or a mistake) is refused.
    assert "not a subject of pathway-intake's stream INTAKE" in replay_refusal(
        letter("pathway-intake", "referral.referral-opened.p1"), ORIGINS
    )
    # A letter on one consumer's dead-letter subject claiming to be another's.
    assert "dlq.notify-referral" in replay_refusal(
        letter("notify-referral", "referral.x.p1", subject="dlq.pathway-intake"), ORIGINS
    )
    assert "no durable consumer" in replay_refusal(letter("ghost", "intake.x.p1"), ORIGINS)
    assert "headers" in replay_refusal(Letter("dlq.pathway-intake", {}), ORIGINS)


def test_canonical_json_ignores_formatting_and_key_order() -> None:
    assert canonical_body(b'{"b": 1, "a": [1, 2]}') == canonical_body(b'{\n  "a": [1,2],\n  "b": 1\n}')
    assert canonical_body(b'{"a": 1}') != canonical_body(b'{"a": 2}')
    assert canonical_body(b"not json") == b"not json"
    assert canonical_body(b"  ") == b""


async def test_idempotency_keys_older_than_a_day_are_purged(tmp_path: Path) -> None:
    db = Database(sqlite_url_for(tmp_path / "intake.db"))
    try:
        await migrate(db, Path(__import__("intake").__file__).parent / "migrations")
        now = datetime.now(UTC)
        async with db.transaction() as s:
            for key, age in (("old", timedelta(hours=25)), ("fresh", timedelta(hours=23))):
                await s.execute(
                    insert(idempotency_keys).values(
                        scope="c",
                        key=key,
                        request_hash="h",
                        status_code=201,
                        response={},
                        created_at=now - age,
                    )
                )
        assert await purge_expired_keys(db) == 1
        async with db.read() as s:
            assert (await s.execute(select(idempotency_keys.c.key))).scalars().all() == ["fresh"]
    finally:
        await db.dispose()


def test_spans_leave_without_query_strings_client_headers_or_exception_messages() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(RedactingSpanProcessor(SimpleSpanProcessor(exporter)))
    with provider.get_tracer("t").start_as_current_span(
        "GET /v1/patients/{patient_id}",
        attributes={
            "url.path": "/v1/patients/p1",
            "url.query": "note=jane.doe%40example.org",
            "http.route": "/v1/patients/{patient_id}",
            "url.full": "http://h/v1/patients/p1?note=jane",
            "http.target": "/v1/patients/p1?note=jane",
            "user_agent.original": "jane's phone",
            "http.request.header.x_note": ("jane",),
            "care.patient_id": "p1",
        },
    ) as span:
        span.record_exception(ValueError("jane.doe@example.org is not valid"))
    [done] = exporter.get_finished_spans()
    assert dict(done.attributes) == {
        "url.path": "/v1/patients/p1",
        "http.route": "/v1/patients/{patient_id}",
        "url.full": "http://h/v1/patients/p1",
        "http.target": "/v1/patients/p1",
        "care.patient_id": "p1",
    }
    [event] = done.events
    assert event.attributes["exception.type"] == "ValueError" and "jane" not in str(dict(event.attributes))


@pytest.mark.parametrize("statement", ["UPDATE audit_log SET status = 1", "DELETE FROM audit_log"])
async def test_the_audit_table_is_append_only(tmp_path: Path, statement: str) -> None:
    from sqlalchemy import text

    from care_shared.audit import audit_log

    db = Database(sqlite_url_for(tmp_path / "pathway.db"))
    try:
        await migrate(db, Path(__import__("pathway").__file__).parent / "migrations")
        async with db.transaction() as s:
            await s.execute(
                insert(audit_log).values(
                    at=datetime.now(UTC),
                    actor_kind="clinic",
                    actor_id="c1",
                    patient_id="p1",
                    method="GET",
                    route="/r",
                    status=200,
                )
            )
        with pytest.raises(Exception, match="append-only"):
            async with db.transaction() as s:
                await s.execute(text(statement))
    finally:
        await db.dispose()
