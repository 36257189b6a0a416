"""Use cases of conflict resolution: resolve, escalate, answer a joint proposal,
and the deadline timer's escalation of a lapsed conflict.

Each is one command on one contract (``workflows.contracts.on_contract``).
"""

from __future__ import annotations

from datetime import datetime

from domain import access
from domain.contract import ServiceContract
from domain.organisations import Caller
from domain.resolution import SLA_EXPIRED, Approval, Decision, Escalation
from workflows.contracts import on_contract
from workflows.idempotency import IdempotentRequest
from workflows.identities import SLA_TIMER
from workflows.ledger import CommandResult, Ledger


def resolve_conflict(ledger: Ledger, caller: Caller, contract_id: str, conflict_id: str,
                     decision: Decision, *, request: IdempotentRequest | None = None,
                     expected_version: int | None = None) -> CommandResult:
    def act(contract: ServiceContract) -> str:
        access.require_resolver(caller, contract)
        contract.resolve_conflict(conflict_id, decision, resolver=caller.org,
                                  actor=caller.actor, at=ledger.clock())
        return conflict_id

    return on_contract(ledger, caller, contract_id, act, request=request,
                       expected_version=expected_version)


def escalate_conflict(ledger: Ledger, caller: Caller, contract_id: str, conflict_id: str,
                      escalation: Escalation, *, request: IdempotentRequest | None = None,
                      expected_version: int | None = None) -> CommandResult:
    def act(contract: ServiceContract) -> str:
        access.require_resolver(caller, contract)
        contract.escalate_conflict(conflict_id, escalation, escalator=caller.org,
                                   actor=caller.actor, at=ledger.clock())
        return conflict_id

    return on_contract(ledger, caller, contract_id, act, request=request,
                       expected_version=expected_version)


def answer_proposal(
    ledger: Ledger, caller: Caller, contract_id: str, conflict_id: str, answer: Approval, *,
    request: IdempotentRequest | None = None, expected_version: int | None = None,
) -> CommandResult:
    def act(contract: ServiceContract) -> str:
        access.require_joint_decider(caller, contract)
        contract.answer_proposal(conflict_id, org=caller.org, approve=answer.approve,
                                 note=answer.note, actor=caller.actor, at=ledger.clock())
        return conflict_id

    return on_contract(ledger, caller, contract_id, act, request=request,
                       expected_version=expected_version)


def escalate_lapsed_conflict(
    ledger: Ledger, contract_id: str, conflict_id: str, from_level: int, *, now: datetime
) -> CommandResult:
    """The timer's escalation: ``sla_expired``, from ``from_level``, recorded at ``now``.

    The same command as a resolver's; the contract refuses it unless the
    conflict is still open at ``from_level`` and lapsed at ``now``.
    """
    escalation = Escalation(from_level=from_level, reason=SLA_EXPIRED)

    def act(contract: ServiceContract) -> str:
        contract.escalate_conflict(conflict_id, escalation, escalator=None,
                                   actor=SLA_TIMER.actor, at=now)
        return conflict_id

    return on_contract(ledger, SLA_TIMER, contract_id, act)
