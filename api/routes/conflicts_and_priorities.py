"""Reading conflicts and priorities: a contract's conflict view and priority view, live
from Redis or replayed from the event store, and the conflict board across contracts
(``GET /v1/conflicts``, live only).  Deciding a conflict is ``api.routes.conflicts``.

Without ``?version=`` / ``?as_of=`` (or ``?profile=``) a view is the live one
the projection keeps in Redis: it carries ``X-Projection-Position`` and honours
``min_position`` / ``wait``.  With them it is replayed (or a what-if) and
carries the ``version`` it was computed at instead.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic.json_schema import SkipJsonSchema

from api.deps import (
    AcceptLanguage,
    CallerDep,
    FreshnessDep,
    LedgerDep,
    PointInTimeDep,
    ProjectedReadsDep,
    ReadableContractId,
    ReadableContracts,
    ReplaysDep,
    in_accepted_language,
)
from api.problems import problem_responses
from api.projected_reads import POSITION_HEADER
from api.responses import (
    ConflictBoard,
    ConflictView,
    PriorityView,
    documented,
    position_header,
)
from domain.conflict_records import STATUSES
from domain.terms import Profile
from workflows import history

router = APIRouter(tags=["views"], responses=problem_responses(401, 404, 422, 503))


# The values are documented as enums (json_schema_extra) and checked by the domain, which
# answers with the clearer message; ``SkipJsonSchema`` keeps ``null`` out of the document.
StatusQuery = Annotated[str | SkipJsonSchema[None], Query(
    description="open, resolved, dissolved or all (default: open and resolved)",
    json_schema_extra={"enum": [*STATUSES, "all"]})]
ProfileQuery = Annotated[str | SkipJsonSchema[None], Query(
    description="What-if: rank under this profile (contract_first or client_first)",
    json_schema_extra={"enum": [profile.value for profile in Profile]})]


@router.get("/v1/contracts/{contract_id}/conflicts",
            **documented(ConflictView, X_Projection_Position=position_header(required=False)))
async def conflict_view(
    contract_id: ReadableContractId,
    caller: CallerDep,
    ledger: LedgerDep,
    at: PointInTimeDep,
    freshness: FreshnessDep,
    live: ProjectedReadsDep,
    replays: ReplaysDep,
    response: Response,
    status: StatusQuery = None,
    accept_language: AcceptLanguage = None,
) -> dict[str, Any]:
    if at.given:
        view = await replays.run(
            caller, history.conflict_view_at, ledger, caller, contract_id,
            version=at.version, as_of=at.as_of, status=status,
        )
    else:
        position, view = await live.conflicts(contract_id, status, freshness)
        response.headers[POSITION_HEADER] = str(position)
    return {**view, "conflicts": in_accepted_language(view["conflicts"], accept_language)}


@router.get("/v1/contracts/{contract_id}/priorities",
            **documented(PriorityView, X_Projection_Position=position_header(required=False)))
async def priority_view(
    contract_id: ReadableContractId,
    caller: CallerDep,
    ledger: LedgerDep,
    at: PointInTimeDep,
    freshness: FreshnessDep,
    live: ProjectedReadsDep,
    replays: ReplaysDep,
    response: Response,
    profile: ProfileQuery = None,
) -> dict[str, Any]:
    if at.given or profile is not None:
        return await replays.run(
            caller, history.priority_view_at, ledger, caller, contract_id,
            version=at.version, as_of=at.as_of, profile=profile,
        )
    position, view = await live.priorities(contract_id, freshness)
    response.headers[POSITION_HEADER] = str(position)
    return view


@router.get("/v1/conflicts",
            **documented(ConflictBoard, X_Projection_Position=position_header(required=True)))
async def conflict_board(
    readable: ReadableContracts,
    ledger: LedgerDep,
    freshness: FreshnessDep,
    live: ProjectedReadsDep,
    response: Response,
    accept_language: AcceptLanguage = None,
) -> dict[str, Any]:
    """Open conflicts across the contracts the caller may read, most overdue first."""
    position, board = await live.board(readable, ledger.clock(), freshness)
    response.headers[POSITION_HEADER] = str(position)
    return {**board, "items": in_accepted_language(board["items"], accept_language)}
