"""Messaging: the task names, queues and wake keys the API, tasks and beat share; the sender.

Every name a message travels under is spelled here once.  ``workflows/`` sends
tasks by name through ``celery_client(settings)``, a Celery app that knows the
broker, the serialisation, the result backend and the routes but no task code,
so nothing in the service layer imports ``workers/``.  ``workers/celery_app.py``
builds the worker's app from the same client and configures it further
(acknowledgement, time limits, beat's schedule, the task modules).

Redis is both broker and result backend; messages are JSON only (no pickle).
The ``threadneedle.webhooks.*`` tasks go to ``<celery_queue>.webhooks``,
consumed by a thread-pool worker of their own: a slow endpoint holds threads
there, never the projections.

A wake is a flag ``tn:wake:{<name>}`` set with ``SET NX EX`` before a task is
sent, so a burst of commits sends one task (``workflows/projection_control.py``);
the consumer deletes the flag before it reads the log.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.result import AsyncResult
from celery.signals import before_task_publish

from workflows import logs
from workflows.settings import Settings

# Used only when NEEDLE_REDIS_URL is unset outside ``needle up`` (which always sets it):
# the Redis a developer runs on the usual port.
FALLBACK_REDIS_URL = "redis://127.0.0.1:6379/0"

# --- task names (``workers/tasks.py`` registers them; everything else sends by name) ---
PING = "threadneedle.ping"
PROJECT = "threadneedle.project"
REBUILD = "threadneedle.rebuild"
REFRESH_PRIORITIES = "threadneedle.refresh_priorities"
REBUILD_IF_TEXTS_CHANGED = "threadneedle.rebuild_if_texts_changed"
ESCALATE_LAPSED = "threadneedle.escalate_lapsed"
WEBHOOK_DISPATCH = "threadneedle.webhooks.dispatch"
WEBHOOK_DELIVER = "threadneedle.webhooks.deliver"
WEBHOOK_SWEEP = "threadneedle.webhooks.sweep"
WEBHOOK_TASKS = "threadneedle.webhooks.*"  # the pattern routed to the webhooks queue

# --- wake keys ---------------------------------------------------------------------------
WAKE_SECONDS = 5
WEBHOOKS = "webhooks"  # the webhook dispatcher's name: its wake flag and its log position


def wake_key(name: str) -> str:
    """A projection's (or the dispatcher's) wake flag; the name is a Redis Cluster hash tag,
    so the flag sits in the slot of the keys it wakes."""
    return "tn:wake:{" + name + "}"


# --- queues ------------------------------------------------------------------------------


def default_queue(settings: Settings) -> str:
    """Projections, timers, health: the prefork worker's queue."""
    return settings.celery_queue


def webhooks_queue(settings: Settings) -> str:
    """Webhook dispatch, delivery and the sweep: the thread-pool worker's queue."""
    return f"{settings.celery_queue}.webhooks"


# --- the sender --------------------------------------------------------------------------


def celery_client(settings: Settings | None = None) -> Celery:
    """A Celery app that sends tasks by name and reads their results (it runs none)."""
    settings = settings or Settings()
    redis_url = settings.redis_url or FALLBACK_REDIS_URL
    app = Celery("threadneedle")
    app.conf.update(
        broker_url=redis_url,
        result_backend=redis_url,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        result_expires=3600,
        # A message not acknowledged within this many seconds is handed to another
        # worker; it must exceed the hard time limit or a slow task would run twice.
        broker_transport_options={"visibility_timeout": 600},
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=5,
        redis_socket_timeout=10,
        redis_socket_connect_timeout=5,
        timezone="UTC",
        enable_utc=True,
        task_default_queue=default_queue(settings),
        task_routes={WEBHOOK_TASKS: {"queue": webhooks_queue(settings)}},
    )
    return app


def send_project(celery: Celery, settings: Settings, partition: int) -> AsyncResult:
    """Catch the views up, starting with ``partition``."""
    return celery.send_task(PROJECT, args=[partition], queue=default_queue(settings))


def send_rebuild(celery: Celery, settings: Settings, projection: str) -> AsyncResult:
    """Fill the rebuild opened for ``projection`` (a partition's name) and switch to it."""
    return celery.send_task(REBUILD, args=[projection], queue=default_queue(settings))


def send_webhook_dispatch(celery: Celery, settings: Settings) -> AsyncResult:
    """Turn new contract events into outbox messages."""
    return celery.send_task(WEBHOOK_DISPATCH, queue=webhooks_queue(settings))


def send_webhook_delivery(
    celery: Celery, settings: Settings, subscription_id: str, contract_id: str
) -> AsyncResult:
    """Deliver one lane's due messages (a subscription's, for one contract)."""
    return celery.send_task(
        WEBHOOK_DELIVER, args=[subscription_id, contract_id], queue=webhooks_queue(settings)
    )


@before_task_publish.connect
def _carry_request_id(headers: dict[str, Any] | None = None, **_: object) -> None:
    """A task sent while a request (or a task) has an id bound carries it along."""
    request_id = logs.current_request_id()
    if request_id and headers is not None:
        headers.setdefault(logs.REQUEST_ID, request_id)
