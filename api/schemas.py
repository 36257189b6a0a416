"""Response shapes, for the OpenAPI document (request bodies come from ``domain.values``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class CommandResult(BaseModel):
    id: str = Field(description="The id of what was created or changed")
    version: int = Field(description="The new version of the aggregate the command changed")
    position: int = Field(description="The global position of the event it recorded")


class KeyCreated(CommandResult):
    org: str
    role: str
    key: str | None = Field(
        description="The API key, shown once; null when an idempotent repeat answers"
    )


class Items(BaseModel):
    items: list[dict[str, Any]]


class ChainAudit(BaseModel):
    verified: bool
    events: int = Field(description="How many events were checked")
    head: str = Field(description="The hash of the last event that verified")
    first_broken_version: int | None = None
    reason: str | None = None


class History(BaseModel):
    events: list[dict[str, Any]]
    next_after_version: int | None
