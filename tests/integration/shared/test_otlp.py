"""Spans go to an OTLP/HTTP collector when OTEL_EXPORTER_OTLP_ENDPOINT is set: a real HTTP
server stands in for the collector and decodes what it receives."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from care_shared.settings import ServiceSettings
from care_shared.telemetry import build_tracer_provider
from care_shared.testing.nats_server import free_port


def test_spans_are_exported_over_otlp_http() -> None:
    received: list[ExportTraceServiceRequest] = []

    class Collector(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == "/v1/traces" and self.headers["Content-Type"] == "application/x-protobuf":
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                received.append(request)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings = ServiceSettings(
            service_name="intake", otel_exporter_otlp_endpoint=f"http://127.0.0.1:{server.server_port}"
        )
        provider = build_tracer_provider(settings)
        with provider.get_tracer("test").start_as_current_span("POST /v1/patients"):
            pass
        assert provider.force_flush(10_000)
        provider.shutdown()
    finally:
        server.shutdown()
    spans = [
        (rs.resource, span)
        for request in received
        for rs in request.resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    ]
    assert [s.name for _, s in spans] == ["POST /v1/patients"]
    resource = {a.key: a.value.string_value for a in spans[0][0].attributes}
    assert resource["service.name"] == "intake"
