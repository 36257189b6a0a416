"""``/v1/webhooks`` answers: subscriptions (never their secret, except once), the delivery
log with its attempts, redelivery and recovery (SPEC §8, §9).  FastAPI validates them."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.responses import CommandResult


class WebhookOwner(BaseModel):
    org: str
    role: str


class Webhook(BaseModel):
    """A subscription as listed and shown: never its secret."""

    id: str
    url: str
    event_types: list[str]
    contracts: list[str] | None = Field(
        description="The contracts it names; null for every contract its organisation may read"
    )
    description: str
    status: str = Field(description="active or disabled")
    disabled_reason: str | None = Field(
        description="gone (the endpoint answered 410), failing (too long), by_owner"
    )
    owner: WebhookOwner
    version: int
    created_at: str
    previous_secret_until: str | None = Field(description="Until when the secret before "
                                                          "the last rotation still signs")


class WebhookCreated(Webhook):
    position: int
    secret: str | None = Field(
        description="The signing secret (whsec_…), shown once; null when an idempotent "
        "repeat answers"
    )


class SecretRotated(CommandResult):
    secret: str | None = Field(
        description="The new signing secret, shown once; the previous one signs too for 24 h"
    )


class Webhooks(BaseModel):
    items: list[Webhook]


class DeliveryAttempt(BaseModel):
    attempt: int
    at: str | None
    status_code: int | None
    duration_ms: float
    error: str | None
    response: str | None = Field(description="The first KiB of the answer")


class Delivery(BaseModel):
    id: str = Field(description="The webhook-id, the same on every attempt")
    type: str
    contract_id: str
    sequence: int
    status: str = Field(description="pending, delivered or failed")
    created_at: str | None = None
    next_attempt_at: str | None = None
    attempts: list[DeliveryAttempt]


class Deliveries(BaseModel):
    items: list[Delivery]
    next: str | None = Field(description="Pass as after= for the next page; null at the end")


class Redelivered(BaseModel):
    id: str
    status: str


class Recovered(BaseModel):
    recovered: int = Field(description="How many failed messages are sent again")
    since: str
