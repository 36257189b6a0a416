"""Prometheus metrics for the API: requests by route template, latency, commands.

Each app gets its own registry (built in ``create_app``), so several apps in
one process — tests, benchmarks — never collide in a global registry.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import Scope

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

    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        """One answered request, labelled with its route's template, never the raw path
        (``api/gate.py`` times every request)."""
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        method = scope["method"]
        labels = (template, method, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)
        if method in COMMAND_METHODS and template.startswith("/v1/"):
            name = getattr(route, "name", None) or template
            outcome = "accepted" if status < 400 else "refused"
            self.commands.labels(name, outcome).inc()
