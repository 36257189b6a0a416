"""Webhooks end to end: contract commands → dispatcher → outbox → signed POSTs to real receivers.

Every message a receiver gets is verified with the Standard Webhooks reference
library (``standardwebhooks``): signature, headers, payload shape, and per
contract a ``sequence`` that rises by exactly 1, in order.  The deliveries run
in the test's process through the same ``Delivery`` the worker uses, except
the last test, which drives a real Celery thread-pool worker process.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook

from bench.workload import ContractHandle, open_contracts, random_command
from domain.organisations import Caller
from domain.subscriptions import SubscriptionPatch, SubscriptionSpec
from domain.webhooks import EVENT_TYPES
from workflows import subscriptions
from workflows.bootstrap import bootstrap
from workflows.identities import BOOTSTRAP_ADMIN
from workflows.ledger import Ledger
from workflows.settings import Settings
from workflows.webhooks.delivery import Delivery
from workflows.webhooks.dispatch import Dispatcher
from workflows.webhooks.outbox import Outbox
from workflows.webhooks.ssrf import parse_allowed_cidrs
from workflows.webhooks.transport import WebhookClient
from workflows.webhooks.vault import vault_for

from .processes import descendants, settings_env, stop_tree, wait_gone
from .webhook_receiver import Answer, Received, Receiver


@pytest.fixture
def app(make_settings: Callable[..., Settings]) -> Iterator[Ledger]:
    application = Ledger(make_settings(
        webhook_allowed_cidrs="127.0.0.0/8", webhook_retry_schedule="0,0"))
    yield application
    application.close()


@contextmanager
def receiving(*answers: Answer) -> Iterator[Receiver]:
    with Receiver(list(answers) or [Answer(204)]).running() as receiver:
        yield receiver


def subscribe(app: Ledger, url: str, caller: Caller = BOOTSTRAP_ADMIN,
              types: list[str] | None = None) -> tuple[str, str]:
    """A subscription's id and secret."""
    result = subscriptions.create_subscription(app, vault_for(app), caller, SubscriptionSpec(
        url=url, event_types=types or ["*"], description="海珠区 接收端"))
    assert result.extra is not None
    return result.id, result.extra["secret"]


def delivery(app: Ledger, **fields: Any) -> Delivery:
    """The worker's delivery, in this process, with a fixed jitter."""
    client = WebhookClient(parse_allowed_cidrs("127.0.0.0/8"), timeout=5)
    made = Delivery.from_settings(app, Outbox(app), client)
    made.random = lambda: 0.5
    for name, value in fields.items():
        setattr(made, name, value)
    return made


def deliver_all(sender: Delivery, rounds: int = 20) -> None:
    """Run the sweeper's delivery part until nothing is due (retries at 0 s are due at once)."""
    for _ in range(rounds):
        if not sender.deliver_due():
            return


def verified(received: list[Received], secret: str) -> list[dict[str, Any]]:
    """Each request checked by the reference library; the payloads, in arrival order."""
    payloads = []
    for request in received:
        assert request.method == "POST"
        assert request.headers["content-type"] == "application/json"
        payload = Webhook(secret).verify(request.body, request.headers)
        assert set(payload) == {"type", "timestamp", "data"}
        assert payload["type"] in EVENT_TYPES
        assert {"contract_id", "sequence", "contract_version"} <= set(payload["data"])
        assert request.headers["webhook-id"].startswith("msg_")
        payloads.append(payload)
    return payloads


def assert_in_order_without_gaps(payloads: list[dict[str, Any]]) -> dict[str, list[int]]:
    by_contract: dict[str, list[int]] = defaultdict(list)
    for payload in payloads:
        by_contract[payload["data"]["contract_id"]].append(payload["data"]["sequence"])
    for sequences in by_contract.values():
        assert sequences == list(range(1, len(sequences) + 1))
    return by_contract


def commands(app: Ledger, handles: list[ContractHandle], count: int, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(count):
        random_command(app, rng.choice(handles), rng)


def test_every_event_reaches_each_subscriber_signed_in_order_and_without_gaps(
    app: Ledger,
) -> None:
    # given two receivers: the admin's for every type, a street's for directives only
    with receiving() as everything, receiving() as streets:
        admin_id, admin_secret = subscribe(app, everything.url())
        handles = open_contracts(app, 2, prefix="HZ")
        street = handles[0].callers["street-a"]
        street_id, street_secret = subscribe(app, streets.url("/街道"), street, ["directive.*"])
        commands(app, handles, 25, seed=8)
        outbox = Outbox(app)
        dispatcher = Dispatcher(app, outbox, batch_size=7)

        # when the dispatcher reads the log and the lanes are delivered
        report = dispatcher.run()
        deliver_all(delivery(app))

        # then every message arrived once, verified, in order per contract, without gaps
        assert report.complete and report.written == sum(outbox.log.counts().values())
        admin = verified(everything.received, admin_secret)
        assert_in_order_without_gaps(admin)
        assert {p["type"] for p in admin} >= {"contract.updated", "directive.issued"}
        street_payloads = verified(streets.received, street_secret)
        assert_in_order_without_gaps(street_payloads)
        assert street_payloads and all(p["type"].startswith("directive.")
                                       for p in street_payloads)
        assert all(r.path == "/%E8%A1%97%E9%81%93" for r in streets.received)
        assert outbox.log.counts() == {"pending": 0, "failed": 0,
                                   "delivered": len(admin) + len(street_payloads)}
        # the admin subscribed before the contracts existed: it heard of their creation
        assert [p["type"] for p in admin[:1]] == ["contract.created"]
        # and the webhook-id is the outbox id the delivery log shows (lanes go side by side)
        logged = outbox.log.deliveries(admin_id, limit=1000)
        assert sorted(m["id"] for m in logged) == sorted(r.headers["webhook-id"]
                                                         for r in everything.received)
        assert all(m["status"] == "delivered" and len(m["attempts"]) == 1 for m in logged)
        assert outbox.log.deliveries(street_id, limit=1000)[0]["attempts"][0]["status_code"] == 204

        # when the dispatcher runs again, and a second dispatcher (another process) too
        again = dispatcher.run()
        other = Dispatcher(app, Outbox(app)).run()

        # then nothing is written twice
        assert again.written == other.written == 0
        assert sum(outbox.log.counts().values()) == len(admin) + len(street_payloads)


def test_a_failing_receiver_gets_the_same_message_again_re_signed_and_the_lane_waits(
    app: Ledger,
) -> None:
    # given a receiver that fails twice (500, then a timeout-free 503), then accepts
    with receiving(Answer(500, body="服务器忙".encode()), Answer(503), Answer(204)) as receiver:
        subscription_id, secret = subscribe(app, receiver.url(), types=["contract.*"])
        (handle,) = open_contracts(app, 1, prefix="RETRY")  # contract.created + activated
        Dispatcher(app, Outbox(app)).run()
        sender = delivery(app)

        # when the lane is delivered until nothing is due
        deliver_all(sender)

        # then the first message was tried three times with its id, the second waited for it
        ids = [r.headers["webhook-id"] for r in receiver.received]
        assert ids[:3] == [ids[0]] * 3 and ids[3] != ids[0] and len(ids) == 4
        payloads = verified(receiver.received, secret)
        assert [p["data"]["sequence"] for p in payloads] == [1, 1, 1, 2]
        assert [p["type"] for p in payloads] == ["contract.created"] * 3 + ["contract.updated"]
        # and the log says what happened
        first = Outbox(app).log.deliveries(subscription_id)[0]
        assert [a["status_code"] for a in first["attempts"]] == [500, 503, 204]
        assert first["attempts"][0]["response"] == "服务器忙"
        assert [a["attempt"] for a in first["attempts"]] == [1, 2, 3]
        assert first["status"] == "delivered" and first["contract_id"] == handle.id


def test_a_message_failed_after_the_last_retry_does_not_block_its_lane_and_can_be_redelivered(
    app: Ledger,
) -> None:
    # given a schedule of one retry and a receiver that fails twice, then accepts
    with receiving(Answer(500), Answer(502), Answer(204)) as receiver:
        subscription_id, secret = subscribe(app, receiver.url(), types=["contract.*"])
        open_contracts(app, 1, prefix="GAP")
        outbox = Outbox(app)
        Dispatcher(app, outbox).run()
        sender = delivery(app, schedule=(0.0,))

        # when delivered
        deliver_all(sender)

        # then the first message failed, the second went on (a gap the receiver can see)
        logged = outbox.log.deliveries(subscription_id)
        assert [m["status"] for m in logged] == ["failed", "delivered"]
        assert outbox.log.deliveries(subscription_id, status="failed") == logged[:1]
        assert [p["data"]["sequence"] for p in verified(receiver.received, secret)] == [1, 1, 2]

        # when the failed one is redelivered
        assert outbox.log.redeliver(subscription_id, logged[0]["id"], datetime.now(UTC))
        assert not outbox.log.redeliver(subscription_id, "msg_unknown", datetime.now(UTC))
        deliver_all(sender)

        # then it arrives with its original webhook-id, and the log kept every attempt
        assert receiver.received[-1].headers["webhook-id"] == logged[0]["id"]
        verified(receiver.received, secret)
        again = outbox.log.deliveries(subscription_id)[0]
        assert again["status"] == "delivered"
        assert [a["status_code"] for a in again["attempts"]] == [500, 502, 204]


def test_gone_disables_the_endpoint_and_recover_sends_its_messages_once_re_enabled(
    app: Ledger,
) -> None:
    # given a receiver that answers 410 Gone once, then accepts
    with receiving(Answer(410), Answer(204)) as receiver:
        subscription_id, secret = subscribe(app, receiver.url(), types=["contract.*"])
        began = datetime.now(UTC) - timedelta(seconds=1)
        open_contracts(app, 1, prefix="GONE")
        outbox = Outbox(app)
        Dispatcher(app, outbox).run()

        # when delivered
        deliver_all(delivery(app))

        # then the endpoint is disabled as gone, and both messages failed; one request only
        assert len(receiver.received) == 1
        assert subscriptions.load_subscription(app, subscription_id).disabled_reason == "gone"
        assert [m["status"] for m in outbox.log.deliveries(subscription_id)] == ["failed", "failed"]

        # when the owner re-enables it and recovers what failed since before
        subscriptions.update_subscription(app, BOOTSTRAP_ADMIN, subscription_id,
                                SubscriptionPatch(enabled=True))
        assert outbox.log.recover(subscription_id, began, datetime.now(UTC)) == 2
        deliver_all(delivery(app))

        # then both arrive, in order, with their original ids
        payloads = verified(receiver.received, secret)
        assert [p["data"]["sequence"] for p in payloads] == [1, 1, 2]
        assert [m["status"] for m in outbox.log.deliveries(subscription_id)] == ["delivered"] * 2


def test_an_endpoint_failing_too_long_is_disabled_and_during_a_rotation_both_secrets_sign(
    app: Ledger,
) -> None:
    # given a receiver that always fails, and a secret rotated after subscribing
    with receiving(Answer(500)) as receiver:
        subscription_id, old_secret = subscribe(app, receiver.url(), types=["contract.created"])
        rotated = subscriptions.rotate_secret(app, vault_for(app), BOOTSTRAP_ADMIN, subscription_id)
        assert rotated.extra is not None
        new_secret = rotated.extra["secret"]
        open_contracts(app, 1, prefix="FAIL")
        outbox = Outbox(app)
        Dispatcher(app, outbox).run()
        sender = delivery(app, schedule=(0.0, 0.0, 0.0, 0.0),
                          disable_after=timedelta(milliseconds=1))

        # when attempts keep failing past the disable period
        deliver_all(sender)

        # then the endpoint is disabled as failing and its message failed
        assert subscriptions.load_subscription(app, subscription_id).disabled_reason == "failing"
        assert len(receiver.received) == 1  # its failure run lasted longer than 1 ms
        assert outbox.log.counts(subscription_id)["failed"] == 1
        # and each attempt verifies with the old and the new secret alike
        verified(receiver.received, old_secret)
        verified(receiver.received, new_secret)
        assert receiver.received[0].headers["webhook-signature"].count("v1,") == 2


# --- a real worker process ---------------------------------------------------------


def start_webhook_worker(settings: Settings, log: Path) -> Any:
    import subprocess
    import sys

    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers.main", "worker",
             "--queues", f"{settings.celery_queue}.webhooks", "-P", "threads",
             "--concurrency", "8", "--loglevel", "INFO",
             "--hostname", f"{uuid.uuid4().hex[:8]}@%h", "--without-mingle",
             "--without-gossip"],
            env=settings_env(settings, NEEDLE_CELERY_QUEUE=settings.celery_queue,
                             NEEDLE_WEBHOOK_ALLOWED_CIDRS=settings.webhook_allowed_cidrs,
                             NEEDLE_WEBHOOK_RETRY_SCHEDULE=settings.webhook_retry_schedule),
            stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


@pytest.mark.stack
def test_a_thread_pool_worker_process_delivers_what_commits_wake_and_the_sweep_finds(
    make_settings: Callable[..., Settings], tmp_path: Path,
) -> None:
    # given a webhooks worker process on a queue of its own and two receivers
    settings = make_settings(webhook_allowed_cidrs="127.0.0.0/8", webhook_retry_schedule="0,0",
                             celery_queue=f"test-{uuid.uuid4().hex[:12]}")
    services = bootstrap(settings)
    app = services.ledger
    log = tmp_path / "worker.log"
    worker = start_webhook_worker(settings, log)
    try:
        with receiving() as first, receiving(Answer(503), Answer(204)) as second:
            first_id, first_secret = subscribe(app, first.url())
            _, second_secret = subscribe(app, second.url(), types=["directive.*"])
            handles = open_contracts(app, 3, prefix="WK")

            # when commands are made, each waking the dispatcher as the API's do
            from workflows.projection_control import wake_webhooks

            rng = random.Random(5)
            for _ in range(20):
                random_command(app, rng.choice(handles), rng)
                wake_webhooks(services)
            expected = _expected_counts(app, first_id)

            # and the sweeper runs once, as beat would send it
            services.celery.send_task("threadneedle.webhooks.sweep",
                                      queue=f"{settings.celery_queue}.webhooks")
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and (
                    len(first.received) < expected or Outbox(app).log.counts()["pending"]):
                time.sleep(0.2)
                if int(time.monotonic()) % 3 == 0:  # beat's part: the sweep picks up retries
                    services.celery.send_task("threadneedle.webhooks.sweep",
                                              queue=f"{settings.celery_queue}.webhooks")

            # then every message arrived, verified, in order, without gaps
            assert len(first.received) == expected
            assert_in_order_without_gaps(verified(first.received, first_secret))
            second_payloads = verified(second.received, second_secret)
            unique = list(dict.fromkeys(r.headers["webhook-id"] for r in second.received))
            assert len(second.received) == len(unique) + 1  # the 503 was tried again
            assert_in_order_without_gaps(
                [json.loads(r.body) for r in _first_copies(second.received)])
            assert second_payloads and Outbox(app).log.counts()["pending"] == 0
            # and the worker's threads ran them: the tasks are in its log
            assert "threadneedle.webhooks.deliver" in log.read_text(errors="replace")
    except BaseException:
        print(log.read_text(errors="replace")[-5000:])
        raise
    finally:
        tree = descendants(worker.pid) | {worker.pid}
        stop_tree(worker)
        services.close()
    assert wait_gone(tree) == set()


def _expected_counts(app: Ledger, subscription_id: str) -> int:
    """How many messages the admin's subscription will get, once dispatched."""
    deadline = time.monotonic() + 30
    outbox = Outbox(app)
    while time.monotonic() < deadline:
        if outbox.dispatch.position() >= app.head_position():
            return len(outbox.log.deliveries(subscription_id, limit=1000))
        time.sleep(0.1)
    raise AssertionError("the worker never dispatched up to the head")


def _first_copies(received: list[Received]) -> list[Received]:
    seen: set[str] = set()
    first = []
    for request in received:
        if request.headers["webhook-id"] not in seen:
            seen.add(request.headers["webhook-id"])
            first.append(request)
    return first
