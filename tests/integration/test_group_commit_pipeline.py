"""The pipelined group commit: a batch runs while the one before it is written
(``workflows/group_commit.py``), and a write that fails takes the batch behind it along.

Each test holds the first write on the writer thread, so the next batch is certain to
run behind it; then it checks what a client relies on, as ``test_group_commit`` does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import IntegrityError

from domain.organisations import OrganisationSpec
from integration.test_group_commit import (
    STREET,
    assert_recorded_as_answered,
    committer,
    fields,
    open_contracts,
)
from workflows import directives, directory
from workflows.anchoring import replays_to
from workflows.contracts import contract_attempt
from workflows.group_commit import GroupCommitter
from workflows.identities import BOOTSTRAP_ADMIN
from workflows.ledger import CommandResult, Ledger
from workflows.settings import Settings


@pytest.fixture
def app(settings: Settings) -> Iterator[Ledger]:
    application = Ledger(settings.model_copy(update={"group_commit": True,
                                                     "snapshot_interval": 4}))
    for org, name, kind in (("haizhu-street", "海珠区江南中街街道办事处", "street_office"),
                            ("qizhi", "启智社会工作服务中心", "provider")):
        directory.register_organisation(application, BOOTSTRAP_ADMIN,
                                        OrganisationSpec.model_validate(
                                            {"id": org, "name": name, "kind": kind}))
    yield application
    application.close()


class HeldWrites:
    """The ledger's first write held on the writer thread until the block ends; meanwhile
    what the committer prepares after the first batch is counted, and the first write
    may fail.  With
    ``hold_first_batch``, the first batch also waits before it is prepared until
    ``go`` is set (so the commands sent meanwhile queue behind it)."""

    def __init__(self, app: Ledger, *, first_fails: bool = False,
                 hold_first_batch: bool = False) -> None:
        self.app = app
        self.first_fails = first_fails
        self.writing = threading.Event()
        self.released = threading.Event()
        self.go = threading.Event()
        self.preparing = threading.Event()
        if not hold_first_batch:
            self.go.set()
        self.prepared_while_held = 0
        self._write, self._prepare = app.write, app.prepare_save
        self._first = True
        self._prepared_one = False

    def __enter__(self) -> HeldWrites:
        def write(prepared: Any) -> Any:
            if self._first:
                self._first = False
                self.writing.set()
                self.released.wait(10)
                if self.first_fails:
                    raise IntegrityError("another writer got there first")
            return self._write(prepared)

        def prepare(*aggregates: Any) -> Any:
            self.preparing.set()
            self.go.wait(10)
            if self._prepared_one and not self.released.is_set():  # the first not written
                self.prepared_while_held += 1
            self._prepared_one = True
            return self._prepare(*aggregates)

        self.app.write = write  # type: ignore[method-assign]
        self.app.prepare_save = prepare  # type: ignore[method-assign]
        return self

    def __exit__(self, *_: object) -> None:
        self.go.set()
        self.released.set()
        self.app.write = self._write  # type: ignore[method-assign]
        self.app.prepare_save = self._prepare  # type: ignore[method-assign]


def issue(app: Ledger, contract_id: str, n: int) -> Future[CommandResult]:
    """A directive queued for the committer (as ``submit_directive`` queues it)."""
    act = directives.issuing(app, STREET, fields(n), None)
    return committer(app).submit(STREET, None, contract_attempt(app, STREET, contract_id, act))


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = threading.Event()
    for _ in range(1000):
        if condition():
            return
        deadline.wait(0.01)
    raise AssertionError("timed out")


def test_the_next_batch_runs_while_one_is_written(app: Ledger) -> None:
    # Given two contracts, and the first write held on the writer thread
    first, second = open_contracts(app, 2)
    with HeldWrites(app, hold_first_batch=True) as held:
        one = issue(app, first, 1)
        held.preparing.wait(10)
        # When more directives arrive while it is about to be written
        more = [issue(app, contract_id, n) for n, contract_id in
                enumerate([second, first, second], start=2)]
        wait_for(lambda: len(committer(app)._pending) == 3)
        held.go.set()
        held.writing.wait(10)
        # Then their batch is run and prepared meanwhile, and nothing is answered yet
        wait_for(lambda: held.prepared_while_held >= 1)
        assert not one.done() and not any(f.done() for f in more)
    # And once written, each is answered with what was recorded, in order per contract
    results = [f.result(timeout=10) for f in [one, *more]]
    assert_recorded_as_answered(app, first, [results[0], results[2]])
    assert_recorded_as_answered(app, second, [results[1], results[3]])
    assert results[2].version == results[0].version + 1
    assert results[2].position > results[0].position


def test_a_write_that_fails_redoes_the_batch_run_behind_it(app: Ledger) -> None:
    # Given a contract, and a first write that will meet a version conflict
    (contract_id,) = open_contracts(app, 1)
    group: GroupCommitter = committer(app)
    with HeldWrites(app, first_fails=True, hold_first_batch=True) as held:
        one = issue(app, contract_id, 1)
        held.preparing.wait(10)
        # When more directives on that contract run behind it, crossing a snapshot interval
        more = [issue(app, contract_id, n) for n in range(2, 8)]
        wait_for(lambda: len(group._pending) == 6)
        held.go.set()
        wait_for(lambda: held.prepared_while_held >= 1)
    # Then nothing of either batch was kept: both were redone, each command recorded once
    results = [f.result(timeout=10) for f in [one, *more]]
    assert group.retries >= 1
    assert sorted(r.version for r in results) == list(range(3, 10))
    assert_recorded_as_answered(app, contract_id, results)
    # And the cache holds what the store holds, and every snapshot is of a recorded state
    contract = UUID(contract_id)
    assert app.events_of(contract)[-1].originator_version == 9
    assert app.repository.get(contract).version == 9
    assert app.snapshots is not None
    snapshots = list(app.snapshots.get(contract))
    assert snapshots and all(replays_to(app, s) for s in snapshots)


def test_a_reader_does_not_wait_for_a_contract_being_written(app: Ledger) -> None:
    # Given a contract whose directive is being written (the batch keeps it borrowed)
    (contract_id,) = open_contracts(app, 1)
    stored_version: int = app.repository.get(UUID(contract_id)).version
    with HeldWrites(app) as held:
        one = issue(app, contract_id, 1)
        held.writing.wait(10)
        # When another thread reads the contract meanwhile
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=1) as pool:
            read: Any = pool.submit(app.repository.get, UUID(contract_id)).result(timeout=5)
        # Then it is answered at once, with what is stored
        assert time.monotonic() - started < 2
        assert read.version == stored_version and not one.done()
    assert one.result(timeout=10).version == stored_version + 1
