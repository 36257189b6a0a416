"""Conflict and priority views: live from Redis, or replayed from the event store.

Without ``?version=`` / ``?as_of=`` (or ``?profile=``) a view is the live one
the projection keeps in Redis: it carries ``X-Projection-Position`` and honours
``min_position`` / ``wait``.  With them it is replayed (or a what-if) and
carries the ``version`` it was computed at instead.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic.json_schema import SkipJsonSchema
from starlette.concurrency import run_in_threadpool

from api.deps import (
    CallerDep,
    FreshnessDep,
    LiveViewsDep,
    PointInTimeDep,
    ReadableContractId,
    ReadableContracts,
    ServicesDep,
)
from api.live_views import POSITION_HEADER
from api.problems import problem_responses
from api.schemas import Items
from domain.conflict_view import STATUSES
from domain.values import Profile

router = APIRouter(tags=["views"], responses=problem_responses(401, 404, 422, 503))

# The values are documented as enums (json_schema_extra) and checked by the domain, which
# answers with the clearer message; ``SkipJsonSchema`` keeps ``null`` out of the document.
StatusQuery = Annotated[str | SkipJsonSchema[None], Query(
    description="open, resolved, dissolved or all (default: open and resolved)",
    json_schema_extra={"enum": [*STATUSES, "all"]})]
ProfileQuery = Annotated[str | SkipJsonSchema[None], Query(
    description="What-if: rank under this profile (contract_first or client_first)",
    json_schema_extra={"enum": [profile.value for profile in Profile]})]


@router.get("/v1/contracts/{contract_id}/conflicts", response_model=dict[str, Any])
async def conflict_view(
    contract_id: ReadableContractId,
    caller: CallerDep,
    services: ServicesDep,
    at: PointInTimeDep,
    freshness: FreshnessDep,
    live: LiveViewsDep,
    response: Response,
    status: StatusQuery = None,
) -> dict[str, Any]:
    if at.given:
        return await run_in_threadpool(
            services.app.conflict_view_at, caller, contract_id,
            version=at.version, as_of=at.as_of, status=status,
        )
    position, view = await live.conflicts(contract_id, status, freshness)
    response.headers[POSITION_HEADER] = str(position)
    return view


@router.get("/v1/contracts/{contract_id}/priorities", response_model=dict[str, Any])
async def priority_view(
    contract_id: ReadableContractId,
    caller: CallerDep,
    services: ServicesDep,
    at: PointInTimeDep,
    freshness: FreshnessDep,
    live: LiveViewsDep,
    response: Response,
    profile: ProfileQuery = None,
) -> dict[str, Any]:
    if at.given or profile is not None:
        return await run_in_threadpool(
            services.app.priority_view_at, caller, contract_id,
            version=at.version, as_of=at.as_of, profile=profile,
        )
    position, view = await live.priorities(contract_id, freshness)
    response.headers[POSITION_HEADER] = str(position)
    return view


@router.get("/v1/conflicts", response_model=Items)
async def conflict_board(
    readable: ReadableContracts,
    services: ServicesDep,
    freshness: FreshnessDep,
    live: LiveViewsDep,
    response: Response,
) -> dict[str, Any]:
    """Open conflicts across the contracts the caller may read, most overdue first."""
    position, board = await live.board(readable, services.app.clock(), freshness)
    response.headers[POSITION_HEADER] = str(position)
    return board
