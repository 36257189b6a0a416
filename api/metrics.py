"""Prometheus metrics for the API: requests by route template, latency, commands.

Each app gets its own registry (built in ``create_app``), so several apps in
one process — tests, benchmarks — never collide in a global registry.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COMMAND_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "needle_http_requests_total", "HTTP requests answered.",
            ["route", "method", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "needle_http_request_duration_seconds", "Time to answer an HTTP request.",
            ["route", "method", "status"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.commands = Counter(
            "needle_commands_total", "Commands received, by command and outcome.",
            ["command", "outcome"], registry=self.registry,
        )


class MetricsMiddleware:
    """Times every request and labels it with the route template, never the raw path."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            self._observe(scope, status, time.perf_counter() - started)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        method = scope["method"]
        labels = (template, method, str(status))
        self.metrics.requests.labels(*labels).inc()
        self.metrics.latency.labels(*labels).observe(seconds)
        if method in COMMAND_METHODS and template.startswith("/v1/"):
            name = getattr(route, "name", None) or template
            outcome = "accepted" if status < 400 else "refused"
            self.metrics.commands.labels(name, outcome).inc()
