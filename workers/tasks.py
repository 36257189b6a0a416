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

from domain.shanghai_calendar import shanghai_date
from workers.runtime import projection, services, webhook_delivery, webhook_dispatcher
from workflows import messaging, projection_control
from workflows.projection_control import (
    chosen_partitions,
    hand_on,
    wake_projections,
    wake_webhooks,
    woken_partitions,
)
from workflows.timers import escalate_lapsed
from workflows.webhooks.delivery import forget_sent, request_deliveries
from workflows.webhooks.outbox.records import Lane

log = logging.getLogger(__name__)

# A task's share of the soft time limit: a long catch-up stops, commits what it did,
# and hands on to a fresh task rather than being killed mid-batch.
RUN_BUDGET_SECONDS = 30.0
TRANSIENT = (redis.ConnectionError, redis.TimeoutError)
RETRY = {"autoretry_for": TRANSIENT, "retry_backoff": True, "retry_backoff_max": 30,
         "max_retries": 5}


@shared_task(name=messaging.PING, ignore_result=False)
def ping() -> dict[str, Any]:
    """Health: the worker is alive and reads the event store."""
    return {
        "head_position": services().ledger.head_position(),
        "pid": os.getpid(),
        "at": datetime.now(UTC).isoformat(),
    }


@shared_task(name=messaging.PROJECT, ignore_result=True, **RETRY)
def project(partition: int | None = None) -> int:
    """Catch the views (live and any open rebuild) up with the event log: one partition
    (a commit's wake), or every partition this worker can lease (beat's safety net)."""
    report = projection().run(budget_seconds=RUN_BUDGET_SECONDS, partition=partition)
    if report.processed:
        log.info("projected", extra={"partition": partition, "events": report.processed,
                                     "complete": report.complete})
    if not report.complete:
        hand_on(services(), partition or 0)  # (whatever the wake flags say: see hand_on)
    return report.processed


@shared_task(name=messaging.REBUILD, ignore_result=True, **RETRY)
def rebuild(name: str) -> int:
    """Fill the rebuild ``request_rebuild`` opened (``contracts``: in every partition;
    ``contracts.p<i>``: in that one) and switch to it when caught up.  The task does not
    open one itself: a partition another task already rebuilt and switched is done."""
    indexes = chosen_partitions(services(), name)
    views = projection()
    report = views.run(budget_seconds=RUN_BUDGET_SECONDS, partition=indexes[0])
    if report.processed:
        log.info("projected", extra={"partition": indexes[0], "events": report.processed,
                                     "complete": report.complete})
    if not report.complete or views.rebuilding(indexes):
        hand_on(services(), indexes[0])  # the project task finishes the rebuild and switches
    return report.processed


@shared_task(name=messaging.REFRESH_PRIORITIES, ignore_result=True, **RETRY)
def refresh_priorities(only_if_stale: bool = False) -> int:
    """Recompute urgency against today's date (Asia/Shanghai) in every priority view.

    A refresh holds each partition's lease in turn, and a projection pass that finds it
    held leaves the partition, and its wake flag, to the holder (``PartitionedViews.run``):
    so, like every holder, this task looks at the wake flags once it has let go, and
    projects the woken partitions itself.  (A worker starting in a burst of commits sends
    this task beside the first ``project`` task; without the look, a wake left here waited
    for beat.)"""
    refreshed = 0
    parts = projection().parts
    for part in parts:
        if only_if_stale:
            today = shanghai_date(part.clock()).isoformat()
            stored = part.store.reference_date(part.store.current())
            if stored is not None and stored >= today:
                continue
        refreshed += part.refresh()
    woken = woken_partitions(parts)
    if woken:
        project(woken[0].partition)
    return refreshed


@shared_task(name=messaging.REBUILD_IF_TEXTS_CHANGED, ignore_result=True, **RETRY)
def rebuild_if_texts_changed() -> str | None:
    """Rebuild the views when their stored explanations were written by other texts."""
    return projection_control.rebuild_if_texts_changed(services())


@shared_task(name=messaging.ESCALATE_LAPSED, ignore_result=True)
def escalate_lapsed_conflicts() -> int:
    """Escalate every conflict whose due time has passed one level (``sla_expired``).

    Safe to run twice or on two processes at once: each escalation names the
    level it escalates from, so the second is refused and skipped.  Not
    retried: the next beat tick is the retry.
    """
    current = services()
    escalated = escalate_lapsed(current.ledger, datetime.now(UTC))
    if escalated:
        wake_projections(current)
        log.info("escalated %d lapsed conflict(s)", len(escalated))
    return len(escalated)


# --- webhooks (SPEC §8, issue 5) ------------------------------------------------------
# The outbox in the event store is the truth; these tasks only move it along, so
# each is safe to run twice, late or concurrently: the dispatcher's position is a
# compare-and-set, a lane is delivered by whoever holds its lease in the database.

WEBHOOK_WAKE = messaging.wake_key(messaging.WEBHOOKS)
DISPATCH_BUDGET_SECONDS = 10.0


@shared_task(name=messaging.WEBHOOK_DISPATCH, ignore_result=True, **RETRY)
def dispatch_webhooks() -> int:
    """Turn new contract events into outbox messages and start their lanes' deliveries."""
    current = services()
    client = current.redis

    def woken() -> bool:  # a commit after this wakes another pass
        return client is not None and bool(client.delete(WEBHOOK_WAKE))

    report = webhook_dispatcher().run(budget_seconds=DISPATCH_BUDGET_SECONDS, woken=woken)
    request_deliveries(current, report.lanes)
    if not report.complete:
        wake_webhooks(current)
    return report.written


@shared_task(name=messaging.WEBHOOK_DELIVER, ignore_result=True, **RETRY)
def deliver_webhooks(subscription_id: str, contract_id: str) -> int:
    """Deliver one lane's due messages in order (budgeted; hands on when there is more)."""
    current = services()
    lane = Lane(subscription_id, contract_id)
    forget_sent(current, lane)  # a dispatch from now on may send this lane again
    report = webhook_delivery().deliver_lane(lane)
    if report.more:
        request_deliveries(current, [lane])
    return report.attempts


@shared_task(name=messaging.WEBHOOK_SWEEP, ignore_result=True)
def sweep_webhooks() -> int:
    """Beat's safety net: dispatch, then start every due lane that no live lease holds.

    This is also what re-sends a delivery whose task was lost (a killed worker,
    an emptied Redis) and what fires stored retry times.  Not retried: the
    next beat tick is the retry.
    """
    current = services()
    report = webhook_dispatcher().run(budget_seconds=DISPATCH_BUDGET_SECONDS)
    delivery = webhook_delivery()
    delivery.secrets.destroy_expired(delivery.clock())  # retired secrets' keys (once a minute)
    lanes = delivery.outbox.leases.due_lanes(delivery.clock(), cap=delivery.concurrency)
    return request_deliveries(current, dict.fromkeys([*report.lanes, *lanes]))
