"""Every router of the API, included in one place."""

from __future__ import annotations

from fastapi import APIRouter

from api.routes import contracts, directives, health, history, keys, organizations

api_router = APIRouter()
for module in (organizations, keys, contracts, directives, history, health):
    api_router.include_router(module.router)

__all__ = ["api_router"]
