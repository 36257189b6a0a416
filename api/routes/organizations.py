"""``/v1/organizations``: register and list organisations (admin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import CallerDep, IdempotencyDep, LedgerDep
from api.problems import problem_responses
from api.responses import CommandResult, Organisations, documented
from domain.organisations import OrganisationSpec
from workflows import directory

router = APIRouter(prefix="/v1/organizations", tags=["organizations"],
                   responses=problem_responses(401, 403, 422))


@router.post("", status_code=201, response_model=CommandResult,
             responses=problem_responses(409))
def register_organisation(
    spec: OrganisationSpec, caller: CallerDep, ledger: LedgerDep, request: IdempotencyDep
) -> dict[str, Any]:
    return directory.register_organisation(ledger, caller, spec, request).as_dict()


@router.get("", **documented(Organisations))
def list_organisations(caller: CallerDep, ledger: LedgerDep) -> dict[str, Any]:
    return {"items": directory.list_organisations(ledger, caller)}
