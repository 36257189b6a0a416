"""What changed in a contract between two versions, replayed from the event store."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import MAX_INTEGER, CallerDep, ContractId, LedgerDep
from api.problems import problem_responses
from workflows import replay

router = APIRouter(prefix="/v1/contracts/{contract_id}", tags=["history"],
                   responses=problem_responses(401, 403, 404, 422))


class RankChange(BaseModel):
    directive_id: str
    from_: int | None = Field(alias="from", description="Rank at from_version; null: unranked")
    to: int | None = Field(description="Rank at to_version; null: unranked")


class ContractDiff(BaseModel):
    contract_id: str
    from_version: int
    to_version: int
    directives: dict[str, list[dict[str, Any]]] = Field(
        description="added, changed (each with its field changes), withdrawn, overridden")
    conflicts: dict[str, list[dict[str, Any]]] = Field(
        description="opened, resolved, dissolved, escalated (with from_level and to_level)")
    ranks: list[RankChange] = Field(description="Every directive whose rank differs")
    terms: list[dict[str, Any]] = Field(
        description="The contract's status and changeable terms, where they differ")


VersionQuery = Annotated[int, Query(
    ge=1, le=MAX_INTEGER, description="A version of the contract")]


@router.get("/diff", response_model=ContractDiff, response_model_by_alias=True)
async def contract_diff(
    contract_id: ContractId,
    caller: CallerDep,
    ledger: LedgerDep,
    from_version: VersionQuery,
    to_version: VersionQuery,
) -> dict[str, Any]:
    """Directives added, changed, withdrawn, overridden; conflicts opened, resolved,
    dissolved, escalated; rank changes — each version ranked on its own replay date."""
    return await run_in_threadpool(
        replay.diff, ledger, caller, contract_id,
        from_version=from_version, to_version=to_version,
    )
