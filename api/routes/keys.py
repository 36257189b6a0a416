"""``/v1/keys``: create an API key (shown once) and revoke one (admin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import CallerDep, IdempotencyDep, LedgerDep
from api.problems import problem_responses
from api.responses import CommandResult, KeyCreated
from domain.organisations import KeySpec
from workflows import directory

router = APIRouter(prefix="/v1/keys", tags=["keys"],
                   responses=problem_responses(401, 403, 404, 422))


@router.post("", status_code=201, response_model=KeyCreated)
def create_key(
    spec: KeySpec, caller: CallerDep, ledger: LedgerDep, request: IdempotencyDep
) -> dict[str, Any]:
    return directory.create_key(ledger, caller, spec, request).as_dict()


@router.delete("/{key_id}", response_model=CommandResult)
def revoke_key(key_id: str, caller: CallerDep, ledger: LedgerDep) -> dict[str, Any]:
    return directory.revoke_key(ledger, caller, key_id).as_dict()
