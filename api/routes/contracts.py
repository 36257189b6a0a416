"""``/v1/contracts``: draft, list and read contracts; stakeholders, lifecycle, policy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Response

from api.deps import (
    CallerDep,
    ContractId,
    IdempotencyDep,
    IfMatchDep,
    LedgerDep,
    PointInTimeDep,
    etag,
)
from api.problems import problem_responses
from api.responses import CommandResult, Contract, Contracts, documented
from domain.primitives import EmptyBody
from domain.terms import ContractTerms, Policy, StakeholderSpec
from workflows import contracts

router = APIRouter(prefix="/v1/contracts", tags=["contracts"],
                   responses=problem_responses(401, 403, 404, 422))


@router.post("", status_code=201, response_model=CommandResult,
             responses=problem_responses(409))
def draft_contract(
    terms: ContractTerms, caller: CallerDep, ledger: LedgerDep, request: IdempotencyDep
) -> dict[str, Any]:
    return contracts.draft_contract(ledger, caller, terms, request).as_dict()


@router.get("", **documented(Contracts))
def list_contracts(caller: CallerDep, ledger: LedgerDep) -> dict[str, Any]:
    return {"items": contracts.list_contracts(ledger, caller)}


@router.get("/{contract_id}", **documented(Contract, ETag={
    "description": 'The contract\'s version as an entity tag, "5"', "required": True,
    "schema": {"type": "string", "pattern": '^"[0-9]+"$'}}))
def read_contract(
    contract_id: ContractId,
    caller: CallerDep,
    ledger: LedgerDep,
    response: Response,
    at: PointInTimeDep,
) -> dict[str, Any]:
    contract = contracts.read_contract(ledger, caller, contract_id, version=at.version,
                                       as_of=at.as_of)
    response.headers["ETag"] = etag(contract.version)
    return contract.as_dict()


@router.post("/{contract_id}/stakeholders", status_code=201, response_model=CommandResult,
             responses=problem_responses(409, 412))
def add_stakeholder(
    contract_id: ContractId,
    spec: StakeholderSpec,
    caller: CallerDep,
    ledger: LedgerDep,
    request: IdempotencyDep,
    expected_version: IfMatchDep,
) -> dict[str, Any]:
    return contracts.add_stakeholder(
        ledger, caller, contract_id, spec, request=request, expected_version=expected_version
    ).as_dict()


@router.put("/{contract_id}/policy", response_model=CommandResult,
            responses=problem_responses(409, 412))
def change_policy(
    contract_id: ContractId,
    policy: Policy,
    caller: CallerDep,
    ledger: LedgerDep,
    expected_version: IfMatchDep,
) -> dict[str, Any]:
    return contracts.change_policy(
        ledger, caller, contract_id, policy, expected_version=expected_version
    ).as_dict()


def _lifecycle(command: str) -> Callable[..., dict[str, Any]]:
    def endpoint(
        contract_id: ContractId,
        caller: CallerDep,
        ledger: LedgerDep,
        request: IdempotencyDep,
        expected_version: IfMatchDep,
        body: Annotated[EmptyBody | None, Body(description="Empty, or {}")] = None,
    ) -> dict[str, Any]:
        return contracts.transition(
            ledger, caller, contract_id, command, request=request, expected_version=expected_version
        ).as_dict()

    endpoint.__name__ = f"{command}_contract"
    endpoint.__doc__ = f"Lifecycle: {command} the contract (admin)."
    return endpoint


for _command in ("activate", "suspend", "terminate", "close"):
    router.add_api_route(
        f"/{{contract_id}}/{_command}", _lifecycle(_command), methods=["POST"],
        response_model=CommandResult, responses=problem_responses(409, 412),
    )
