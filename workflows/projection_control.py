"""What the API, the CLI and the tasks do to the projections: wake, rebuild, report.

``wake_projections`` is what every successful command calls after its commit:
``SET tn:wake:contracts 1 NX EX 5`` and, only when that set the flag, one
``threadneedle.project`` task sent by name.  The consumer deletes the flag
before it reads the log, so a burst of commits costs one task, and a commit
that lands while the consumer runs is seen by that same run.  The webhook
dispatcher is woken the same way (``tn:wake:webhooks``,
``threadneedle.webhooks.dispatch`` on the ``<celery_queue>.webhooks`` queue).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import redis
from kombu.exceptions import OperationalError as BrokerUnavailable

from domain.errors import NotFound
from workflows import views
from workflows.application import utc_now
from workflows.bootstrap import Services
from workflows.projections import NAME, ContractViews
from workflows.views import ViewStore

log = logging.getLogger(__name__)

PROJECTIONS = (NAME,)
WAKE_SECONDS = 5
PROJECT_TASK = "threadneedle.project"
REBUILD_TASK = "threadneedle.rebuild"
WEBHOOKS = "webhooks"
WEBHOOK_DISPATCH_TASK = "threadneedle.webhooks.dispatch"


def contract_views(services: Services) -> ContractViews:
    if services.redis is None:
        raise RuntimeError("the projections need Redis: set NEEDLE_REDIS_URL")
    settings = services.settings
    return ContractViews(
        app=services.app, store=ViewStore(services.redis, NAME), clock=utc_now,
        batch_size=settings.projection_batch_size, lock_seconds=settings.projection_lock_seconds,
    )


def wake_projections(services: Services) -> bool:
    """After a commit: wake the projection unless a wake is already pending.  Never raises.

    A lost wake (Redis or the broker down) only delays the views until beat's
    periodic run: the log is the truth.  Every commit may concern a webhook
    too, so this wakes the webhook dispatcher as well (``wake_webhooks``).
    """
    wake_webhooks(services)
    return _wake(services, NAME, PROJECT_TASK, services.settings.celery_queue)


def wake_webhooks(services: Services) -> bool:
    """After a commit: wake the webhook dispatcher (``tn:wake:webhooks``).  Never raises.

    A lost wake only delays messages until the sweeper's next run (every
    ``NEEDLE_WEBHOOK_SWEEP_SECONDS``): the outbox position is the truth.
    """
    return _wake(services, WEBHOOKS, WEBHOOK_DISPATCH_TASK,
                 f"{services.settings.celery_queue}.webhooks")


def _wake(services: Services, name: str, task: str, queue: str) -> bool:
    if services.redis is None:
        return False
    key = views.wake_key(name)
    try:
        if not services.redis.set(key, 1, nx=True, ex=WAKE_SECONDS):
            return False
    except redis.RedisError as error:
        log.warning("%s wake skipped: %s", name, error)
        return False
    try:
        services.celery.send_task(task, queue=queue)
    except (BrokerUnavailable, redis.RedisError, OSError) as error:
        log.warning("%s wake not sent: %s", name, error)
        with contextlib.suppress(redis.RedisError):
            services.redis.delete(key)  # let the next commit try again
        return False
    return True


def require_projection(name: str) -> None:
    if name not in PROJECTIONS:
        raise NotFound(f"no projection named {name!r}")


def request_rebuild(services: Services, name: str = NAME) -> str:
    """Open a generation beside the live one and have a worker fill and switch it."""
    require_projection(name)
    generation = contract_views(services).store.start_rebuild()
    services.celery.send_task(REBUILD_TASK, args=[name], queue=services.settings.celery_queue)
    return generation


def projection_statuses(services: Services) -> list[dict[str, Any]]:
    """``GET /v1/admin/projections`` items: name, position, head, lag, status."""
    return [contract_views(services).status()]
