"""Each command of a group-commit batch gets its own outcome (issue 11).

A command that failed, or that recorded nothing, once raised inside the batch's
answering loop, and every other command of the batch — whose events were saved
— answered that same error, inviting duplicate retries.
"""

from __future__ import annotations

from typing import Any

from domain.errors import IllegalTransition
from domain.organisations import KeySpec
from integration.test_group_commit import (
    STREET,
    app,  # noqa: F401  (the fixture)
    assert_recorded_as_answered,
    committer,
    in_one_batch,
    issued,
    open_contracts,
)
from workflows import contracts, directory
from workflows.group_commit import NothingRecorded
from workflows.identities import BOOTSTRAP_ADMIN
from workflows.ledger import Change, Ledger


def test_a_second_revocation_in_a_batch_is_refused_alone(app: Ledger) -> None:  # noqa: F811
    # Given an active contract and a revoked key
    (contract_id,) = open_contracts(app, 1)
    key = directory.create_key(app, BOOTSTRAP_ADMIN, KeySpec.model_validate(
        {"org": "haizhu-street", "role": "stakeholder"}))
    directory.revoke_key(app, BOOTSTRAP_ADMIN, key.id)
    batches = committer(app).batches
    # When directives and a second revocation of that key arrive together
    futures = in_one_batch(app, [
        issued(app, contract_id, 1),
        lambda: directory.revoke_key(app, BOOTSTRAP_ADMIN, key.id),
        issued(app, contract_id, 2),
    ])
    # Then the revocation alone is refused, and the directives are recorded as answered
    assert isinstance(futures[1].exception(), IllegalTransition)
    results = [futures[0].result(), futures[2].result()]
    assert committer(app).batches > batches
    assert_recorded_as_answered(app, contract_id, results)


def test_a_command_that_records_nothing_does_not_fail_its_batch(
    app: Ledger,  # noqa: F811
) -> None:
    # Given an active contract, and a (buggy) command that changes nothing
    (contract_id,) = open_contracts(app, 1)

    def nothing() -> Any:
        contract = app.repository.get(contracts.read_contract(app, BOOTSTRAP_ADMIN, contract_id).id)
        return Change([contract], contract, contract_id)

    # When it shares a batch with two directives
    futures = in_one_batch(app, [
        issued(app, contract_id, 1),
        lambda: app.execute(STREET, None, nothing),
        issued(app, contract_id, 2),
    ])
    # Then the directives, before and after it, are answered with what was recorded
    assert_recorded_as_answered(app, contract_id, [futures[0].result(), futures[2].result()])
    # And it fails on its own
    assert isinstance(futures[1].exception(), NothingRecorded)
