"""One subscriber cannot stop webhooks for everyone (issue 11, SPEC §11's webhook bar).

"An endpoint that trickles its answer holds a delivery no longer than the 15 s
timeout, and no message is ever in flight twice at once": a real receiver
that sends its answer one byte at a time, two delivery threads competing for
its lane as a worker's threads do, and the timeout compressed from 15 s to
1.5 s.  And every attempt is in the delivery log, including one made by a run
whose lease had lapsed (it used to be lost to an ``IntegrityError``).  The
last test does the same with a real Celery thread-pool worker process, whose
tasks Celery's time limits would not have stopped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from domain.subscriptions import SubscriptionSpec
from domain.webhooks import Message
from workflows import subscriptions
from workflows.identities import BOOTSTRAP_ADMIN
from workflows.ledger import Ledger
from workflows.settings import Settings
from workflows.webhooks.delivery import Delivery
from workflows.webhooks.outbox import Outbox
from workflows.webhooks.outbox.records import (
    DELIVERED,
    FAILED,
    PENDING,
    Attempt,
    Entry,
    Lane,
    epoch,
)
from workflows.webhooks.ssrf import parse_allowed_cidrs
from workflows.webhooks.transport import WebhookClient
from workflows.webhooks.vault import vault_for

from .test_webhook_faults import fault_settings, running_stack, wait_until
from .webhook_receiver import Answer, Receiver

TIMEOUT = 1.5
"""The 15 s delivery timeout, compressed."""
CONTRACT = "9b0c6c1e-4f0a-4d8e-9a51-0d6a1d1c2b3e"


@pytest.fixture
def app(make_settings: Callable[..., Settings]) -> Iterator[Ledger]:
    application = Ledger(make_settings(webhook_allowed_cidrs="127.0.0.0/8"))
    yield application
    application.close()


def one_message(app: Ledger, url: str, at: datetime) -> tuple[Outbox, str, Lane]:
    """A subscription of ``url`` with one message due at ``at``: (outbox, message id, lane)."""
    subscription = subscriptions.create_subscription(app, vault_for(app), BOOTSTRAP_ADMIN,
                                                     SubscriptionSpec(
        url=url, event_types=["*"], description="海珠区 慢速接收端")).id
    outbox = Outbox(app)
    entry = Entry(subscription, Message("directive.issued", {
        "contract_id": CONTRACT, "contract_version": 2, "id": "指令-1",
        "summary": "每周报送服务记录"}), 1, 0, at)
    outbox.dispatch.append([entry], at)
    return outbox, entry.id, Lane(subscription, CONTRACT)


def test_a_trickling_endpoint_holds_a_delivery_no_longer_than_the_timeout_and_never_twice(
    app: Ledger,
) -> None:
    # Given a receiver that answers 200 one byte every 0.1 s (about 25 s in all: every read
    # gets a byte well within the timeout), a message for it, and a lease of 6 s, far
    # shorter than the answer (issue 11: the 60 s lease lapsed under a 150 s attempt)
    answer = Answer(200, body="收到".encode() * 30, trickle=0.1)
    with Receiver([answer]).running() as receiver:
        outbox, message, lane = one_message(app, receiver.url(), datetime.now(UTC))
        client = WebhookClient(parse_allowed_cidrs("127.0.0.0/8"), timeout=TIMEOUT)
        delivery = Delivery(app, outbox, client, schedule=(0.3, 0.3), lease_seconds=6.0)

        # When two threads keep delivering the lane, as a worker's threads would
        stop = threading.Event()

        def worker() -> None:
            while not stop.is_set():
                delivery.deliver_lane(lane)
                stop.wait(0.05)

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while outbox.log.counts()[FAILED] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        received = list(receiver.received)
        most_at_once = dict(receiver.most_at_once)

    # Then the message was tried three times (the schedule's 1 + 2), each attempt a timeout
    # that ended at the timeout, never two at once, and every attempt is in the log
    log = outbox.log.deliveries(lane.subscription_id)
    assert [m["status"] for m in log] == [FAILED]
    attempts = log[0]["attempts"]
    assert [a["attempt"] for a in attempts] == [1, 2, 3]
    assert all(a["error"] == "timeout" and a["status_code"] is None for a in attempts)
    # (the answer would take 25 s; the slack is for a loaded machine)
    assert all(TIMEOUT * 1000 - 100 <= a["duration_ms"] < TIMEOUT * 1000 + 3000
               for a in attempts), [a["duration_ms"] for a in attempts]
    assert most_at_once == {message: 1}
    assert len(received) == len(attempts) == 3


def test_an_attempt_of_a_run_that_lost_its_lease_is_logged_without_setting_the_state(
    app: Ledger,
) -> None:
    # Given a message whose lane was leased by a run that stalled past its lease, and then
    # taken over by a second run; both sent the message and both counted it attempt 1
    now = datetime.now(UTC)
    outbox, message, lane = one_message(app, "http://127.0.0.1:9/hook", now)
    stalled = outbox.leases.lease(lane, now, seconds=2.0, cap=4)
    later = now + timedelta(seconds=3)
    successor = outbox.leases.lease(lane, later, seconds=2.0, cap=4)
    assert stalled is not None and successor is not None

    def attempt(at: datetime, status: str, code: int | None) -> Attempt:
        return Attempt(message, 1, epoch(at), code, 15.0, None if code else "timeout",
                       "已收到" if code else "", status, None if code else epoch(at) + 60, 1)

    # When the successor records its success, then the stalled run its late timeout
    outbox.attempts.record_attempt(attempt(later, DELIVERED, 204), successor)
    outbox.attempts.record_attempt(attempt(later + timedelta(seconds=1), PENDING, None), stalled)

    # Then both attempts are in the log, numbered in the order they were recorded, and the
    # message stays as the run that holds the lane left it: delivered
    [logged] = outbox.log.deliveries(lane.subscription_id)
    assert [(a["attempt"], a["status_code"], a["error"]) for a in logged["attempts"]] == [
        (1, 204, None), (2, None, "timeout")]
    assert logged["status"] == DELIVERED


@pytest.mark.stack
def test_a_thread_pool_worker_gives_up_on_a_trickling_endpoint_and_serves_the_others(
    tmp_path: Path,
) -> None:
    # Given a real thread-pool worker process, the timeout compressed to 1.5 s and a
    # 4 s lease, one receiver that trickles its answers and one that answers at once
    settings = fault_settings(tmp_path, webhook_timeout_seconds=TIMEOUT,
                              webhook_lease_seconds=4.0, webhook_retry_schedule="0.3,0.3")
    slow_answer = Answer(200, body="收到".encode() * 30, trickle=0.1)  # ~25 s in all
    with Receiver([slow_answer]).running() as trickling, \
            Receiver([Answer(204)]).running() as prompt, \
            running_stack(settings, tmp_path / "worker.log") as stack:
        slow_id, _ = stack.subscribe(trickling)
        prompt_id, _ = stack.subscribe(prompt)
        now = datetime.now(UTC)
        for subscription in (slow_id, prompt_id):
            stack.outbox.dispatch.append([Entry(subscription, Message("directive.issued", {
                "contract_id": CONTRACT, "contract_version": version, "id": f"指令-{version}",
                "summary": "每周报送服务记录"}), version, 0, now) for version in (1, 2)], now)

        # When the sweeper starts the deliveries: the prompt receiver has both at once
        wait_until(lambda: stack.counts(prompt_id)[DELIVERED] == 2, 30, "prompt delivered",
                   lambda: stack.counts(prompt_id))
        # and the trickling one's messages fail after three attempts each
        wait_until(lambda: stack.counts(slow_id)[FAILED] == 2, 60, "trickling failed",
                   lambda: stack.counts(slow_id))
        log = stack.deliveries(slow_id)
        received = len(trickling.received)
        most_at_once = dict(trickling.most_at_once)

    # Then every attempt ended at the timeout, none was twice in flight, all are logged
    attempts = [a for message in log for a in message["attempts"]]
    assert len(attempts) == 6 == received
    assert all(a["error"] == "timeout" for a in attempts)
    assert all(a["duration_ms"] < TIMEOUT * 1000 + 3000 for a in attempts), \
        [a["duration_ms"] for a in attempts]
    assert set(most_at_once.values()) == {1}
