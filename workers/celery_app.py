"""The Celery app, built from the settings.

Redis is both broker and result backend.  Messages are JSON only (no pickle),
a task is acknowledged after it ran (``acks_late``, so a worker killed mid-task
leaves the message to be redelivered: every task must be idempotent) and a
worker takes one message at a time, so a slow task never hides others behind it.
The ``threadneedle.webhooks.*`` tasks go to ``<celery_queue>.webhooks``.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.signals import (
    before_task_publish,
    setup_logging,
    task_postrun,
    task_prerun,
    worker_init,
    worker_ready,
)

from workers.schedule import beat_schedule
from workflows import logs
from workflows.settings import Settings

# Used only when NEEDLE_REDIS_URL is unset outside ``needle up`` (which always sets it):
# the Redis a developer runs on the usual port.
FALLBACK_REDIS_URL = "redis://127.0.0.1:6379/0"

TASK_MODULES = ["workers.tasks"]


def create_celery(settings: Settings | None = None) -> Celery:
    settings = settings or Settings()
    redis_url = settings.redis_url or FALLBACK_REDIS_URL
    app = Celery("threadneedle", include=TASK_MODULES)
    app.conf.update(
        broker_url=redis_url,
        result_backend=redis_url,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=60,
        task_time_limit=90,
        result_expires=3600,
        # A message not acknowledged within this many seconds is handed to another
        # worker; it must exceed the hard time limit or a slow task would run twice.
        broker_transport_options={"visibility_timeout": 600},
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=5,
        redis_socket_timeout=10,
        redis_socket_connect_timeout=5,
        worker_send_task_events=False,
        worker_hijack_root_logger=False,
        timezone="UTC",
        enable_utc=True,
        task_default_queue=settings.celery_queue,
        # Webhook work has a queue of its own, consumed by a thread-pool worker:
        # a slow endpoint holds threads there, never the projections.
        task_routes={"threadneedle.webhooks.*": {"queue": f"{settings.celery_queue}.webhooks"}},
        beat_schedule=beat_schedule(settings),
    )
    return app


@setup_logging.connect
def _structured_logs(**_: object) -> None:
    """Celery leaves logging to us (connecting here stops it configuring its own)."""
    settings = Settings()
    logs.configure_logging(settings.log_level, settings.log_format)


@before_task_publish.connect
def _carry_request_id(headers: dict[str, Any] | None = None, **_: object) -> None:
    """A task sent while a request (or a task) has an id bound carries it along."""
    request_id = logs.current_request_id()
    if request_id and headers is not None:
        headers.setdefault(logs.REQUEST_ID, request_id)


@task_prerun.connect
def _bind_request_id(task: Any = None, task_id: str | None = None, **_: object) -> None:
    request = getattr(task, "request", None)
    request_id = getattr(request, logs.REQUEST_ID, None) if request is not None else None
    logs.bind_request_id(request_id, task=getattr(task, "name", None), task_id=task_id)


@task_postrun.connect
def _unbind_request_id(**_: object) -> None:
    logs.clear()


@worker_init.connect
def _observability(**_: object) -> None:
    """The worker's own ``/metrics`` port and, when on, tracing (``workers/metrics.py``)."""
    settings = Settings()
    if settings.tracing:
        from workflows.tracing import start_tracing

        start_tracing(settings, "threadneedle-worker")
    if settings.worker_metrics_port:
        from workers.metrics import serve_metrics

        try:
            serve_metrics(settings.worker_metrics_port)
        except OSError as error:  # the port is taken (a second worker on this machine)
            logging.getLogger(__name__).warning(
                "worker metrics not served on port %d: %s", settings.worker_metrics_port, error)


@worker_ready.connect
def _refresh_stale_priorities(sender: Any = None, **_: object) -> None:
    """A worker that starts after midnight brings yesterday's urgency up to date."""
    if sender is not None:
        sender.app.send_task("threadneedle.refresh_priorities", kwargs={"only_if_stale": True},
                             queue=sender.app.conf.task_default_queue)
