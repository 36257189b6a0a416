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
from workflows.projection_control import contract_views
from workflows.projections import ContractViews

_lock = threading.Lock()
_services: Services | None = None
_views: ContractViews | None = None


def services() -> Services:
    with _lock:
        return services_unlocked()


def projection() -> ContractViews:
    """The contract-views projector of this process: its aggregates stay warm between tasks."""
    global _views
    with _lock:
        if _views is None:
            _views = contract_views(services_unlocked())
        return _views


def services_unlocked() -> Services:
    global _services
    if _services is None:
        _services = bootstrap()
    return _services


@worker_process_init.connect
def _forget_inherited(**_: object) -> None:
    """A forked pool process must not use services its parent built."""
    global _services, _views
    _services, _views = None, None


@worker_process_shutdown.connect
def _close(**_: object) -> None:
    global _services, _views
    with _lock:
        if _services is not None:
            _services.close()
            _services, _views = None, None
