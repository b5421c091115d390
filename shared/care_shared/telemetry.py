"""Telemetry bootstrap: traces (OTLP when configured, a JSON-lines span file for operators
without a collector), structured JSON logs carrying trace ids.

No patient data goes into spans or logs: ids only. Request bodies are never recorded.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

from care_shared.settings import ServiceSettings


class JsonLinesSpanExporter(SpanExporter):
    """Appends each finished span as one JSON line: the local trace store under var/."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = []
        for span in spans:
            ctx = span.get_span_context()
            parent = span.parent
            lines.append(
                json.dumps(
                    {
                        "trace_id": format(ctx.trace_id, "032x"),
                        "span_id": format(ctx.span_id, "016x"),
                        "parent_span_id": format(parent.span_id, "016x") if parent else None,
                        "name": span.name,
                        "kind": span.kind.name,
                        "service": span.resource.attributes.get("service.name"),
                        "start_ns": span.start_time,
                        "end_ns": span.end_time,
                        "status": span.status.status_code.name,
                        "status_description": span.status.description,
                        "attributes": dict(span.attributes or {}),
                        # Events (an exception's message, say) and the resource are exported
                        # by OTLP too: kept here so what is searched for patient data is all of it.
                        "events": [
                            {"name": e.name, "time_ns": e.timestamp, "attributes": dict(e.attributes or {})}
                            for e in span.events
                        ],
                        "resource": dict(span.resource.attributes),
                    },
                    default=str,
                )
            )
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


# Attributes that can carry what a client typed (a query string, a header): dropped, or cut
# at the "?" for URLs. Routes (`http.route`) and ids stay.
_DROPPED = frozenset({"url.query", "user_agent.original", "http.user_agent", "exception.stacktrace"})
_URLS = frozenset({"url.full", "http.url", "http.target"})


def _clean(attributes: dict | None) -> dict:
    clean = {}
    for key, value in (attributes or {}).items():
        if key in _DROPPED or key.startswith(("http.request.header.", "http.response.header.")):
            continue
        if key in _URLS and isinstance(value, str):
            value = value.split("?", 1)[0]
        clean[key] = value
    return clean


def redacted(span: ReadableSpan) -> ReadableSpan:
    """The span as it may leave the process: no query strings, no client-typed headers, and
    an exception's type without its message (which may quote what was sent)."""
    events = []
    for e in span.events:
        attributes = _clean(e.attributes)
        if "exception.message" in attributes:
            attributes["exception.message"] = str(attributes.get("exception.type", "error"))
        events.append(Event(e.name, attributes, timestamp=e.timestamp))
    return ReadableSpan(
        name=span.name.split("?", 1)[0],
        context=span.get_span_context(),
        parent=span.parent,
        resource=span.resource,
        attributes=_clean(dict(span.attributes or {})),
        events=events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class RedactingSpanProcessor(SpanProcessor):
    """In front of every exporter's processor, so OTLP and the span file get the same."""

    def __init__(self, inner: SpanProcessor) -> None:
        self.inner = inner

    def on_start(self, span, parent_context=None) -> None:
        self.inner.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        self.inner.on_end(redacted(span))

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def build_tracer_provider(settings: ServiceSettings) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
    if settings.otel_exporter_otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = settings.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces"
        provider.add_span_processor(
            RedactingSpanProcessor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        )
    if settings.care_trace_file:
        # Simple (synchronous) so a span is on disk the moment it ends: operators and tests
        # read the file while the service runs.
        provider.add_span_processor(
            RedactingSpanProcessor(SimpleSpanProcessor(JsonLinesSpanExporter(settings.care_trace_file)))
        )
    return provider


def install_tracer_provider(settings: ServiceSettings) -> TracerProvider:
    provider = build_tracer_provider(settings)
    trace.set_tracer_provider(provider)
    return provider


_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonLogFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = format(span.trace_id, "032x")
            entry["span_id"] = format(span.span_id, "016x")
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = record.exc_info[0].__name__ if record.exc_info[0] else None
        return json.dumps(entry, default=str)


# Libraries that log SQL parameters, request bodies or message payloads when debugging:
# they stay at WARNING whatever LOG_LEVEL says, so debugging never writes patient data.
DATA_LOGGING_LIBRARIES = (
    "aiosqlite",
    "asyncpg",
    "sqlalchemy",
    "httpx",
    "httpcore",
    "nats",
    "faststream",
    "mail.log",
    "aiosmtpd",
    "urllib3",
)


def configure_logging(settings: ServiceSettings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    for name in DATA_LOGGING_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    # The broker's own logger: start-up and connection trouble at INFO and above; its
    # per-message lines are at DEBUG (see build_runtime) and stay off, as they carry no trace id.
    logging.getLogger(f"{settings.service_name}.broker").setLevel(max(logging.INFO, root.level))
    # uvicorn's access log prints full paths and query strings; ours go through spans.
    logging.getLogger("uvicorn.access").disabled = True
