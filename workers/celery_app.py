"""The worker's Celery app: ``workflows/messaging.py``'s client, configured to run the tasks.

The client holds the broker, the JSON-only serialisation, the result backend and
the routes (``threadneedle.webhooks.*`` go to ``<celery_queue>.webhooks``).  Here
a task is acknowledged after it ran (``acks_late``, so a worker killed mid-task
leaves the message to be redelivered: every task must be idempotent) and a
worker takes one message at a time, so a slow task never hides others behind it.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.signals import (
    setup_logging,
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_init,
    worker_ready,
)

from workers.schedule import beat_schedule
from workflows import logs
from workflows.collector import settle_collector
from workflows.messaging import REBUILD_IF_TEXTS_CHANGED, REFRESH_PRIORITIES, celery_client
from workflows.settings import Settings

TASK_MODULES = ["workers.tasks"]


def create_celery(settings: Settings | None = None) -> Celery:
    """The worker's (and beat's) app: the messaging client, configured to run the tasks."""
    settings = settings or Settings()
    app = celery_client(settings)
    app.conf.update(
        include=TASK_MODULES,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=60,
        task_time_limit=90,
        worker_send_task_events=False,
        worker_hijack_root_logger=False,
        beat_schedule=beat_schedule(settings),
    )
    return app


@setup_logging.connect
def _structured_logs(**_: object) -> None:
    """Celery leaves logging to us (connecting here stops it configuring its own)."""
    settings = Settings()
    logs.configure_logging(settings.log_level, settings.log_format)


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


@worker_process_init.connect
def _settle_pool_process(**_: object) -> None:
    """A prefork pool process, once started: its start-up objects out of the collector's
    walks (``settle_collector``), which each full collection walked beside the cached
    contracts; a worker with a thread pool settles its main process when ready."""
    settle_collector()


@worker_ready.connect
def _settle_main_process(**_: object) -> None:
    settle_collector()


@worker_ready.connect
def _refresh_stale_priorities(sender: Any = None, **_: object) -> None:
    """A worker that starts after midnight brings yesterday's urgency up to date, and one
    that starts with new texts has views written with the old ones rebuilt."""
    if sender is not None:
        sender.app.send_task(REFRESH_PRIORITIES, kwargs={"only_if_stale": True},
                             queue=sender.app.conf.task_default_queue)
        sender.app.send_task(REBUILD_IF_TEXTS_CHANGED, queue=sender.app.conf.task_default_queue)
