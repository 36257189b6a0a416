"""``/v1/contracts/{id}/directives``: issue, amend and withdraw directives (stakeholders)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute

from api.deps import CallerDep, ContractId, DirectiveId, IdempotencyDep, IfMatchDep, LedgerDep
from api.problems import problem_responses
from api.responses import CommandResult
from domain.directives import DirectiveFields, DirectivePatch
from domain.organisations import Caller
from workflows import directives
from workflows.idempotency import IdempotentRequest
from workflows.ledger import CommandResult as Recorded
from workflows.ledger import Ledger

router = APIRouter(prefix="/v1/contracts/{contract_id}/directives", tags=["directives"],
                   responses=problem_responses(401, 403, 404, 409, 412, 422))


@router.post("", status_code=201, response_model=CommandResult)
async def issue_directive(
    contract_id: ContractId,
    fields: DirectiveFields,
    caller: CallerDep,
    ledger: LedgerDep,
    request: IdempotencyDep,
    expected_version: IfMatchDep,
) -> dict[str, Any]:
    return (await issued(ledger, caller, contract_id, fields, request=request,
                         expected_version=expected_version)).as_dict()


async def issued(ledger: Ledger, caller: Caller, contract_id: str, fields: DirectiveFields, *,
                 request: IdempotentRequest | None,
                 expected_version: int | None) -> Recorded:
    """Issue a directive: queued for the group commit and awaited with no thread held (a
    thread hop per request showed in the command-path profile); with one save per command,
    on a thread as the other commands.  The route and ``api/directive_fast_path.py`` share it."""
    submitted = directives.submit_directive(
        ledger, caller, contract_id, fields, request=request, expected_version=expected_version)
    if submitted is None:
        return await run_in_threadpool(
            directives.issue_directive, ledger, caller, contract_id, fields, request=request,
            expected_version=expected_version)
    return await submitted


@router.patch("/{directive_id}", response_model=CommandResult)
def amend_directive(
    contract_id: ContractId,
    directive_id: DirectiveId,
    patch: DirectivePatch,
    caller: CallerDep,
    ledger: LedgerDep,
    expected_version: IfMatchDep,
) -> dict[str, Any]:
    return directives.amend_directive(
        ledger, caller, contract_id, directive_id, patch, expected_version=expected_version
    ).as_dict()


@router.delete("/{directive_id}", response_model=CommandResult)
def withdraw_directive(
    contract_id: ContractId,
    directive_id: DirectiveId,
    caller: CallerDep,
    ledger: LedgerDep,
    expected_version: IfMatchDep,
) -> dict[str, Any]:
    return directives.withdraw_directive(
        ledger, caller, contract_id, directive_id, expected_version=expected_version
    ).as_dict()


def issue_route() -> APIRoute:
    """The documented route of ``issue_directive`` (``api/directive_fast_path.py`` serves it)."""
    return next(route for route in router.routes
                if isinstance(route, APIRoute) and route.endpoint is issue_directive)
