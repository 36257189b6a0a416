"""What changed in a contract between two versions, replayed from the event store."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import (
    MAX_INTEGER,
    AcceptLanguage,
    CallerDep,
    ContractId,
    LedgerDep,
    ReplaysDep,
    in_accepted_language,
)
from api.problems import problem_responses
from api.responses import ContractDiff, documented
from workflows import replay

router = APIRouter(prefix="/v1/contracts/{contract_id}", tags=["history"],
                   responses=problem_responses(401, 403, 404, 422))


VersionQuery = Annotated[int, Query(
    ge=1, le=MAX_INTEGER, description="A version of the contract")]


@router.get("/diff", **documented(ContractDiff))
async def contract_diff(
    contract_id: ContractId,
    caller: CallerDep,
    ledger: LedgerDep,
    from_version: VersionQuery,
    to_version: VersionQuery,
    replays: ReplaysDep,
    accept_language: AcceptLanguage = None,
) -> dict[str, Any]:
    """Directives added, changed, withdrawn, overridden; conflicts opened, updated,
    resolved, dissolved, escalated (each explained); rank changes — each version ranked on
    its own replay date."""
    diff = await replays.run(
        caller, replay.diff, ledger, caller, contract_id,
        from_version=from_version, to_version=to_version,
    )
    return {**diff, "conflicts": {part: in_accepted_language(records, accept_language)
                                  for part, records in diff["conflicts"].items()}}
