"""``/v1/contracts/{id}/conflicts/{cid}``: decide or escalate a conflict (resolvers)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import CallerDep, ConflictId, ContractId, IdempotencyDep, IfMatchDep, LedgerDep
from api.problems import problem_responses
from api.responses import CommandResult
from domain.resolution import Decision, Escalation
from workflows import resolution

router = APIRouter(prefix="/v1/contracts/{contract_id}/conflicts/{conflict_id}",
                   tags=["conflicts"],
                   responses=problem_responses(401, 403, 404, 409, 412, 422))


@router.post("/resolution", response_model=CommandResult)
def resolve_conflict(
    contract_id: ContractId,
    conflict_id: ConflictId,
    decision: Decision,
    caller: CallerDep,
    ledger: LedgerDep,
    request: IdempotencyDep,
    expected_version: IfMatchDep,
) -> dict[str, Any]:
    """Record a decision: outcome, upheld and overridden members, rationale."""
    return resolution.resolve_conflict(
        ledger, caller, contract_id, conflict_id, decision,
        request=request, expected_version=expected_version,
    ).as_dict()


@router.post("/escalation", response_model=CommandResult)
def escalate_conflict(
    contract_id: ContractId,
    conflict_id: ConflictId,
    escalation: Escalation,
    caller: CallerDep,
    ledger: LedgerDep,
    request: IdempotencyDep,
    expected_version: IfMatchDep,
) -> dict[str, Any]:
    """Escalate by hand, one level up from ``from_level``."""
    return resolution.escalate_conflict(
        ledger, caller, contract_id, conflict_id, escalation,
        request=request, expected_version=expected_version,
    ).as_dict()
