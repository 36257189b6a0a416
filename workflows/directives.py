"""Use cases of directives: issue, amend, withdraw; and who may ask (SPEC §13):
the admission list, the provider's classification, a stakeholder's dispute.

Each is one command on one contract (``workflows.contracts.on_contract``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from domain import access
from domain.contract import ServiceContract
from domain.directives import Classification, DirectiveFields, DirectivePatch, Dispute
from domain.organisations import Caller
from domain.terms import Admission
from workflows.contracts import contract_attempt, on_contract
from workflows.idempotency import IdempotentRequest
from workflows.ledger import CommandResult, Ledger


def issue_directive(ledger: Ledger, caller: Caller, contract_id: str, fields: DirectiveFields, *,
                    request: IdempotentRequest | None = None,
                    expected_version: int | None = None) -> CommandResult:
    return on_contract(ledger, caller, contract_id, issuing(ledger, caller, fields, request),
                       request=request, expected_version=expected_version)


def submit_directive(ledger: Ledger, caller: Caller, contract_id: str, fields: DirectiveFields, *,
                     request: IdempotentRequest | None = None,
                     expected_version: int | None = None) -> asyncio.Future[CommandResult] | None:
    """``issue_directive`` queued for the next group commit (``Ledger.submit``): for the
    ``async`` route, which awaits it on its event loop without a thread.  ``None`` without
    group commit."""
    act = issuing(ledger, caller, fields, request)
    attempt = contract_attempt(ledger, caller, contract_id, act, expected_version)
    return ledger.submit(caller, request, attempt)


def issuing(
    ledger: Ledger, caller: Caller, fields: DirectiveFields, request: IdempotentRequest | None
) -> Callable[[ServiceContract], str]:
    def act(contract: ServiceContract) -> str:
        access.require_stakeholder(caller, contract)
        directive_id = (
            request.derived_id(contract.id, caller.principal_id) if request else ledger.new_id()
        )
        contract.issue_directive(
            fields, directive_id=directive_id, issuer=caller.org,
            actor=caller.actor, at=ledger.clock(),
        )
        return str(directive_id)

    return act


def amend_directive(ledger: Ledger, caller: Caller, contract_id: str, directive_id: str,
                    patch: DirectivePatch, *, expected_version: int | None = None) -> CommandResult:
    def act(contract: ServiceContract) -> str:
        access.require_issuer(caller, contract, directive_id)
        contract.amend_directive(directive_id, patch, actor=caller.actor, at=ledger.clock())
        return directive_id

    return on_contract(ledger, caller, contract_id, act, expected_version=expected_version)


def withdraw_directive(ledger: Ledger, caller: Caller, contract_id: str, directive_id: str, *,
                       expected_version: int | None = None) -> CommandResult:
    def act(contract: ServiceContract) -> str:
        access.require_issuer(caller, contract, directive_id)
        contract.withdraw_directive(directive_id, actor=caller.actor, at=ledger.clock())
        return directive_id

    return on_contract(ledger, caller, contract_id, act, expected_version=expected_version)


def change_admission(ledger: Ledger, caller: Caller, contract_id: str, admission: Admission, *,
                     expected_version: int | None = None) -> CommandResult:
    def act(contract: ServiceContract) -> str:
        access.require_admin(caller, "change the admission list")
        contract.change_admission(admission, actor=caller.actor, at=ledger.clock())
        return str(contract.id)

    return on_contract(ledger, caller, contract_id, act, expected_version=expected_version)


def classify_directive(ledger: Ledger, caller: Caller, contract_id: str, directive_id: str,
                       classification: Classification, *, request: IdempotentRequest | None = None,
                       expected_version: int | None = None) -> CommandResult:
    def act(contract: ServiceContract) -> str:
        access.require_provider(caller, contract)
        contract.classify_directive(directive_id, classification, actor=caller.actor,
                                    at=ledger.clock())
        return directive_id

    return on_contract(ledger, caller, contract_id, act, request=request,
                       expected_version=expected_version)


def dispute_directive(
    ledger: Ledger, caller: Caller, contract_id: str, directive_id: str, dispute: Dispute, *,
    request: IdempotentRequest | None = None, expected_version: int | None = None,
) -> CommandResult:
    """Answers the id of the ``disputed`` conflict the dispute opened."""

    def act(contract: ServiceContract) -> str:
        access.require_stakeholder(caller, contract)
        contract.dispute_directive(directive_id, dispute, by=caller.org,
                                   actor=caller.actor, at=ledger.clock())
        return contract.dispute_conflict(directive_id, str(contract.version))

    return on_contract(ledger, caller, contract_id, act, request=request,
                       expected_version=expected_version)
