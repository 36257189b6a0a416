"""The services a worker process uses, built on first use in that process.

Nothing is built at import time: the prefork pool forks after importing the
tasks, and a database connection must not be shared across a fork.  Each
pool process bootstraps its own ``Services`` (``workflows/bootstrap.py``) the
first time a task needs them, takes its parts from there, and closes them
when the process ends.
"""

from __future__ import annotations

import threading

from celery.signals import worker_process_init, worker_process_shutdown

from workflows.bootstrap import Services, bootstrap
from workflows.projection_control import PartitionedViews
from workflows.webhooks.delivery import Delivery
from workflows.webhooks.dispatch import Dispatcher

_lock = threading.Lock()
_services: Services | None = None


def services() -> Services:
    global _services
    with _lock:
        if _services is None:
            _services = bootstrap()
        return _services


def projection() -> PartitionedViews:
    """The contract-views projector of this process: its aggregates stay warm between tasks."""
    return services().contract_views


def webhook_dispatcher() -> Dispatcher:
    """This process's dispatcher (its contract states stay warm between tasks)."""
    return services().dispatcher


def webhook_delivery() -> Delivery:
    """This process's delivery, with the one shared ``WebhookClient``."""
    return services().delivery


@worker_process_init.connect
def _forget_inherited(**_: object) -> None:
    """A forked pool process must not use services its parent built."""
    global _services
    _services = None


@worker_process_shutdown.connect
def _close(**_: object) -> None:
    global _services
    with _lock:
        if _services is not None:
            _services.close()
        _services = None
