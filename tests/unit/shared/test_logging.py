"""Logs are JSON lines; a line written inside a span carries its trace and span ids."""

from __future__ import annotations

import json
import logging

from opentelemetry.sdk.trace import TracerProvider

from care_shared.telemetry import JsonLogFormatter


def record(message: str, **extra: object) -> logging.LogRecord:
    r = logging.LogRecord("care_shared.consumer", logging.WARNING, __file__, 1, message, None, None)
    r.__dict__.update(extra)
    return r


def test_a_line_inside_a_span_carries_the_trace_and_span_ids() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("process intake.trial-completed") as span:
        line = json.loads(
            JsonLogFormatter().format(record("event handling failed", consumer="pathway-intake"))
        )
    ctx = span.get_span_context()
    assert line["trace_id"] == format(ctx.trace_id, "032x")
    assert line["span_id"] == format(ctx.span_id, "016x")
    assert line["level"] == "WARNING" and line["message"] == "event handling failed"
    assert line["consumer"] == "pathway-intake"


def test_a_line_outside_any_span_has_no_ids_and_is_still_json() -> None:
    line = json.loads(JsonLogFormatter().format(record("service started", service="pathway")))
    assert "trace_id" not in line and "span_id" not in line
    assert set(line) >= {"time", "level", "logger", "message", "service"}
