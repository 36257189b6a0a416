"""Celery tasks: thin wrappers that take ids or names, re-read what they need and delegate.

Every task is idempotent (the app acknowledges late, so a message can run twice):
the projection tasks only ever move views forward through position-guarded
atomic commits, and a run that finds another consumer holding the lease leaves.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from typing import Any

import redis
from celery import shared_task

from workers.runtime import projection, services
from workflows.application import shanghai_date
from workflows.projection_control import require_projection, wake_projections
from workflows.timers import escalate_lapsed

log = logging.getLogger(__name__)

# A task's share of the soft time limit: a long catch-up stops, commits what it did,
# and hands on to a fresh task rather than being killed mid-batch.
RUN_BUDGET_SECONDS = 30.0
TRANSIENT = (redis.ConnectionError, redis.TimeoutError)
RETRY = {"autoretry_for": TRANSIENT, "retry_backoff": True, "retry_backoff_max": 30,
         "max_retries": 5}


@shared_task(name="threadneedle.ping", ignore_result=False)
def ping() -> dict[str, Any]:
    """Health: the worker is alive and reads the event store."""
    return {
        "head_position": services().app.head_position(),
        "pid": os.getpid(),
        "at": datetime.now(UTC).isoformat(),
    }


@shared_task(name="threadneedle.project", ignore_result=True, **RETRY)
def project() -> int:
    """Catch the views (live and any open rebuild) up with the event log."""
    report = projection().run(budget_seconds=RUN_BUDGET_SECONDS)
    if not report.complete:
        wake_projections(services())
    return report.processed


@shared_task(name="threadneedle.rebuild", ignore_result=True, **RETRY)
def rebuild(name: str) -> int:
    """Fill a new generation from the start of the log and switch to it when caught up."""
    require_projection(name)
    views = projection()
    views.store.start_rebuild()
    report = views.run(budget_seconds=RUN_BUDGET_SECONDS)
    if not report.complete or views.store.building():
        wake_projections(services())  # the project task finishes the rebuild and switches
    return report.processed


@shared_task(name="threadneedle.refresh_priorities", ignore_result=True, **RETRY)
def refresh_priorities(only_if_stale: bool = False) -> int:
    """Recompute urgency against today's date (Asia/Shanghai) in every priority view."""
    views = projection()
    if only_if_stale:
        today = shanghai_date(views.clock()).isoformat()
        stored = views.store.reference_date(views.store.current())
        if stored is not None and stored >= today:
            return 0
    return views.refresh()


@shared_task(name="threadneedle.escalate_lapsed", ignore_result=True)
def escalate_lapsed_conflicts() -> int:
    """Escalate every conflict whose due time has passed one level (``sla_expired``).

    Safe to run twice or on two processes at once: each escalation names the
    level it escalates from, so the second is refused and skipped.  Not
    retried: the next beat tick is the retry.
    """
    current = services()
    escalated = escalate_lapsed(current.app, datetime.now(UTC))
    if escalated:
        wake_projections(current)
        log.info("escalated %d lapsed conflict(s)", len(escalated))
    return len(escalated)
