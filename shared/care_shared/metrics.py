"""Prometheus metrics on `/metrics`: one registry per service runtime (so several runtimes in
one test process keep apart). Labels carry routes, event types and consumer names, never ids."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class ServiceMetrics:
    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        r = self.registry
        self.http_requests = Counter(
            "care_http_requests", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.http_latency = Histogram(
            "care_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.events_appended = Counter(
            "care_events_appended", "Events appended to this service's store", ["type"], registry=r
        )
        self.events_published = Counter(
            "care_events_published", "Events the outbox relay published", ["type"], registry=r
        )
        self.events_consumed = Counter(
            "care_events_consumed", "Events handled and acknowledged", ["consumer", "type"], registry=r
        )
        self.events_duplicate = Counter(
            "care_events_duplicate",
            "Events skipped by the inbox as already handled",
            ["consumer"],
            registry=r,
        )
        self.events_conflicts = Counter(
            "care_events_conflicts",
            "Handlings retried at once after losing a race to another replica",
            ["consumer"],
            registry=r,
        )
        self.events_redelivered = Counter(
            "care_events_redelivered", "Failed handlings sent back for redelivery", ["consumer"], registry=r
        )
        self.events_refused = Counter(
            "care_events_refused",
            "Events refused for where they came from: a forged origin, or a stream position held by another event",
            ["consumer", "check"],
            registry=r,
        )
        # Alerted on (deploy/): kind is one of care_shared.transient.KINDS.
        self.consumer_transient_failures = Counter(
            "care_consumer_transient_failures",
            "Handlings that met a transient failure and are retried uncounted",
            ["consumer", "kind"],
            registry=r,
        )
        self.events_dead_lettered = Counter(
            "care_events_dead_lettered", "Events sent to the dead-letter subject", ["consumer"], registry=r
        )
        self.outbox_backlog = Gauge("care_outbox_backlog", "Events stored but not yet published", registry=r)
        self.consumer_pending = Gauge(
            "care_consumer_lag", "Messages not yet delivered to a durable consumer", ["consumer"], registry=r
        )
        self.outbox_set_aside = Gauge(
            "care_outbox_set_aside",
            "Outbox rows set aside: they can never become a message (carectl outbox)",
            registry=r,
        )
        self.access_events_failed = Counter(
            "care_access_events_failed",
            "Key events (clinic keys) whose handling failed here",
            ["type"],
            registry=r,
        )
        self.access_events_unapplied = Gauge(
            "care_access_events_unapplied",
            "Key events this service could not apply (an old key may still work here)",
            registry=r,
        )
        self.consumer_ack_pending = Gauge(
            "care_consumer_ack_pending",
            "Messages delivered and not yet acknowledged",
            ["consumer"],
            registry=r,
        )
        # Refreshers run at scrape time (backlog, lag): they ask the database and JetStream.
        self.refreshers: list[Callable[[], Awaitable[None]]] = []
        self._event_counters: list[tuple[Counter, dict[str, str]]] = []

    def counter(self, name: str, documentation: str, labels: list[str] | None = None) -> Counter:
        """A service's own counter, on this registry."""
        return Counter(name, documentation, labels or [], registry=self.registry)

    def count_events(self, name: str, documentation: str, label: str, types: dict[str, str]) -> Counter:
        """A counter of domain steps read off the events a service commits, e.g. reminders
        {outcome="sent"} from reminder-sent: counted once the transaction is durable."""
        counter = self.counter(name, documentation, [label])
        for value in types.values():
            counter.labels(value)  # present at 0 before the first one
        self._event_counters.append((counter, types))
        return counter

    def on_appended(self, types: list[str]) -> None:
        for t in types:
            self.events_appended.labels(t).inc()
            for counter, mapping in self._event_counters:
                if t in mapping:
                    counter.labels(mapping[t]).inc()

    async def refresh(self) -> None:
        for refresh in self.refreshers:
            try:
                await refresh()
            except Exception:
                pass


# Label values are bounded: a made-up method, like an unknown path, is one series.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpMetricsMiddleware:
    """Counts requests and latency by route template (`/v1/patients/{patient_id}`), so
    patient ids never become label values; unknown routes are `unmatched`, unknown methods
    `other`."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            if route not in {"/metrics", "/healthz", "/readyz"}:
                method = scope.get("method", "GET")
                method = method if method in KNOWN_METHODS else "other"
                self.metrics.http_requests.labels(method, route, str(status["code"])).inc()
                self.metrics.http_latency.labels(method, route).observe(time.perf_counter() - start)
