"""The local trace store (telemetry's JSON-lines exporter) and `carectl trace`'s reading of it."""

from __future__ import annotations

import json
from pathlib import Path

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from care_shared.ops.traces import load_spans, render_tree
from care_shared.telemetry import JsonLinesSpanExporter

TRACE = "0af7651916cd43dd8448eb211c80319c"
DB = {"db.system.name": "postgresql", "db.query.text": "SELECT 1"}


def span(
    span_id: str, parent: str | None, service: str, name: str, kind: str, start: int, **attributes
) -> dict:
    return {
        "trace_id": TRACE,
        "span_id": span_id,
        "parent_span_id": parent,
        "name": name,
        "kind": kind,
        "service": service,
        "start_ns": start * 1_000_000,
        "end_ns": (start + 1) * 1_000_000,
        "status": "UNSET",
        "attributes": attributes,
    }


# A clinic's request, its event consumed by notify, and the reminder's delivery, with the
# database statements in between (one of them, unusually, with a child of its own).
SPANS = [
    span("a1", None, "intake", "POST /v1/patients/{patient_id}/assessments", "SERVER", 0),
    span("a2", "a1", "intake", "INSERT events", "CLIENT", 1, **DB),
    span("a3", "a1", "intake", "connect", "CLIENT", 2, **{"db.system": "sqlite"}),
    span("a4", "a3", "intake", "SAVEPOINT sa_1", "CLIENT", 3, **DB),
    span("a5", "a4", "intake", "pool checkout", "INTERNAL", 4),
    span("a6", "a1", "intake", "POST /v1/patients/{patient_id}/assessments http send", "INTERNAL", 5),
    span("a7", "a1", "intake", "send intake.assessment-recorded", "PRODUCER", 6),
    span("n1", "a7", "notify", "intake.assessment-recorded process", "CONSUMER", 7),
    span("n2", "n1", "notify", "SELECT reminders", "CLIENT", 8, **DB),
    span("n3", "n1", "notify", "deliver email", "CLIENT", 9, **{"care.reminder.id": "r1"}),
    span("n4", "n3", "notify", "UPDATE reminders", "CLIENT", 10, **DB),
    span("n5", "n3", "notify", "send notify.reminder-sent", "PRODUCER", 11),
]


def drawn(tree: str) -> dict[str, int]:
    """Each drawn span's name and its depth in the tree."""
    depths = {}
    for line in tree.splitlines():
        if "├─ " in line:
            indent, rest = line.split("├─ ", 1)
            name = rest.split("] ", 1)[1].rsplit(" (", 1)[0]
            depths[name] = len(indent) // 2
    return depths


def test_the_delivery_hop_is_drawn_and_database_spans_are_hidden_without_splitting_the_tree() -> None:
    depths = drawn(render_tree(SPANS, TRACE))
    assert depths == {
        "POST /v1/patients/{patient_id}/assessments": 0,
        "pool checkout": 1,  # its database parents hidden: drawn under the request
        "send intake.assessment-recorded": 1,
        "intake.assessment-recorded process": 2,
        "deliver email": 3,  # a CLIENT span that is no database statement
        "send notify.reminder-sent": 4,
    }


def test_with_db_every_span_is_drawn_where_it_belongs() -> None:
    depths = drawn(render_tree(SPANS, TRACE, include_db=True))
    assert len(depths) == len(SPANS)
    assert depths["SAVEPOINT sa_1"] == 2 and depths["pool checkout"] == 3
    assert depths["UPDATE reminders"] == depths["send notify.reminder-sent"] == 4


def test_a_span_file_keeps_exception_events_and_status_descriptions(tmp_path: Path) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "notify"}))
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(tmp_path / "notify.jsonl")))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("deliver sms", kind=SpanKind.CLIENT, record_exception=False) as s:
        s.record_exception(ValueError("gateway said no"), attributes={"care.delivery.attempt": 2})
        s.set_status(Status(StatusCode.ERROR, "delivery failed"))
    provider.shutdown()

    [line] = (tmp_path / "notify.jsonl").read_text().splitlines()
    written = json.loads(line)
    assert written["status"] == "ERROR"
    assert written["status_description"] == "delivery failed"
    [event] = written["events"]
    assert event["name"] == "exception" and event["time_ns"] > 0
    assert event["attributes"]["exception.type"] == "ValueError"
    assert event["attributes"]["exception.message"] == "gateway said no"
    assert event["attributes"]["care.delivery.attempt"] == 2
    assert written["resource"]["service.name"] == "notify"

    # carectl trace still reads the file.
    spans = load_spans(tmp_path)
    tree = render_tree(spans, written["trace_id"])
    assert "[notify] deliver sms (client)" in tree and "ERROR" in tree
