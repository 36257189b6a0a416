"""Every router of the API, included in one place."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from api.deps import wake_after_commands
from api.routes import (
    admin,
    admission,
    conflicts,
    conflicts_and_priorities,
    contracts,
    diff,
    directives,
    health,
    history,
    keys,
    organizations,
    webhooks,
)

# Every successful command wakes the projections, here and nowhere else.
api_router = APIRouter(dependencies=[Depends(wake_after_commands, scope="function")])
for module in (organizations, keys, contracts, directives, conflicts, admission,
               conflicts_and_priorities, history, diff, webhooks, admin, health):
    api_router.include_router(module.router)

__all__ = ["api_router"]
