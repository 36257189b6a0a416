"""Group commit: concurrent commands share a transaction and keep every guarantee.

Each test holds the first transaction back until the other commands have
queued, so they are certain to meet in one batch; then it checks what a client
relies on: its own version and position, contiguous versions per contract, an
intact hash chain, idempotent repeats answered once, refusals that record
nothing, and a batch that meets another process's write run again as a whole
(one by one when it keeps meeting them).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest
from conftest import USES_POSTGRES
from eventsourcing.persistence import IntegrityError

from domain.directives import DirectiveFields
from domain.errors import ContractNotActive
from domain.organisations import Caller, OrganisationSpec, Role
from domain.terms import ContractTerms
from workflows import contracts, directives, directory, history
from workflows.group_commit import BATCH_ATTEMPTS, GroupCommitter
from workflows.idempotency import IdempotentRequest
from workflows.identities import BOOTSTRAP_ADMIN
from workflows.ledger import CommandResult, Ledger
from workflows.settings import Settings
from workflows.store import position_of

STREET = Caller(principal_id="0b5c0a9e-4a8e-4d65-9f7e-5a0f1c2d3e4f", org="haizhu-street",
                role=Role.STAKEHOLDER)


def terms(code: str) -> ContractTerms:
    return ContractTerms.model_validate({
        "code": code, "title": "海珠区青少年服务", "purchaser": "haizhu-street",
        "provider": "qizhi", "budget": {"amount": "2000000.00", "currency": "CNY"},
        "period": {"start": "2008-06-01", "end": "2009-05-31"},
        "capacity": {"staff": 14, "hours_per_staff_week": 40, "committed_hours_per_week": 400},
        "stakeholders": [{"org": "haizhu-street"}],
    })


def fields(n: int) -> DirectiveFields:
    return DirectiveFields.model_validate({
        "subject": f"youth_zone.item_{n % 7}", "value": n, "summary": f"第{n}条指令",
        "basis": "purchaser_request", "hours_per_week": 1, "people_affected": 20,
        "vulnerability": 0.3,
    })


@pytest.fixture
def app(settings: Settings) -> Iterator[Ledger]:
    application = Ledger(settings.model_copy(update={"group_commit": True}))  # whatever the env
    for org, name, kind in (("haizhu-street", "海珠区江南中街街道办事处", "street_office"),
                            ("qizhi", "启智社会工作服务中心", "provider")):
        directory.register_organisation(application,
            BOOTSTRAP_ADMIN, OrganisationSpec.model_validate({"id": org, "name": name,
                                                              "kind": kind}))
    yield application
    application.close()


def open_contracts(app: Ledger, count: int) -> list[str]:
    ids = []
    for n in range(count):
        contract_id = contracts.draft_contract(app, BOOTSTRAP_ADMIN, terms(f"HZ-GC-{n}")).id
        contracts.transition(app, BOOTSTRAP_ADMIN, contract_id, "activate")
        ids.append(contract_id)
    return ids


def committer(app: Ledger) -> GroupCommitter:
    found = app.group_commit
    assert found is not None, "group commit is on by default"
    return found


def in_one_batch(app: Ledger, commands: list[Callable[[], Any]]) -> list[Future[Any]]:
    """Run ``commands`` concurrently, the first batch held (before it is written) until all
    have queued: they then meet in the next batch."""
    group = committer(app)
    release = threading.Event()
    original_prepare, original_queue = app.prepare_save, group._queue
    queued: list[Any] = []

    def held_prepare(*aggregates: Any) -> Any:
        release.wait(10)
        return original_prepare(*aggregates)

    def counted_queue(job: Any) -> None:
        original_queue(job)
        queued.append(job)  # (one at a time: appending is atomic)

    app.prepare_save = held_prepare  # type: ignore[method-assign]
    group._queue = counted_queue  # type: ignore[method-assign]
    pool = ThreadPoolExecutor(max_workers=len(commands) + 1)
    try:
        futures = [pool.submit(command) for command in commands]
        deadline = time.monotonic() + 10
        while len(queued) < len(commands) and time.monotonic() < deadline:
            time.sleep(0.005)  # the first batch (one or a few) is held in save; the rest queue
        release.set()
        for future in futures:
            future.exception(timeout=60)
    finally:
        release.set()
        pool.shutdown()
        app.prepare_save = original_prepare  # type: ignore[method-assign]
        group._queue = original_queue  # type: ignore[method-assign]
    return futures


def issued(app: Ledger, contract_id: str, n: int) -> Callable[[], CommandResult]:
    return lambda: directives.issue_directive(app, STREET, contract_id, fields(n))


def assert_recorded_as_answered(app: Ledger, contract_id: str,
                                results: list[CommandResult]) -> None:
    """Each answer names the version and position its directive was really recorded at."""
    contract = contracts.read_contract(app, BOOTSTRAP_ADMIN, contract_id)
    for result in results:
        directive = contract.directives[result.id]
        assert directive["issued_version"] == result.version
        assert position_of(app.recorder, contract.id, result.version) == result.position
    report = history.audit(app, BOOTSTRAP_ADMIN, contract_id)
    assert report.verified, report
    assert report.events == contract.version


def test_commands_on_many_contracts_share_one_transaction(app: Ledger) -> None:
    # Given four active contracts
    contracts = open_contracts(app, 4)
    before = committer(app).batches
    # When 24 directives on them arrive together
    futures = in_one_batch(app, [issued(app, contracts[n % 4], n) for n in range(24)])
    # Then all are recorded, in two transactions (the held one, then the rest)
    results = [future.result() for future in futures]
    assert committer(app).batches - before == 2
    assert len({r.position for r in results}) == 24
    for contract_id in contracts:
        mine = [r for r, n in zip(results, range(24), strict=True) if n % 4 ==
                contracts.index(contract_id)]
        assert sorted(r.version for r in mine) == list(range(3, 3 + 6))
        assert_recorded_as_answered(app, contract_id, mine)


def test_commands_on_one_contract_chain_one_after_the_other(app: Ledger) -> None:
    # Given one active contract (version 2)
    (contract_id,) = open_contracts(app, 1)
    # When 16 directives on it arrive together
    futures = in_one_batch(app, [issued(app, contract_id, n) for n in range(16)])
    # Then they take versions 3..18, one each, and the chain links every one
    results = [future.result() for future in futures]
    assert sorted(r.version for r in results) == list(range(3, 19))
    assert sorted(r.position for r in results) == sorted({r.position for r in results})
    assert_recorded_as_answered(app, contract_id, results)
    # and the cache holds exactly what the store replays
    replayed: Any = app.repository.get(contracts.read_contract(app, BOOTSTRAP_ADMIN,
                                                               contract_id).id, version=18)
    assert replayed.head_hash == contracts.read_contract(app, BOOTSTRAP_ADMIN,
                                                         contract_id).head_hash


def test_a_batch_meeting_another_writer_is_run_again_as_a_whole(
    app: Ledger, settings: Settings
) -> None:
    # Given a contract this process has cached at version 2 ...
    (contract_id,) = open_contracts(app, 1)
    # ... that another process then moves on to version 3
    other = Ledger(settings)
    try:
        elsewhere = directives.issue_directive(other, STREET, contract_id, fields(100))
    finally:
        other.close()
    assert elsewhere.version == 3
    before = committer(app).batches
    # When eight directives arrive together here (their batch meets version 3 taken)
    futures = in_one_batch(app, [issued(app, contract_id, n) for n in range(8)])
    # Then the batch that met it was run again as a whole on the contract reloaded: every
    # one is recorded after it, nothing twice, and the chain is whole.  The held first batch
    # holds one or a few of the eight, or, on a busy machine, all of them (its leader may
    # gather every queued job before it prepares): one or two transactions in all
    results = [future.result() for future in futures]
    assert (committer(app).retries, committer(app).fallbacks) == (1, 0)
    assert committer(app).batches - before in (1, 2)
    assert sorted(r.version for r in results) == list(range(4, 12))
    assert_recorded_as_answered(app, contract_id, results)
    assert str(elsewhere.id) in contracts.read_contract(app, BOOTSTRAP_ADMIN,
                                                        contract_id).directives


def test_a_batch_that_keeps_meeting_conflicts_is_redone_one_by_one(app: Ledger) -> None:
    # Given a contract, and a store that refuses the next three saves as conflicts
    (contract_id,) = open_contracts(app, 1)
    original_write = app.write
    refusals = [IntegrityError("another writer")] * BATCH_ATTEMPTS

    def refusing_write(prepared: Any) -> Any:
        if refusals:
            raise refusals.pop()
        return original_write(prepared)

    app.write = refusing_write  # type: ignore[method-assign]
    try:
        # When a batch of directives arrives
        futures = in_one_batch(app, [issued(app, contract_id, n) for n in range(6)])
    finally:
        app.write = original_write  # type: ignore[method-assign]
    # Then after BATCH_ATTEMPTS tries of the whole it was redone one by one: all recorded once
    results = [future.result() for future in futures]
    assert committer(app).retries == BATCH_ATTEMPTS - 1
    assert committer(app).fallbacks == 1
    assert sorted(r.version for r in results) == list(range(3, 9))
    assert_recorded_as_answered(app, contract_id, results)


def test_a_key_another_process_recorded_meanwhile_answers_as_a_repeat(
    app: Ledger, settings: Settings
) -> None:
    # Given a contract, and one request whose Idempotency-Key another process records
    # while this process's batch holding the same request is about to commit
    (contract_id,) = open_contracts(app, 1)
    body = b'{"subject": "youth_zone.item_1"}'
    request = IdempotentRequest.of("两处-key", "POST", f"/v1/contracts/{contract_id}", body)
    original_write = app.write
    elsewhere: list[CommandResult] = []

    def write_after_the_other(prepared: Any) -> Any:
        if not elsewhere:
            other = Ledger(settings)
            try:
                elsewhere.append(directives.issue_directive(
                    other, STREET, contract_id, fields(1), request=request))
            finally:
                other.close()
        return original_write(prepared)

    app.write = write_after_the_other  # type: ignore[method-assign]
    try:
        here = directives.issue_directive(app, STREET, contract_id, fields(1), request=request)
    finally:
        app.write = original_write  # type: ignore[method-assign]
    # Then this process's batch was run again and answered with the first answer
    assert committer(app).retries == 1
    assert here.replayed and (here.id, here.version, here.position) == (
        elsewhere[0].id, elsewhere[0].version, elsewhere[0].position)
    contract = contracts.read_contract(app, BOOTSTRAP_ADMIN, contract_id)
    assert len(contract.directives) == 1 and contract.version == 3


def test_an_idempotent_repeat_inside_a_batch_is_answered_once(app: Ledger) -> None:
    # Given a contract and one request sent three times with one Idempotency-Key
    (contract_id,) = open_contracts(app, 1)
    body = b'{"subject": "youth_zone.item_1"}'
    request = IdempotentRequest.of("重复-key-1", "POST", f"/v1/contracts/{contract_id}", body)

    def repeat() -> CommandResult:
        return directives.issue_directive(app, STREET, contract_id, fields(1), request=request)

    # When they arrive together with two other directives
    futures = in_one_batch(app, [issued(app, contract_id, 50), repeat, repeat,
                                 issued(app, contract_id, 51), repeat])
    results = [future.result() for future in futures]
    repeats = [results[1], results[2], results[4]]
    # Then one directive is recorded for the three, and each repeat answers as the first
    assert len({(r.id, r.version, r.position) for r in repeats}) == 1
    assert sum(not r.replayed for r in repeats) == 1
    contract = contracts.read_contract(app, BOOTSTRAP_ADMIN, contract_id)
    assert len(contract.directives) == 3
    assert contract.version == 5
    assert_recorded_as_answered(app, contract_id, [results[0], results[3], repeats[0]])


def test_a_refused_command_inside_a_batch_records_nothing_and_spares_the_others(
    app: Ledger,
) -> None:
    # Given an active contract and a suspended one
    active, suspended = open_contracts(app, 2)
    contracts.transition(app, BOOTSTRAP_ADMIN, suspended, "suspend")
    suspended_version = contracts.read_contract(app, BOOTSTRAP_ADMIN, suspended).version
    # When directives on both arrive together
    futures = in_one_batch(app, [issued(app, active, 1), issued(app, suspended, 2),
                                 issued(app, active, 3), issued(app, suspended, 4)])
    # Then those on the suspended contract are refused, the others recorded
    for refused in (futures[1], futures[3]):
        assert isinstance(refused.exception(), ContractNotActive)
    results = [futures[0].result(), futures[2].result()]
    assert sorted(r.version for r in results) == [3, 4]
    assert_recorded_as_answered(app, active, results)
    assert contracts.read_contract(app, BOOTSTRAP_ADMIN, suspended).version == suspended_version


def test_one_by_one_when_group_commit_is_off(
    settings: Settings,
) -> None:
    # Given group commit switched off (NEEDLE_GROUP_COMMIT=0)
    application = Ledger(settings.model_copy(update={"group_commit": False}))
    try:
        # Then commands are saved one per transaction, as before
        assert application.group_commit is None
        directory.register_organisation(application, BOOTSTRAP_ADMIN,
                                        OrganisationSpec.model_validate(
            {"id": "qizhi", "name": "启智", "kind": "provider"}))
        assert directory.list_organisations(application, BOOTSTRAP_ADMIN)[0]["name"] == "启智"
    finally:
        application.close()


@pytest.mark.skipif(not USES_POSTGRES, reason="API processes take turns on PostgreSQL only")
def test_several_api_processes_take_turns_on_fresh_contracts(settings: Settings) -> None:
    # Given two processes' ledgers set for two API processes, both with the contract cached
    shared = settings.model_copy(update={"group_commit": True, "api_processes": 2})
    here, there = Ledger(shared), Ledger(shared)
    try:
        for org, name, kind in (("haizhu-street", "海珠区江南中街街道办事处", "street_office"),
                                ("qizhi", "启智社会工作服务中心", "provider")):
            directory.register_organisation(here, BOOTSTRAP_ADMIN, OrganisationSpec.model_validate(
                {"id": org, "name": name, "kind": kind}))
        (contract_id,) = open_contracts(here, 1)
        directives.issue_directive(there, STREET, contract_id, fields(0))  # there caches v3
        # When the other process records a directive while this one waits for its turn
        turn = committer(there)._turns.take()
        waiting = ThreadPoolExecutor(1).submit(
            directives.issue_directive, here, STREET, contract_id, fields(1))
        time.sleep(0.3)
        assert not waiting.done()  # this process's batch waits for the other's turn
        turn.__exit__(None, None, None)
        first = waiting.result(timeout=30)
        second = directives.issue_directive(there, STREET, contract_id, fields(2))
        # Then each batch started from the store's latest version: no conflict, no retry
        assert (first.version, second.version) == (4, 5)
        for ledger in (here, there):
            assert (committer(ledger).retries, committer(ledger).fallbacks) == (0, 0)
        assert_recorded_as_answered(here, contract_id, [first, second])
    finally:
        here.close()
        there.close()
