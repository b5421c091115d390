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
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
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


def build_tracer_provider(settings: ServiceSettings) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
    if settings.otel_exporter_otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = settings.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    if settings.care_trace_file:
        # Simple (synchronous) so a span is on disk the moment it ends: operators and tests
        # read the file while the service runs.
        provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(settings.care_trace_file)))
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
