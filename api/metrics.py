"""Prometheus metrics for the API: requests by route template, latency, commands.

Each app gets its own registry (built in ``create_app``), so several apps in
one process — tests, benchmarks — never collide in a global registry.
"""

from __future__ import annotations

from typing import Any

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
        self._children: dict[tuple[str, str, int, str | None], tuple[Any, Any, Any]] = {}

    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        """One answered request, labelled with its route's template, never the raw path
        (``api/gate.py`` times every request)."""
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        key = (template, scope["method"], status, getattr(route, "name", None))
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = self._children_of(*key)
        requests, latency, commands = children
        requests.inc()
        latency.observe(seconds)
        if commands is not None:
            commands.inc()

    def _children_of(self, template: str, method: str, status: int, name: str | None
                     ) -> tuple[Any, Any, Any]:
        """The series a request with these labels counts in (kept: ``labels`` looks them up
        under a lock, each call)."""
        labels = (template, method, str(status))
        commands = None
        if method in COMMAND_METHODS and template.startswith("/v1/"):
            outcome = "accepted" if status < 400 else "refused"
            commands = self.commands.labels(name or template, outcome)
        return self.requests.labels(*labels), self.latency.labels(*labels), commands
