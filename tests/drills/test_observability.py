"""Operating it: JSON logs carrying the request id from the API into the tasks it caused, a
worker's own ``/metrics``, and traces from the API through Celery to the worker."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import redis
from conftest import ADMIN_KEY, fresh_store
from e2e.client import Needle, World
from e2e.serving import start_celery
from integration.processes import stop_tree
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from workflows.settings import Settings

from .support import ApiProcess, free_port, wait_until


class Collector:
    """An OTLP/HTTP endpoint that keeps what it is sent: (service, trace id, span name)."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, str, str]] = []
        spans = self.spans

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                for resource in request.resource_spans:
                    service = next((a.value.string_value for a in resource.resource.attributes
                                    if a.key == "service.name"), "")
                    for scope in resource.scope_spans:
                        spans.extend((service, span.trace_id.hex(), span.name)
                                     for span in scope.spans)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def traces_of(self, service: str) -> set[str]:
        return {trace for name, trace, _ in list(self.spans) if name == service}


@contextmanager
def worker(settings: Settings, log: Path, **env: str) -> Iterator[None]:
    process = start_celery(settings, log, "worker", "--concurrency", "1", "--without-mingle",
                           "--without-gossip", "--hostname", f"obs-{uuid.uuid4().hex[:6]}@%h",
                           **env)
    try:
        yield
    finally:
        stop_tree(process, grace=10)


def json_lines(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text(errors="replace").splitlines()
            if line.startswith("{")]


def test_a_request_id_follows_a_command_into_its_tasks_and_the_worker_reports_metrics(
    tmp_path: Path, drill_settings: Callable[..., Settings],
    api_process: Callable[..., ApiProcess],
) -> None:
    # given the API and a worker with its metrics port, both tracing to one collector
    collector = Collector()
    tracing = {"NEEDLE_TRACING": "true", "NEEDLE_TRACING_ENDPOINT": collector.url}
    settings = drill_settings(**fresh_store(tmp_path))
    api = api_process(settings, NEEDLE_PROJECTION_PARTITIONS="4", **tracing)
    api.start()
    world = World.build(Needle(api.base_url, ADMIN_KEY))
    port, log = free_port(), tmp_path / "worker.log"
    with worker(settings, log, NEEDLE_WORKER_METRICS_PORT=str(port), **tracing):
        # (once the wakes of the set-up commands are taken: a burst wakes a partition once)
        client = redis.Redis.from_url(settings.redis_url or "")
        wait_until(lambda: not client.keys("tn:wake:{contracts.p*}"), 30, "wakes taken")
        client.close()

        # when a command is sent with a request id (and one without)
        request_id = f"req-{uuid.uuid4().hex[:12]}"
        street = world.as_("street")
        first = street.post(f"{world.path}/directives", json=_directive("09:00-21:00"),
                            headers={"X-Request-ID": request_id})
        assert first.status_code == 201, first.text
        second = world.as_("provider").post(f"{world.path}/directives",
                                            json=_directive("10:00-22:00"))
        assert second.status_code == 201, second.text

        # then the answers carry the ids (the client's, or a fresh one)
        assert first.headers["x-request-id"] == request_id
        assert second.headers["x-request-id"] and second.headers["x-request-id"] != request_id
        bad_id = "no spaces or 中文 allowed".encode()
        bad = street.get(world.path, headers={"X-Request-ID": bad_id})
        assert bad.status_code == 200 and bad.headers["x-request-id"] != bad_id.decode("latin-1")

        # and the projection task the command woke logged, as JSON, with that request id
        # (what it logs depends on what is left to project: a task woken by the set-up may
        # already have projected these events under load, and then this one logs no
        # "projected" line, only its result)
        def projected() -> bool:
            return any(line.get("request_id") == request_id
                       and line.get("task") == "threadneedle.project"
                       for line in json_lines(log))

        wait_until(projected, 30, f"a line of the projection task with {request_id}")
        lines = json_lines(log)
        assert all({"timestamp", "level", "event"} <= set(line) for line in lines)
        task_line = next(line for line in lines if line.get("request_id") == request_id)
        assert task_line["task"] == "threadneedle.project"

        # and the worker's /metrics shows the partitions' lag, the webhooks and the conflicts
        url = f"http://127.0.0.1:{port}/metrics"

        def conflict_counted() -> bool:
            text = httpx.get(url, timeout=10).text
            return 'needle_open_conflicts{kind="contradiction"' in text

        wait_until(conflict_counted, 60, "the open contradiction on the worker's /metrics")
        text = httpx.get(url, timeout=10).text
        for partition in range(4):
            assert f'needle_projection_lag_events{{partition="contracts.p{partition}"}}' in text
        assert 'needle_webhook_messages{status="pending"}' in text
        assert 'needle_webhook_attempts_total{outcome="delivered"}' in text
        assert 'needle_metrics_up{source="conflicts"} 1.0' in text
        assert 'needle_metrics_up{source="webhooks"} 1.0' in text

        # and one trace runs from the API's request into the worker's task (the task's own
        # span ends, and so is exported, after the spans of the calls it made)
        def joined() -> bool:
            return bool(collector.traces_of("threadneedle-api")
                        & collector.traces_of("threadneedle-worker")) and any(
                name.startswith("run/threadneedle.project") for _, _, name in collector.spans)

        wait_until(joined, 60, f"a trace shared by API and worker: {collector.spans[:20]}")
        names = {name for _, _, name in collector.spans}
        assert any(name.startswith("run/threadneedle.project") for name in names), names
        assert any(name.startswith(("EVALSHA", "EVAL", "SET", "GET")) for name in names), names
    collector.server.shutdown()


def _directive(value: str) -> dict[str, Any]:
    return {"subject": "youth_zone.opening_hours", "value": value,
            "summary": "青少年地带开放时间 opening hours", "basis": "purchaser_request",
            "hours_per_week": 2, "people_affected": 30, "vulnerability": 0.3}
