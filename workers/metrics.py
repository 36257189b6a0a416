"""A worker's Prometheus metrics: what the projections, the webhooks and the conflicts are at.

Choice: each worker's main process serves ``/metrics`` on its own port
(``NEEDLE_WORKER_METRICS_PORT``, 0: off), and every value is read at scrape time
from the stores that hold the truth, not counted in the process:

- ``needle_projection_position`` / ``_lag_events`` / ``_lag_seconds``, by partition
  (``contracts.p0`` …), as ``GET /v1/admin/projections`` reports them;
- ``needle_webhook_messages`` by status (``pending`` is the backlog) and
  ``needle_webhook_attempts_total`` by outcome (``delivered``, ``http_error``,
  ``network_error``), counted in the outbox tables;
- ``needle_open_conflicts`` by kind and level, counted on the boards in Redis.

So it does not matter which pool process ran a task or which machine a worker is on:
any one worker's port answers the same numbers (scrape one, or all and take ``max``),
and no ``PROMETHEUS_MULTIPROC_DIR`` has to be shared and cleaned between prefork
children.  A store that cannot be read is reported as ``needle_metrics_up{source}`` 0.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from workflows import view_store
from workflows.bootstrap import Services, bootstrap
from workflows.projection_control import projection_statuses

log = logging.getLogger(__name__)

_ATTEMPT_OUTCOMES = """
SELECT CASE WHEN status_code BETWEEN 200 AND 299 THEN 'delivered'
            WHEN status_code IS NOT NULL THEN 'http_error'
            ELSE 'network_error' END AS outcome, COUNT(*) AS n
FROM {webhook_attempts} GROUP BY 1
"""
_MESSAGES = "SELECT status, COUNT(*) AS n FROM {webhook_messages} GROUP BY status"


class NeedleCollector(Collector):
    """Reads the projections' status, the outbox and the boards on each scrape."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.outbox = services.outbox.tables
        self._lock = threading.Lock()  # one scrape at a time on the shared connections

    def collect(self) -> Iterator[Any]:
        with self._lock:
            up = GaugeMetricFamily("needle_metrics_up", "Whether a source could be read.",
                                   labels=["source"])
            for source, read in (("projections", self._projections),
                                 ("webhooks", self._webhooks), ("conflicts", self._conflicts)):
                try:
                    yield from read()
                    up.add_metric([source], 1)
                except Exception as error:  # a scrape reports, never raises
                    log.warning("metrics: %s unreadable: %s", source, str(error)[:300])
                    up.add_metric([source], 0)
            yield up

    def _projections(self) -> Iterator[Any]:
        position = GaugeMetricFamily("needle_projection_position",
                                     "Last log position in the live views.", labels=["partition"])
        lag = GaugeMetricFamily("needle_projection_lag_events",
                                "Events of the log not yet in the live views.",
                                labels=["partition"])
        seconds = GaugeMetricFamily("needle_projection_lag_seconds",
                                    "Age of the oldest event not yet in the live views.",
                                    labels=["partition"])
        for item in projection_statuses(self.services)[1:]:  # [0] is all partitions together
            position.add_metric([item["name"]], item["position"])
            lag.add_metric([item["name"]], item["lag_events"])
            seconds.add_metric([item["name"]], item["lag_seconds"])
        yield from (position, lag, seconds)

    def _webhooks(self) -> Iterator[Any]:
        messages = GaugeMetricFamily("needle_webhook_messages",
                                     "Webhook messages by status (pending: the backlog).",
                                     labels=["status"])
        attempts = CounterMetricFamily("needle_webhook_attempts",
                                       "Webhook delivery attempts by outcome.",
                                       labels=["outcome"])
        outbox = self.outbox
        with outbox.read() as cursor:  # the outbox's own connection and table names
            by_status = {row["status"]: int(row["n"]) for row in
                         outbox.execute(cursor, _MESSAGES).fetchall()}
            outcomes = {row["outcome"]: int(row["n"]) for row in
                        outbox.execute(cursor, _ATTEMPT_OUTCOMES).fetchall()}
        for status in ("pending", "delivered", "failed"):
            messages.add_metric([status], by_status.get(status, 0))
        for outcome in ("delivered", "http_error", "network_error"):
            attempts.add_metric([outcome], outcomes.get(outcome, 0))
        yield from (messages, attempts)

    def _conflicts(self) -> Iterator[Any]:
        client: Any = self.services.redis
        counts: Counter[tuple[str, str]] = Counter()
        if client is not None:
            partitions = self.services.settings.projection_partitions
            for projection in view_store.partition_names(partitions):
                generation = client.get(view_store.current_key(projection))
                if generation is None:
                    continue
                name = generation.decode() if isinstance(generation, bytes) else generation
                for raw in client.hvals(view_store.board_items_key(name)):
                    item = json.loads(raw)
                    counts[(str(item.get("kind")), str(item.get("level")))] += 1
        family = GaugeMetricFamily("needle_open_conflicts", "Open conflicts by kind and level.",
                                   labels=["kind", "level"])
        for (kind, level), count in sorted(counts.items()):
            family.add_metric([kind, level], count)
        yield family


def registry_for(services: Services) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(NeedleCollector(services))
    return registry


_server: Any = None


def serve_metrics(port: int, services: Services | None = None) -> Any:
    """Serve ``/metrics`` on ``port`` from this process (once); the server, for tests."""
    global _server
    if _server is None:
        services = services or bootstrap()
        _server = start_http_server(port, addr="0.0.0.0", registry=registry_for(services))
        log.info("worker metrics on port %d", port)
    return _server
