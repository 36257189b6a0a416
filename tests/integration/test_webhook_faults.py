"""Webhook delivery under faults, with real Celery worker processes and real HTTP receivers.

Each test runs a worker process (a thread pool consuming the main queue and
``<queue>.webhooks``), sends ``threadneedle.webhooks.sweep`` every 0.2 s as
beat would, records contract events through the application, and lets the
dispatcher and the deliveries do the rest.  The retry schedule is compressed
to 0.2 s, 0.5 s, 1 s.  Every test ends with the same checks on what each
receiver got (``assert_received``): every outbox message arrived at least
once, each verified by the Standard Webhooks reference library, in order per
contract with ``sequence`` rising by exactly 1, the same ``webhook-id`` and
body on every repeat; and the delivery log (``Outbox.deliveries``) says what
happened to each message.

Long because the fault drills share one receiver and one killable worker set-up.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from conftest import ADMIN_KEY, fresh_store, redis_url_for_tests
from standardwebhooks import Webhook

from bench.workload import ContractHandle, open_contracts, random_command
from domain.directives import DirectiveFields
from domain.subscriptions import SubscriptionPatch, SubscriptionSpec
from workflows import directives, subscriptions
from workflows.bootstrap import Services, bootstrap
from workflows.identities import BOOTSTRAP_ADMIN
from workflows.messaging import WEBHOOK_SWEEP as SWEEP_TASK
from workflows.messaging import webhooks_queue
from workflows.settings import Settings
from workflows.webhooks.outbox import Outbox
from workflows.webhooks.outbox.records import DELIVERED, FAILED

from .processes import descendants, settings_env, stop_tree, wait_gone
from .webhook_receiver import Answer, Receiver

pytestmark = pytest.mark.stack

FAULTS_REDIS_URL = redis_url_for_tests(11)
SCHEDULE = "0.2,0.5,1"
LEASE_SECONDS = 40.0
"""Longer than twice the 15 s timeout: a lane's lease never lapses under a waiting attempt
(the delivery renews it once half has passed)."""
KILL_LEASE_SECONDS = 5.0
"""The kill test's own stack: the killed worker's lanes are taken over within seconds.
(Not shorter: a run that stalls past its lease on a loaded machine is joined by a second
run on its lane, and the first goes on sending from the batch it read without checking
that it still holds the lease, which breaks the order per contract.)"""


# --- the stack ------------------------------------------------------------------------


@dataclass
class Stack:
    settings: Settings
    services: Services
    outbox: Outbox
    log: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    subscriptions: list[str] = field(default_factory=list)

    def subscribe(self, receiver: Receiver, contracts: list[str] | None = None) -> tuple[str, str]:
        """An admin subscription of ``receiver`` to every type: (its id, its secret)."""
        result = subscriptions.create_subscription(self.services.ledger, self.services.vault,
                                                   BOOTSTRAP_ADMIN, SubscriptionSpec(
            url=receiver.url(), event_types=["*"], contracts=contracts,
            description="海珠区青年地带 webhook 测试"))
        assert result.extra is not None
        self.subscriptions.append(result.id)
        return result.id, str(result.extra["secret"])

    def deliveries(self, subscription_id: str) -> list[dict[str, Any]]:
        return self.outbox.log.deliveries(subscription_id, limit=1000)

    def counts(self, subscription_id: str) -> dict[str, int]:
        return self.outbox.log.counts(subscription_id)

    def start_worker(self) -> subprocess.Popen[bytes]:
        """``celery worker --pool threads`` on the main queue and the webhooks queue."""
        env = settings_env(
            self.settings, NEEDLE_CELERY_QUEUE=self.settings.celery_queue,
            NEEDLE_WEBHOOK_ALLOWED_CIDRS=self.settings.webhook_allowed_cidrs,
            NEEDLE_WEBHOOK_RETRY_SCHEDULE=self.settings.webhook_retry_schedule,
            NEEDLE_WEBHOOK_LEASE_SECONDS=str(self.settings.webhook_lease_seconds),
            NEEDLE_WEBHOOK_TIMEOUT_SECONDS=str(self.settings.webhook_timeout_seconds),
            NEEDLE_WEBHOOK_SWEEP_SECONDS=str(self.settings.webhook_sweep_seconds),
        )
        with self.log.open("ab") as output:
            return subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "workers.main", "worker",
                 "--pool", "threads", "--concurrency", "6", "--loglevel", "INFO",
                 "-Q", f"{self.settings.celery_queue},{webhooks_queue(self.settings)}",
                 "--hostname", f"{uuid.uuid4().hex[:8]}@%h", "--without-mingle",
                 "--without-gossip"],
                env=env, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )


@contextmanager
def running_stack(settings: Settings, log: Path) -> Iterator[Stack]:
    """The application, a worker process and a beat-like sweeper; all stopped at the end."""
    services = bootstrap(settings)
    stack = Stack(settings, services, Outbox(services.ledger), log)
    worker = stack.start_worker()
    workers = [worker]
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            with suppress(redis.RedisError, OSError):  # beat would try again too
                services.celery.send_task(SWEEP_TASK)  # routed to <queue>.webhooks
            stop.wait(settings.webhook_sweep_seconds)

    sweeper = threading.Thread(target=beat, daemon=True)
    stack.workers = workers
    try:
        # the worker is up and reads the store before the test's clock starts
        services.celery.send_task("threadneedle.ping").get(timeout=60)
        sweeper.start()
        yield stack
    except BaseException:
        print(log.read_text(errors="replace")[-6000:])
        raise
    finally:
        stop.set()
        if sweeper.is_alive():
            sweeper.join()
        trees: set[int] = set()
        for process in workers:
            trees |= descendants(process.pid) | {process.pid}
            stop_tree(process)
        assert wait_gone(trees) == set()
        services.close()


def fault_settings(folder: Path, **fields: Any) -> Settings:
    """Settings on a fresh store, a queue of their own and the compressed schedule."""
    return Settings(**{
        "var_dir": folder / "var", "admin_key": ADMIN_KEY, **fresh_store(folder),
        "redis_url": FAULTS_REDIS_URL, "celery_queue": f"hooks-{uuid.uuid4().hex[:10]}",
        "webhook_allowed_cidrs": "127.0.0.0/8", "webhook_retry_schedule": SCHEDULE,
        "webhook_lease_seconds": LEASE_SECONDS, "webhook_sweep_seconds": 0.2, **fields,
    })


@pytest.fixture(scope="module")
def shared_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One store and worker for the tests that kill nothing (a worker takes seconds to start)."""
    folder = tmp_path_factory.mktemp("webhook-faults")
    with running_stack(fault_settings(folder), folder / "worker.log") as running:
        yield running


@pytest.fixture
def stack(shared_stack: Stack) -> Iterator[Stack]:
    """The shared stack; the test's subscriptions are deleted after it, so that later tests'
    events are not sent to its stopped receivers."""
    yield shared_stack
    for subscription_id in shared_stack.subscriptions:
        services = shared_stack.services
        subscriptions.delete_subscription(services.ledger, services.vault, BOOTSTRAP_ADMIN,
                                          subscription_id)
    shared_stack.subscriptions.clear()


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[Stack]:
    """A stack of its own with short leases: the kill test's new worker takes over the
    killed worker's lanes within the test."""
    with running_stack(fault_settings(tmp_path, webhook_lease_seconds=KILL_LEASE_SECONDS),
                       tmp_path / "worker.log") as running:
        yield running


def wait_until(condition: Callable[[], bool], timeout: float, what: str,
               state: Callable[[], object] = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what} {state()}")
        time.sleep(0.05)


def all_delivered(stack: Stack, subscription_id: str, at_least: int = 1) -> Callable[[], bool]:
    def done() -> bool:
        if stack.outbox.dispatch.position() < stack.services.ledger.head_position():
            return False  # the dispatcher has events left to read
        counts = stack.counts(subscription_id)
        return counts[DELIVERED] >= at_least and counts["pending"] == counts[FAILED] == 0
    return done


# --- the events -----------------------------------------------------------------------


HAIZHU_DIRECTIVE = DirectiveFields.model_validate({
    "subject": "reporting.weekly", "value": {"format": "street-template-v2"},
    "summary": "海幢街：每周按街道模板报送工作数据", "basis": "purchaser_request",
    "hours_per_week": 0, "people_affected": 0})


def contracts(stack: Stack, count: int) -> list[ContractHandle]:
    return open_contracts(stack.services.ledger, count, prefix=f"HZ-{uuid.uuid4().hex[:4]}")


def record_events(stack: Stack, handles: list[ContractHandle], count: int, seed: int) -> None:
    """``count`` commands (issue, amend, withdraw) spread over the contracts."""
    rng = random.Random(seed)
    app = stack.services.ledger
    first = handles[0]
    directives.issue_directive(app, first.callers["street-a"], first.id, HAIZHU_DIRECTIVE)
    for _ in range(count - 1):
        random_command(app, rng.choice(handles), rng)


# --- what the receivers got -----------------------------------------------------------


@dataclass(frozen=True)
class Got:
    msg_id: str
    contract_id: str
    sequence: int
    body: bytes


def assert_received(receiver: Receiver, secret: str, stack: Stack, subscription_id: str,
                    *, only_delivered: bool = True) -> dict[str, list[Got]]:
    """Every message verified, in order per contract, no gaps, same id and body on repeats;
    every message the outbox holds arrived at least once.  Answers the arrivals per id."""
    verifier = Webhook(secret)
    arrivals: list[Got] = []
    for request in list(receiver.received):
        payload = verifier.verify(request.body, request.headers)  # raises when it does not
        assert set(payload) == {"type", "timestamp", "data"}
        data = payload["data"]
        arrivals.append(Got(request.headers["webhook-id"], data["contract_id"],
                            data["sequence"], request.body))
    by_id: dict[str, list[Got]] = {}
    for got in arrivals:
        by_id.setdefault(got.msg_id, []).append(got)
    for repeats in by_id.values():  # a repeat is the very same message
        assert {(g.contract_id, g.sequence, g.body) for g in repeats} == {
            (repeats[0].contract_id, repeats[0].sequence, repeats[0].body)}
    per_contract: dict[str, list[int]] = {}
    for got in arrivals:
        per_contract.setdefault(got.contract_id, []).append(got.sequence)
    log = stack.deliveries(subscription_id)
    for contract_id, sequences in per_contract.items():
        # in order: never an earlier message after a later one; no gaps from 1
        assert sequences == sorted(sequences), (contract_id, sequences, [
            (row["sequence"], [(a["at"], a["status_code"], a["error"]) for a in row["attempts"]])
            for row in log if row["contract_id"] == contract_id], stack.log.read_text()[-3000:])
        assert sorted(set(sequences)) == list(range(1, max(sequences) + 1)), sequences
    wanted = [row for row in log if row["status"] == DELIVERED or not only_delivered]
    assert {row["id"] for row in wanted} <= set(by_id), "a message never arrived"
    for row in log:
        if row["id"] in by_id:
            assert (row["contract_id"], row["sequence"]) == (
                by_id[row["id"]][0].contract_id, by_id[row["id"]][0].sequence)
    return by_id


def ids_in_order(receiver: Receiver) -> list[str]:
    return [request.headers["webhook-id"] for request in receiver.received]


# --- the faults -----------------------------------------------------------------------


def test_a_receiver_failing_twice_then_succeeding_gets_everything_while_another_never_answers(
    stack: Stack,
) -> None:
    # given a receiver that fails twice, and one whose first answer never comes
    flaky = Receiver([Answer(500, body="服务器忙".encode()), Answer(502), Answer(204)])
    silent = Receiver([Answer(204, delay=20.0), Answer(204)])
    with flaky.running(), silent.running():
        # (one contract each: a receiver's answers are scripted in the order requests come)
        handles = contracts(stack, 1)
        flaky_id, flaky_secret = stack.subscribe(flaky)
        silent_id, silent_secret = stack.subscribe(silent)

        # when events are recorded
        record_events(stack, handles, 8, seed=1)
        began = time.monotonic()

        # then the flaky receiver gets every message, long before the silent one times out
        wait_until(all_delivered(stack, flaky_id, 8), 12, "the flaky receiver's messages")
        assert time.monotonic() - began < 12  # the silent endpoint waits 15 s
        by_id = assert_received(flaky, flaky_secret, stack, flaky_id)

        # and the log shows the first message tried three times on the schedule
        log = stack.deliveries(flaky_id)
        first = log[0]
        assert [a["status_code"] for a in first["attempts"]] == [500, 502, 204]
        assert first["attempts"][0]["response"] == "服务器忙"
        times = [datetime.fromisoformat(a["at"]) for a in first["attempts"]]
        assert times[1] - times[0] >= timedelta(seconds=0.2 * 0.8)
        assert times[2] - times[1] >= timedelta(seconds=0.5 * 0.8)
        assert len(by_id[first["id"]]) == 3  # the same webhook-id each time
        assert all(len(row["attempts"]) == 1 for row in log[1:])
        assert all(row["status"] == DELIVERED for row in log)

        # and the silent receiver's first message is still in flight, the rest wait behind it
        assert stack.counts(silent_id)[DELIVERED] == 0
        assert len(silent.received) == 1

        # when its 15 s timeout passes, the attempt is logged as a timeout and retried
        wait_until(all_delivered(stack, silent_id), 25, "the silent receiver's messages")
        silent_log = stack.deliveries(silent_id)
        timed_out = silent_log[0]["attempts"]
        assert [(a["status_code"], a["error"]) for a in timed_out] == [
            (None, "timeout"), (204, None)]
        assert 14_500 <= timed_out[0]["duration_ms"] < 17_000
        by_id = assert_received(silent, silent_secret, stack, silent_id)
        assert len(by_id[silent_log[0]["id"]]) == 2


def test_a_receiver_answering_410_disables_its_endpoint_and_recover_sends_the_rest(
    stack: Stack,
) -> None:
    # given a receiver that takes one message, then answers 410 Gone (then 204 once fixed)
    gone = Receiver([Answer(204), Answer(410, body=b"gone"), Answer(204)])
    with gone.running():
        handles = contracts(stack, 1)
        subscription_id, secret = stack.subscribe(gone)

        # when five events are recorded
        record_events(stack, handles, 5, seed=2)
        app = stack.services.ledger
        wait_until(lambda: stack.outbox.dispatch.position() >= app.head_position()
                   and stack.counts(subscription_id)["pending"] == 0
                   and not subscriptions.read_subscription(app, BOOTSTRAP_ADMIN,
                                                           subscription_id).enabled,
                   20, "the 410")

        # then the endpoint is disabled as gone, and nothing more was sent to it
        subscription = subscriptions.read_subscription(app, BOOTSTRAP_ADMIN, subscription_id)
        assert (subscription.status, subscription.disabled_reason) == ("disabled", "gone")
        time.sleep(0.6)  # three sweeps: still nothing more
        assert len(gone.received) == 2
        log = stack.deliveries(subscription_id)
        assert [row["status"] for row in log[:2]] == [DELIVERED, FAILED]
        assert [a["status_code"] for a in log[1]["attempts"]] == [410]
        assert all(row["status"] == FAILED and row["attempts"] == [] for row in log[2:])
        assert_received(gone, secret, stack, subscription_id)

        # when its owner re-enables it and recovers the failed messages
        subscriptions.update_subscription(app, BOOTSTRAP_ADMIN, subscription_id,
                                          SubscriptionPatch(enabled=True))
        recovered = stack.outbox.log.recover(subscription_id,
                                             datetime.now(UTC) - timedelta(hours=1),
                                             datetime.now(UTC))
        assert recovered == len(log) - 1

        # then every message arrives, the 410'd one again with its own webhook-id, in order
        wait_until(all_delivered(stack, subscription_id, len(log)), 20, "the recovery")
        by_id = assert_received(gone, secret, stack, subscription_id)
        assert len(by_id[log[1]["id"]]) == 2
        assert ids_in_order(gone) == [row["id"] for row in [log[0], log[1], *log[1:]]]


def test_a_429_with_retry_after_is_waited_out_before_the_next_attempt(stack: Stack) -> None:
    # given a receiver that throttles its first request for 2 s (the schedule says 0.2 s)
    throttling = Receiver([Answer(429, {"Retry-After": "2"}, "请稍后再试".encode()), Answer(204)])
    with throttling.running():
        handles = contracts(stack, 1)
        subscription_id, secret = stack.subscribe(throttling)

        # when three events are recorded
        record_events(stack, handles, 3, seed=3)

        # then all arrive, the first twice, and nothing else came in between
        wait_until(all_delivered(stack, subscription_id, 3), 20, "the throttled messages",
                   lambda: stack.deliveries(subscription_id))
        log = stack.deliveries(subscription_id)
        attempts = log[0]["attempts"]
        assert [(a["status_code"], a["response"]) for a in attempts] == [
            (429, "请稍后再试"), (204, "")]
        waited = datetime.fromisoformat(attempts[1]["at"]) - datetime.fromisoformat(
            attempts[0]["at"])
        assert waited >= timedelta(seconds=2)
        assert ids_in_order(throttling) == [log[0]["id"], *(row["id"] for row in log)]
        assert_received(throttling, secret, stack, subscription_id)


def test_a_worker_killed_mid_delivery_leaves_nothing_undelivered(own_stack: Stack) -> None:
    stack = own_stack
    # given a receiver that takes 0.3 s to answer each message, on two contracts
    slow = Receiver([Answer(204, delay=0.3)])
    with slow.running():
        handles = contracts(stack, 2)
        subscription_id, secret = stack.subscribe(slow)
        record_events(stack, handles, 16, seed=4)

        # when the worker is killed with SIGKILL while a request waits for its answer
        wait_until(lambda: len(slow.received) >= 5, 15, "the first deliveries")
        [worker] = stack.workers
        kill_tree(worker)
        in_flight = {request.headers["webhook-id"] for request in slow.received} - {
            row["id"] for row in stack.deliveries(subscription_id) if row["status"] == DELIVERED}
        assert in_flight, "the kill landed between deliveries"

        # and a new worker starts (the dead one's leases lapse within 5 s)
        stack.workers.append(stack.start_worker())

        # then every message arrives, those in flight again with their own webhook-id
        wait_until(all_delivered(stack, subscription_id, 16), 30, "delivery after the kill")
        by_id = assert_received(slow, secret, stack, subscription_id)
        for msg_id in in_flight:
            assert len(by_id[msg_id]) >= 2
        log = {row["id"]: row for row in stack.deliveries(subscription_id)}
        for msg_id in in_flight:  # the killed attempt was never logged: one attempt, delivered
            assert [a["status_code"] for a in log[msg_id]["attempts"]] == [204]


def test_redis_emptied_mid_stream_loses_no_message(stack: Stack) -> None:
    # given a receiver, and events recorded while deliveries are under way
    steady = Receiver([Answer(204, delay=0.05)])
    broker = redis.Redis.from_url(FAULTS_REDIS_URL)
    with steady.running():
        handles = contracts(stack, 3)
        subscription_id, secret = stack.subscribe(steady)
        record_events(stack, handles, 15, seed=5)
        wait_until(lambda: len(steady.received) >= 3, 10, "the first deliveries")

        # when Redis is emptied (queued tasks, unacknowledged ones, markers: all gone)
        broker.flushdb()
        record_events(stack, handles, 15, seed=6)
        broker.flushdb()

        # then the sweeper finds what is due in the outbox and every message arrives
        wait_until(all_delivered(stack, subscription_id, 30), 20, "delivery after FLUSHDB")
        by_id = assert_received(steady, secret, stack, subscription_id)
        log = stack.deliveries(subscription_id)
        assert len(by_id) == len(log) >= 30
        assert all(row["status"] == DELIVERED for row in log)
    broker.close()


def kill_tree(process: subprocess.Popen[bytes]) -> None:
    """``kill -9`` the worker and anything it started, at once."""
    for pid in descendants(process.pid) | {process.pid}:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait()

