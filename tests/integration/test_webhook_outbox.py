"""The webhook outbox and its dispatcher, on the event store's own database (SQLite or PostgreSQL).

What must hold whatever runs twice or at once: a dispatch batch is written
once (compare-and-set on the position), each lane's ``sequence`` has no gaps,
ids are deterministic, leases keep one run per lane and at most the
endpoint's cap of lanes per subscription, and the delivery log answers the
API's questions.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from bench.workload import open_contracts, random_command
from domain.errors import ValidationFailed
from domain.organisations import Caller, OrganisationSpec, Role
from domain.subscriptions import SubscriptionPatch, SubscriptionSpec
from domain.webhooks import Message
from workflows import directory, subscriptions
from workflows.identities import BOOTSTRAP_ADMIN
from workflows.ledger import Ledger
from workflows.settings import Settings
from workflows.webhooks.delivery import GroupRecorder
from workflows.webhooks.dispatch import Dispatcher
from workflows.webhooks.outbox import Outbox
from workflows.webhooks.outbox.records import Attempt, Entry, Lane, Record, message_id
from workflows.webhooks.vault import vault_for

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Guangzhou


@pytest.fixture
def app(make_settings: Callable[..., Settings]) -> Iterator[Ledger]:
    application = Ledger(make_settings(webhook_allowed_cidrs="127.0.0.0/8"))
    yield application
    application.close()


def message(contract_id: str, version: int) -> Message:
    return Message("directive.issued", {"contract_id": contract_id, "contract_version": version,
                                        "id": f"指令-{version}", "summary": "每周报送"})


def entries(subscription: str, contract: str, positions: range) -> list[Entry]:
    return [Entry(subscription, message(contract, p), p, 0, NOW) for p in positions]


def subscribe(app: Ledger, caller: Caller = BOOTSTRAP_ADMIN,
              contracts: list[str] | None = None) -> str:
    return subscriptions.create_subscription(app, vault_for(app), caller, SubscriptionSpec(
        url="http://127.0.0.1:9/hook", event_types=["*"], contracts=contracts)).id


def test_a_batch_is_written_once_and_sequences_continue_without_gaps(app: Ledger) -> None:
    outbox = Outbox(app)

    # when two batches are written, and the first one is written again from its old position
    first = outbox.dispatch.write_dispatch(entries("订阅", "合同", range(1, 4)), old_position=0,
                                  new_position=3, now=NOW)
    second = outbox.dispatch.write_dispatch(entries("订阅", "合同", range(4, 6)), old_position=3,
                                   new_position=5, now=NOW)
    repeated = outbox.dispatch.write_dispatch(entries("订阅", "合同", range(1, 4)), old_position=0,
                                     new_position=3, now=NOW)

    # then the repeat wrote nothing, the position is the second batch's, sequences are 1..5
    assert first == second == [Lane("订阅", "合同")] and repeated is None
    assert outbox.dispatch.position() == 5
    logged = outbox.log.deliveries("订阅")
    assert [m["sequence"] for m in logged] == [1, 2, 3, 4, 5]
    assert [m["id"] for m in logged] == [message_id("订阅", p, 0) for p in range(1, 6)]
    assert all(m["status"] == "pending" and m["attempts"] == [] for m in logged)


def test_concurrent_writers_from_one_position_write_one_batch(app: Ledger) -> None:
    # given eight threads, each with its own outbox, all writing the same batch
    results: list[list[Lane] | None] = []
    barrier = threading.Barrier(8)

    def write() -> None:
        outbox = Outbox(app)
        barrier.wait()
        results.append(outbox.dispatch.write_dispatch(entries("订阅", "合同", range(1, 11)),
                                             old_position=0, new_position=10, now=NOW))

    threads = [threading.Thread(target=write) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then exactly one wrote, once
    assert sum(result is not None for result in results) == 1
    assert Outbox(app).log.counts() == {"pending": 10, "delivered": 0, "failed": 0}


def test_the_dispatcher_tells_only_who_may_read_and_only_what_happened_after_subscribing(
    app: Ledger,
) -> None:
    # given contracts with history, an outsider organisation, and subscriptions made later
    handles = open_contracts(app, 2, prefix="HZ")
    directory.register_organisation(app, BOOTSTRAP_ADMIN, OrganisationSpec(
        id="outsider", name="局外人 社工机构", kind="other"))
    outsider = Caller(principal_id="outsider-key", org="outsider", role=Role.STAKEHOLDER)
    street = handles[0].callers["street-a"]
    admin = subscribe(app)
    only_first = subscribe(app, street, contracts=[handles[0].id])
    stranger = subscribe(app, outsider)
    before = app.head_position()

    # when commands follow, and two dispatchers run one after the other in small batches
    import random

    rng = random.Random(11)
    for _ in range(30):
        random_command(app, rng.choice(handles), rng)
    outbox = Outbox(app)
    Dispatcher(app, outbox, batch_size=5).run()
    Dispatcher(app, Outbox(app), batch_size=3).run()

    # then the admin heard of both contracts, but only of what happened after it subscribed
    admin_log = outbox.log.deliveries(admin, limit=1000)
    assert {m["contract_id"] for m in admin_log} == {handles[0].id, handles[1].id}
    assert "contract.created" not in {m["type"] for m in admin_log}
    # the street heard of its one contract only, the outsider of nothing
    assert {m["contract_id"] for m in outbox.log.deliveries(only_first, limit=1000)} == \
        {handles[0].id}
    assert outbox.log.deliveries(stranger) == []
    # and per lane the sequences run from 1 without gaps, ids are what the position says
    lanes: dict[tuple[str, str], list[int]] = defaultdict(list)
    for subscription in (admin, only_first):
        for logged in outbox.log.deliveries(subscription, limit=1000):
            lanes[(subscription, logged["contract_id"])].append(logged["sequence"])
    assert all(seq == list(range(1, len(seq) + 1)) for seq in lanes.values())
    assert outbox.dispatch.position() == app.head_position() > before


def test_a_disabled_subscription_keeps_its_messages_as_failed_until_recovered(
    app: Ledger,
) -> None:
    # given a subscription disabled (failing too long) before commands on its contract
    import random

    handle = open_contracts(app, 1, prefix="PY")[0]
    hook = subscribe(app)
    subscriptions.disable_subscription(app, hook, "failing")
    rng = random.Random(5)
    for _ in range(6):
        random_command(app, handle, rng)

    # when the dispatcher runs
    outbox = Outbox(app)
    report = Dispatcher(app, outbox).run()

    # then its messages are written, numbered without gaps, as failed: no delivery is started
    logged = sorted(outbox.log.deliveries(hook, limit=1000), key=lambda m: m["sequence"])
    assert logged and report.lanes == []
    assert {m["status"] for m in logged} == {"failed"}
    assert [m["sequence"] for m in logged] == list(range(1, len(logged) + 1))

    # and once re-enabled, recover sends every one of them again
    subscriptions.update_subscription(app, BOOTSTRAP_ADMIN, hook, SubscriptionPatch(enabled=True))
    assert outbox.log.recover(hook, datetime(2000, 1, 1, tzinfo=UTC), NOW) == len(logged)
    assert {m["status"] for m in outbox.log.deliveries(hook, limit=1000)} == {"pending"}


def test_deliveries_page_filter_and_refuse_bad_input_and_recover_counts_failed_since(
    app: Ledger,
) -> None:
    # given five messages, two of which failed
    outbox = Outbox(app)
    outbox.dispatch.append(entries("订阅", "合同", range(1, 6)), NOW)
    ids = [message_id("订阅", p, 0) for p in range(1, 6)]
    for number, failed_id in enumerate(ids[:2], start=1):
        outbox.attempts.record_attempt(Attempt(failed_id, 1, NOW.timestamp() + number, 500, 12.5,
                                               None, "内部错误", "failed", None, 1,
                                               "server error 500"))

    # then pages follow the cursor and the filter
    page = outbox.log.deliveries("订阅", limit=2)
    assert [m["id"] for m in page] == ids[:2]
    after = page[-1]["id"]
    assert [m["id"] for m in outbox.log.deliveries("订阅", limit=2, after=after)] == ids[2:4]
    assert [m["id"] for m in outbox.log.deliveries("订阅", status="failed")] == ids[:2]
    assert page[0]["attempts"] == [{
        "attempt": 1, "at": (NOW + timedelta(seconds=1)).isoformat(), "status_code": 500,
        "duration_ms": 12.5, "error": None, "response": "内部错误"}]
    # and bad input is refused with the field named
    for bad in ({"status": "lost"}, {"limit": 0}, {"after": "msg_unknown"}):
        with pytest.raises(ValidationFailed) as refused:
            outbox.log.deliveries("订阅", **bad)
        assert refused.value.errors[0][0] in bad
    assert outbox.log.deliveries("another") == []

    # when failed messages created since a time are recovered (a later time: none)
    assert outbox.log.recover("订阅", NOW + timedelta(minutes=1), NOW) == 0
    assert outbox.log.recover("订阅", NOW, NOW) == 2

    # then they are pending again, due now, keeping their attempt logs
    again = outbox.log.deliveries("订阅", limit=2)
    assert [m["status"] for m in again] == ["pending", "pending"]
    assert again[0]["next_attempt_at"] == NOW.isoformat() and len(again[0]["attempts"]) == 1
    assert outbox.leases.due_lanes(NOW) == [Lane("订阅", "合同")]


def test_lanes_of_one_subscription_are_capped_and_a_lapsed_lease_is_taken_over(
    app: Ledger,
) -> None:
    # given one subscription with three lanes, each with a message due
    outbox = Outbox(app)
    first, second, third = (Lane("订阅-1", f"contract-{n}") for n in range(3))
    for position, lane in enumerate((first, second, third), start=1):
        outbox.dispatch.append(entries(lane.subscription_id, lane.contract_id,
                              range(position, position + 1)), NOW)

    # when a run holds the first lane with a cap of two leased lanes
    held = outbox.leases.lease(first, NOW, seconds=30, cap=2)

    # then the same lane is refused, the second is granted, the third is over the cap
    assert held is not None
    assert outbox.leases.lease(first, NOW, seconds=30, cap=2) is None
    assert outbox.leases.lease(second, NOW, seconds=30, cap=2) is not None
    assert outbox.leases.lease(third, NOW, seconds=30, cap=2) is None
    # and the sweeper lists only the unleased lane, and not even that one at the cap
    assert outbox.leases.due_lanes(NOW) == [third]
    assert outbox.leases.due_lanes(NOW, cap=2) == []
    assert outbox.leases.due_lanes(NOW, cap=3) == [third]
    # and once the leases lapse another run takes the lane over; the old holder cannot renew
    later = NOW + timedelta(seconds=31)
    taken = outbox.leases.lease(first, later, seconds=30, cap=2)
    assert taken is not None and outbox.leases.renew(held, later, 30) is None
    # and releasing with a stale token leaves the new holder's lease alone
    outbox.leases.release(held)
    assert outbox.leases.lease(first, later, seconds=30, cap=2) is None
    outbox.leases.release(taken)
    assert outbox.leases.lease(first, later, seconds=30, cap=2) is not None


def test_threads_record_their_attempts_together_and_one_bad_record_fails_only_its_thread(
    app: Ledger,
) -> None:
    # given forty messages on eight lanes, and one attempt that names no message
    outbox = Outbox(app)
    for lane in range(8):
        outbox.dispatch.append(
            entries("订阅", f"合同-{lane}", range(lane * 5 + 1, lane * 5 + 6)), NOW)
    ids = [message_id("订阅", position, 0) for position in range(1, 41)]
    real_first, ids[0] = ids[0], "msg_没有这条消息"
    recorder = GroupRecorder(outbox.attempts)
    calls: list[int] = []
    write = outbox.attempts.record_groups

    def counted(records: Sequence[Record]) -> list[float | None]:
        calls.append(len(records))
        return write(records)

    outbox.attempts.record_groups = counted  # type: ignore[method-assign]
    errors: dict[str, Exception] = {}
    barrier = threading.Barrier(8)

    def deliver(lane: int) -> None:
        barrier.wait()
        for message in ids[lane * 5:lane * 5 + 5]:
            try:
                recorder.record(Record([Attempt(message, 1, NOW.timestamp(), 204, 1.0,
                                                None, "", "delivered", None, 1)]))
            except Exception as error:
                errors[message] = error

    # when eight threads record five delivered attempts each
    threads = [threading.Thread(target=deliver, args=(lane,)) for lane in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then only the attempt of no message failed, every other attempt is recorded
    assert list(errors) == [ids[0]]
    counts = outbox.log.counts("订阅")
    assert counts == {"pending": 1, "delivered": 39, "failed": 0}
    assert [m["status"] for m in outbox.log.deliveries("订阅") if m["id"] == real_first] == [
        "pending"]
    # and the writes were shared: fewer transactions than attempts (the refused group's
    # records were written again one by one)
    assert sum(calls) >= 40 and len([n for n in calls if n > 1]) >= 1


def test_a_run_whose_lease_was_taken_over_stops_sending(app: Ledger) -> None:
    # given a lane with three due messages, leased for 2 s by a run that then stalls
    from workflows.webhooks.delivery import Delivery
    from workflows.webhooks.transport import WebhookClient

    outbox = Outbox(app)
    lane = Lane("订阅", "合同")
    outbox.dispatch.append(entries("订阅", "合同", range(1, 4)), NOW)
    outbox.dispatch.append(entries("订阅", "另一个合同", range(4, 5)), NOW)
    clock = [NOW]
    delivery = Delivery(app, outbox, WebhookClient(), schedule=(0.0,), lease_seconds=2.0,
                        clock=lambda: clock[0])
    stalled = outbox.leases.lease(lane, NOW, seconds=2.0, cap=4)
    assert stalled is not None

    # when its lease lapses and another run takes the lane over
    clock[0] = NOW + timedelta(seconds=3)
    assert outbox.leases.lease(lane, clock[0], seconds=2.0, cap=4) is not None

    # then the stalled run, before its next send, finds the lease gone and sends nothing
    from workflows.webhooks.delivery import _Run

    run = _Run(delivery, stalled, deadline=float("inf"))
    assert not run.holding()
    # while a run that still holds its lease renews it and goes on
    clock[0] = NOW + timedelta(seconds=4.5)
    fresh = outbox.leases.lease(Lane("订阅", "另一个合同"), clock[0], seconds=2.0, cap=4)
    assert fresh is not None
    clock[0] = NOW + timedelta(seconds=5.5)
    going = _Run(delivery, fresh, deadline=float("inf"))
    assert going.holding() and going.lease.until == (clock[0] + timedelta(seconds=2)).timestamp()
