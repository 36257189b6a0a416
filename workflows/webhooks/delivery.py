"""Lane delivery: send a lane's due messages in order, log every attempt (SPEC §8, issue 5).

A *lane* is one (subscription, contract): its messages go out one at a
time in ``sequence`` order.  ``Delivery.deliver_lane`` takes the lane's lease
in the database (``NEEDLE_WEBHOOK_LEASE_SECONDS``; refused while another run
holds it, or while the subscription already holds
``NEEDLE_WEBHOOK_ENDPOINT_CONCURRENCY`` lanes), then loops over the lane's
pending messages: the first one not yet due ends the run; otherwise it is
signed at the attempt's time with every current secret of the subscription
(two during a rotation; opened from their sealed form by ``vault``), POSTed
through the one shared ``WebhookClient``, and the attempt recorded with the
message's new state in one transaction:

- 2xx → ``delivered``, on to the next message;
- 410 → the subscription is disabled (``gone``) and its pending messages
  become ``failed``;
- anything else → the next attempt's time (the schedule with jitter, at
  least ``Retry-After`` on 429/503), which ends the run, or ``failed`` after
  the last one — then on to the next message (the receiver sees the gap in
  ``sequence``; ``recover`` fills it);
- an endpoint failing for ``NEEDLE_WEBHOOK_DISABLE_AFTER_SECONDS`` is
  disabled (``failing``).

A run stops after its time budget and answers ``more=True``: the caller
sends another run (a lane never holds a worker for long).  A crash between
the POST and the record sends that one message again with the same
``webhook-id`` (at least once).  The threads of a process write their
attempts together (``GroupRecorder``): one transaction per group.  Messages
of a subscription found disabled or deleted are marked ``failed``
("endpoint disabled").

``request_deliveries`` sends one ``threadneedle.webhooks.deliver`` task per
lane, skipping lanes that had one sent in the last few seconds (a short
Redis ``NX`` marker: only to avoid piling up duplicates; the truth is the
outbox, and the sweeper sends again whatever is due and not leased).

For tests: ``Delivery(app, outbox, client, ...)`` with a compressed
``schedule`` and ``deliver_lane(Lane(subscription_id, contract_id))`` or
``deliver_due()`` run deliveries in the test's own process.

Long because the lane run (lease, fence, attempt, retry and disable rules) is one loop
whose steps share its state.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import redis
from kombu.exceptions import OperationalError as BrokerUnavailable

from domain.errors import NotFound
from workflows import messaging, subscriptions
from workflows.ledger import Ledger, utc_now
from workflows.webhooks.outbox import Outbox
from workflows.webhooks.outbox.attempts import AttemptLog
from workflows.webhooks.outbox.records import (
    DELIVERED,
    ENDPOINT_DISABLED,
    FAILED,
    PENDING,
    Attempt,
    Lane,
    Lease,
    Record,
    Stored,
    epoch,
    moment,
)
from workflows.webhooks.retries import (
    Outcome,
    classify,
    failing_too_long,
    next_attempt_at,
    parse_retry_after,
    parse_schedule,
)
from workflows.webhooks.signing import sign
from workflows.webhooks.transport import AttemptResult, WebhookClient, post_message
from workflows.webhooks.vault import SecretVault, vault_for

if TYPE_CHECKING:
    from workflows.bootstrap import Services

log = logging.getLogger(__name__)

LANE_BUDGET_SECONDS = 20.0
"""A run's time budget: with a 15 s timeout on top it ends well within the lease."""
SENT_MARKER_SECONDS = 10
RECORD_SECONDS = 1.0
GONE, FAILING = "gone", "failing"


@dataclass(frozen=True)
class LaneReport:
    delivered: int = 0
    failed: int = 0
    attempts: int = 0
    busy: bool = False
    """The lease was refused: another run holds the lane, or the endpoint's cap is reached."""
    more: bool = False
    """The budget ran out with due messages left: send another run."""


@dataclass
class Delivery:
    """Delivers lanes; one per process, shared by its threads."""

    app: Ledger
    outbox: Outbox
    client: WebhookClient
    schedule: Sequence[float]
    lease_seconds: float = 60.0
    concurrency: int = 4
    disable_after: timedelta = timedelta(days=5)
    clock: Callable[[], datetime] = utc_now
    random: Callable[[], float] = random.random
    vault: SecretVault | None = None
    """The process's vault (``Services.vault``); tests and tools may leave it to be built."""

    def __post_init__(self) -> None:
        self.recorder = GroupRecorder(self.outbox.attempts)
        self.secrets: SecretVault = self.vault or vault_for(self.app)
        if self.lease_seconds < self.attempt_seconds:
            log.warning("webhook lease of %g s is shorter than an attempt (%g s): a lane may "
                        "be taken over while a message is in flight", self.lease_seconds,
                        self.attempt_seconds)

    @property
    def attempt_seconds(self) -> float:
        """The longest an attempt holds its lane: the client's timeout, and a second to
        record it."""
        return self.client.timeout_seconds + RECORD_SECONDS

    @classmethod
    def from_settings(cls, app: Ledger, outbox: Outbox, client: WebhookClient, *,
                      vault: SecretVault | None = None) -> Delivery:
        settings = app.settings
        return cls(
            app=app, outbox=outbox, client=client, vault=vault,
            schedule=parse_schedule(settings.webhook_retry_schedule),
            lease_seconds=settings.webhook_lease_seconds,
            concurrency=settings.webhook_endpoint_concurrency,
            disable_after=timedelta(seconds=settings.webhook_disable_after_seconds),
        )

    # --- runs -------------------------------------------------------------------------

    def deliver_due(self, budget_seconds: float = LANE_BUDGET_SECONDS) -> list[LaneReport]:
        """Every lane due now, one after another in this thread (tests and tools)."""
        return [self.deliver_lane(lane, budget_seconds)
                for lane in self.outbox.leases.due_lanes(self.clock())]

    def deliver_lane(self, lane: Lane, budget_seconds: float = LANE_BUDGET_SECONDS) -> LaneReport:
        """Send the lane's due messages in order until one must wait, or the budget ends."""
        lease = self.outbox.leases.lease(lane, self.clock(), seconds=self.lease_seconds,
                                  cap=self.concurrency)
        if lease is None:
            return LaneReport(busy=True)
        run = _Run(self, lease, time.monotonic() + budget_seconds)
        try:
            run.go()
        finally:
            self.outbox.leases.release(run.lease)
        return LaneReport(run.delivered, run.failed, run.attempts, more=run.more)

    def subscription(self, subscription_id: str) -> Any | None:
        """The subscription when it is enabled; else its pending messages are failed."""
        try:
            subscription = subscriptions.load_subscription(self.app, subscription_id)
        except NotFound:
            subscription = None
        if subscription is None or not subscription.enabled:
            self.outbox.attempts.fail_pending(subscription_id, ENDPOINT_DISABLED, self.clock())
            return None
        return subscription

    def disable(self, subscription_id: str, reason: str, why: str) -> None:
        """Disable the endpoint (``gone`` or ``failing``) and fail its pending messages."""
        subscriptions.disable_subscription(self.app, subscription_id, reason)
        failed = self.outbox.attempts.fail_pending(subscription_id, f"{ENDPOINT_DISABLED}: {why}",
                                          self.clock())
        log.warning("webhook %s disabled (%s): %s; %d pending message(s) failed",
                    subscription_id, reason, why, failed)


class GroupRecorder:
    """Delivery threads of one process record their attempts together (group commit).

    Each thread waits until its own attempts are written before it sends the
    lane's next message, so a crash re-sends only the message that was in
    flight; the first waiting thread writes everything queued so far in one
    transaction while the others wait for it, so 16 threads need far fewer
    than 16 transactions.
    """

    def __init__(self, attempts: AttemptLog) -> None:
        self.attempts = attempts
        self._cond = threading.Condition()
        self._queue: list[_Queued] = []
        self._writing = False

    def record(self, record: Record) -> float | None:
        queued = _Queued(record)
        with self._cond:
            self._queue.append(queued)
            while not queued.done:
                if self._writing:
                    self._cond.wait()
                    continue
                self._write_queue()
        if queued.error is not None:
            raise queued.error
        return queued.result

    def _write_queue(self) -> None:
        """Called holding the condition: write the queue without it, then wake the waiters."""
        batch, self._queue, self._writing = self._queue, [], True
        self._cond.release()
        try:
            self._write(batch)
        except BaseException as stopped:  # interrupted: no waiter may think it was written
            for queued in batch:
                queued.error = queued.error or stopped
            raise
        finally:
            self._cond.acquire()
            self._writing = False
            for queued in batch:
                queued.done = True
            self._cond.notify_all()

    def _write(self, batch: list[_Queued]) -> None:
        """One transaction for the batch; if it fails, one per record, so that one lane's
        error (an attempt of a message no longer there, say) is only that lane's."""
        try:
            results = self.attempts.record_groups([queued.record for queued in batch])
        except Exception as failure:
            if len(batch) == 1:
                batch[0].error = failure
                return
            for queued in batch:
                try:
                    queued.result = self.attempts.record_groups([queued.record])[0]
                except Exception as alone:
                    queued.error = alone
            return
        for queued, result in zip(batch, results, strict=True):
            queued.result = result


@dataclass
class _Queued:
    record: Record
    done: bool = False
    result: float | None = None
    error: BaseException | None = None


class _Run:
    """One leased run over one lane; every attempt is recorded before the next one."""

    def __init__(self, delivery: Delivery, lease: Lease, deadline: float) -> None:
        self.d = delivery
        self.lease = lease
        self.deadline = deadline
        self.failing = lease.failing_since is not None
        self.delivered = self.failed = self.attempts = 0
        self.more = False

    def go(self) -> None:
        subscription = self.d.subscription(self.lease.lane.subscription_id)
        if subscription is None:
            return
        while True:
            batch = self.d.outbox.leases.lane_messages(self.lease.lane)
            if not batch:
                return
            for stored in batch:
                if stored.next_attempt_at > epoch(self.d.clock()):
                    return  # the lane waits for this message's next attempt
                if time.monotonic() > self.deadline:
                    self.more = True
                    return
                if not self.holding():
                    return  # the lease lapsed and another run took the lane: it goes on
                if not self.attempt(subscription, stored):
                    return

    def attempt(self, subscription: Any, stored: Stored) -> bool:
        """One attempt; whether the lane goes on to its next message."""
        started = self.d.clock()
        body = stored.body
        secrets = self.d.secrets.signing_secrets(subscription, started)
        if secrets:
            headers = sign(secrets, stored.id, int(started.timestamp()), body)
            result = post_message(self.d.client, subscription.url, body, headers)
        else:  # never sent unsigned: retried, and it fails if the secret stays unreadable
            result = AttemptResult(None, 0.0, "refused: the signing secret is unreadable", "")
        finished = self.d.clock()
        verdict = classify(result.status_code, result.error)
        round_attempts = stored.round_attempts + 1
        status, due = DELIVERED, None
        if verdict.outcome is Outcome.DISABLE:
            status = FAILED
        elif verdict.outcome is Outcome.RETRY:
            retry_after = parse_retry_after(result.retry_after, finished) \
                if verdict.honours_retry_after else None
            when = next_attempt_at(round_attempts, finished, self.d.schedule,
                                   random=self.d.random, retry_after=retry_after)
            status, due = (PENDING, epoch(when)) if when is not None else (FAILED, None)
        failing_since = self.record(Attempt(
            stored.id, stored.attempts + 1, epoch(started), result.status_code,
            result.duration_ms, result.error, result.response, status, due, round_attempts,
            verdict.reason))
        self.attempts += 1
        if status == DELIVERED:
            self.delivered += 1
            return True
        if verdict.outcome is Outcome.DISABLE:
            self.d.disable(self.lease.lane.subscription_id, GONE, verdict.reason)
            return False
        if failing_too_long(moment(failing_since), finished, self.d.disable_after):
            self.d.disable(self.lease.lane.subscription_id, FAILING,
                           f"failing since {moment(failing_since)}")
            return False
        if status == FAILED:
            self.failed += 1
            return True  # a failed message does not block its lane: on to the next
        return False

    def holding(self) -> bool:
        """Before each send: renew the lease unless more than half of it, and more than a
        whole attempt, is left; ``False`` if it was lost.

        An attempt ends within the client's timeout (``deadline``), so a send
        that starts with more than that left of the lease ends before the lease
        can lapse: no other run can take the lane and send its message while
        this one is in flight.  A run stalled past its lease (a loaded machine)
        must not go on sending beside the run that took the lane over either:
        order would break, so it stops here; and the attempt it was making is
        still logged, without setting the message's state (``AttemptLog``'s fence).
        """
        now = epoch(self.d.clock())
        if now + max(self.d.lease_seconds / 2, self.d.attempt_seconds) < self.lease.until:
            return True
        renewed = self.d.outbox.leases.renew(self.lease, moment(now) or self.d.clock(),
                                      self.d.lease_seconds)
        if renewed is None:
            log.warning("webhook lane %s lost its lease: this run stops", self.lease.lane)
            return False
        self.lease = renewed
        return True

    def record(self, attempt: Attempt) -> float | None:
        """Write the attempt, with other threads' attempts (group commit)."""
        failing_since = self.d.recorder.record(Record([attempt], self.lease, 0.0, self.failing))
        self.failing = failing_since is not None
        return failing_since


# --- sending tasks -------------------------------------------------------------------


def sent_marker(lane: Lane) -> str:
    return f"tn:webhooks:sent:{lane.subscription_id}:{lane.contract_id}"


def request_deliveries(services: Services, lanes: Iterable[Lane]) -> int:
    """Send one deliver task per lane not sent in the last few seconds; never raises."""
    sent = 0
    for lane in lanes:
        if services.redis is not None:
            try:
                if not services.redis.set(sent_marker(lane), 1, nx=True, ex=SENT_MARKER_SECONDS):
                    continue
            except redis.RedisError as error:
                log.warning("webhook delivery marker skipped: %s", error)
        try:
            messaging.send_webhook_delivery(services.celery, services.settings,
                                            lane.subscription_id, lane.contract_id)
            sent += 1
        except (BrokerUnavailable, redis.RedisError, OSError) as error:
            log.warning("webhook delivery not sent (the sweeper will): %s", error)
            forget_sent(services, lane)
            break
    return sent


def forget_sent(services: Services, lane: Lane) -> None:
    """A run started (or was refused): let the next dispatch or sweep send again at once."""
    if services.redis is not None:
        with contextlib.suppress(redis.RedisError):
            services.redis.delete(sent_marker(lane))
