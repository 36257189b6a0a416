"""``/v1/admin/projections``: how far each projection has got, and rebuilding one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import AdminDep, OverseerDep, ServicesDep
from api.problems import problem_responses
from api.responses import Projections, RebuildStarted, documented
from workflows.projection_control import projection_statuses, request_rebuild

router = APIRouter(prefix="/v1/admin/projections", tags=["admin"],
                   responses=problem_responses(401, 403))


@router.get("", **documented(Projections))
def list_projections(caller: OverseerDep, services: ServicesDep) -> dict[str, Any]:
    """Each projection's position, the head of the log, the lag in events and seconds."""
    return {"items": projection_statuses(services)}


@router.post("/{name}/rebuild", status_code=202, response_model=RebuildStarted,
             responses=problem_responses(404))
def rebuild_projection(name: str, caller: AdminDep, services: ServicesDep) -> dict[str, Any]:
    """Build the projection afresh beside the live one; it switches when caught up."""
    generation = request_rebuild(services, name)
    return {"name": name, "status": "rebuilding", "generation": generation}
