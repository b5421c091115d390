"""Carrying the W3C trace context through stored events and NATS headers."""

from __future__ import annotations

from opentelemetry import context as otel_context
from opentelemetry import propagate


def current_traceparent() -> str | None:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


def context_from_traceparent(traceparent: str | None) -> otel_context.Context | None:
    if not traceparent:
        return None
    return propagate.extract({"traceparent": traceparent})
