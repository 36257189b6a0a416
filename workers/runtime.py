"""The services a worker process uses, built on first use in that process.

Nothing is built at import time: the prefork pool forks after importing the
tasks, and a database connection must not be shared across a fork.  Each
pool process builds its own services the first time a task needs them and
closes them when the process ends.
"""

from __future__ import annotations

import threading

from celery.signals import worker_process_init, worker_process_shutdown

from workflows.bootstrap import Services, bootstrap
from workflows.projection_control import PartitionedViews, contract_views
from workflows.webhooks.delivery import Delivery
from workflows.webhooks.dispatch import Dispatcher
from workflows.webhooks.outbox import Outbox
from workflows.webhooks.ssrf import parse_allowed_cidrs
from workflows.webhooks.transport import WebhookClient

_lock = threading.Lock()
_services: Services | None = None
_views: PartitionedViews | None = None
_webhooks: tuple[Dispatcher, Delivery] | None = None


def services() -> Services:
    with _lock:
        return services_unlocked()


def projection() -> PartitionedViews:
    """The contract-views projector of this process: its aggregates stay warm between tasks."""
    global _views
    with _lock:
        if _views is None:
            _views = contract_views(services_unlocked())
        return _views


def webhook_dispatcher() -> Dispatcher:
    """This process's dispatcher (its contract states stay warm between tasks)."""
    return _webhook_parts()[0]


def webhook_delivery() -> Delivery:
    """This process's delivery, with the one shared ``WebhookClient``."""
    return _webhook_parts()[1]


def _webhook_parts() -> tuple[Dispatcher, Delivery]:
    global _webhooks
    with _lock:
        if _webhooks is None:
            current = services_unlocked()
            outbox = Outbox(current.app)
            # one client for every delivery thread: connections kept alive per endpoint
            client = WebhookClient(parse_allowed_cidrs(current.settings.webhook_allowed_cidrs),
                                   timeout=current.settings.webhook_timeout_seconds)
            _webhooks = (Dispatcher(current.app, outbox),
                         Delivery.from_settings(current.app, outbox, client))
        return _webhooks


def services_unlocked() -> Services:
    global _services
    if _services is None:
        _services = bootstrap()
    return _services


@worker_process_init.connect
def _forget_inherited(**_: object) -> None:
    """A forked pool process must not use services its parent built."""
    global _services, _views, _webhooks
    _services, _views, _webhooks = None, None, None


@worker_process_shutdown.connect
def _close(**_: object) -> None:
    global _services, _views, _webhooks
    with _lock:
        if _webhooks is not None:
            _webhooks[1].client.close()
        if _services is not None:
            _services.close()
        _services, _views, _webhooks = None, None, None
