"""SPEC §13 routes: the admission list (admin), classification (the provider), disputes
(party stakeholders) and answers to proposed decisions (``joint_decision`` organisations)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import (
    CallerDep,
    ConflictId,
    ContractId,
    DirectiveId,
    IdempotencyDep,
    IfMatchDep,
    LedgerDep,
)
from api.problems import problem_responses
from api.responses import CommandResult
from domain.directives import Classification, Dispute
from domain.resolution import Approval
from domain.terms import Admission
from workflows import directives, resolution

router = APIRouter(prefix="/v1/contracts/{contract_id}", tags=["who may ask"],
                   responses=problem_responses(401, 403, 404, 409, 412, 422))


@router.put("/admission", response_model=CommandResult)
def change_admission(
    contract_id: ContractId,
    admission: Admission,
    caller: CallerDep,
    ledger: LedgerDep,
    expected_version: IfMatchDep,
) -> dict[str, Any]:
    """Replace the admission list (准入): which organisations may assign which kinds of work.
    Every active directive is checked against the new list."""
    return directives.change_admission(
        ledger, caller, contract_id, admission, expected_version=expected_version).as_dict()


@router.post("/directives/{directive_id}/classification", response_model=CommandResult)
def classify_directive(
    contract_id: ContractId,
    directive_id: DirectiveId,
    classification: Classification,
    caller: CallerDep,
    ledger: LedgerDep,
    request: IdempotencyDep,
    expected_version: IfMatchDep,
) -> dict[str, Any]:
    """The provider sets the directive's kind of work and adds tags the issuer left out."""
    return directives.classify_directive(
        ledger, caller, contract_id, directive_id, classification,
        request=request, expected_version=expected_version).as_dict()


@router.post("/directives/{directive_id}/disputes", status_code=201,
             response_model=CommandResult)
def dispute_directive(
    contract_id: ContractId,
    directive_id: DirectiveId,
    dispute: Dispute,
    caller: CallerDep,
    ledger: LedgerDep,
    request: IdempotencyDep,
    expected_version: IfMatchDep,
) -> dict[str, Any]:
    """Dispute fields of another organisation's directive; answers the ``disputed``
    conflict's id."""
    return directives.dispute_directive(
        ledger, caller, contract_id, directive_id, dispute,
        request=request, expected_version=expected_version).as_dict()


@router.post("/conflicts/{conflict_id}/resolution/approvals", response_model=CommandResult)
def answer_proposal(
    contract_id: ContractId,
    conflict_id: ConflictId,
    answer: Approval,
    caller: CallerDep,
    ledger: LedgerDep,
    request: IdempotencyDep,
    expected_version: IfMatchDep,
) -> dict[str, Any]:
    """Approve or reject the decision proposed on a conflict; the last approval makes it
    take effect, a rejection returns the conflict to open."""
    return resolution.answer_proposal(
        ledger, caller, contract_id, conflict_id, answer,
        request=request, expected_version=expected_version).as_dict()
