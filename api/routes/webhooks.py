"""``/v1/webhooks``: subscriptions (stakeholder and admin keys) and their delivery log.

Who may manage which subscription is the use cases' rule
(``workflows.subscriptions.read_subscription``): a stakeholder key manages its organisation's
subscriptions, an admin every one; any other subscription is 404.  The
secret is in the creation and rotation answers only.  Deliveries, redelivery
and recovery read and change the outbox (``workflows.webhooks.outbox``); the
sweeper sends what they make due.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query

from api.deps import CallerDep, IdempotencyDep, LedgerDep, OutboxDep, VaultDep
from api.problems import problem_responses
from api.responses import CommandResult
from api.webhook_responses import (
    Deliveries,
    Recovered,
    Redelivered,
    SecretRotated,
    Webhook,
    WebhookCreated,
    Webhooks,
)
from domain.errors import NotFound
from domain.primitives import EmptyBody
from domain.subscriptions import SubscriptionPatch, SubscriptionSpec
from workflows import subscriptions
from workflows.idempotency import IdempotentRequest
from workflows.webhooks.idempotent import once

if TYPE_CHECKING:
    pass

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"],
                   responses=problem_responses(401, 403, 404, 422))

WebhookId = Annotated[str, Path(description="The subscription's id", max_length=64)]
MessageId = Annotated[str, Path(description="The message's webhook-id", max_length=128)]


@router.post("", status_code=201, response_model=WebhookCreated)
def create_webhook(
    spec: SubscriptionSpec, caller: CallerDep, ledger: LedgerDep, vault: VaultDep,
    request: IdempotencyDep,
) -> dict[str, Any]:
    """Subscribe a URL; the answer shows the signing secret, this once.

    Refused with 422 beyond the schema: a URL whose host does not resolve or
    resolves to a private, loopback, link-local or reserved address the operator
    did not allow (the `url` error starts with `unresolvable_host:`,
    `forbidden_address:`, `malformed_url:` or `unsupported_scheme:`), and a
    contract the caller may not read (`no contract … that you may read`).
    """
    return subscriptions.create_subscription(ledger, vault, caller, spec, request).as_dict()


@router.get("", response_model=Webhooks)
def list_webhooks(caller: CallerDep, ledger: LedgerDep) -> dict[str, Any]:
    return {"items": subscriptions.list_subscriptions(ledger, caller)}


@router.get("/{webhook_id}", response_model=Webhook)
def read_webhook(webhook_id: WebhookId, caller: CallerDep, ledger: LedgerDep) -> dict[str, Any]:
    return subscriptions.read_subscription(ledger, caller, webhook_id).as_dict()


@router.patch("/{webhook_id}", response_model=CommandResult)
def update_webhook(
    webhook_id: WebhookId, patch: SubscriptionPatch, caller: CallerDep, ledger: LedgerDep
) -> dict[str, Any]:
    """Change it; `{"enabled": false}` pauses it and `{"enabled": true}` re-enables it.

    A new `url` and `contracts` are checked as at creation (422 beyond the schema).
    """
    return subscriptions.update_subscription(ledger, caller, webhook_id, patch).as_dict()


@router.delete("/{webhook_id}", response_model=CommandResult)
def delete_webhook(
    webhook_id: WebhookId, caller: CallerDep, ledger: LedgerDep, vault: VaultDep
) -> dict[str, Any]:
    return subscriptions.delete_subscription(ledger, vault, caller, webhook_id).as_dict()


@router.post("/{webhook_id}/rotate-secret", response_model=SecretRotated)
def rotate_secret(
    webhook_id: WebhookId,
    caller: CallerDep,
    ledger: LedgerDep,
    vault: VaultDep,
    request: IdempotencyDep,
    body: Annotated[EmptyBody | None, Body(description="Empty, or {}")] = None,
) -> dict[str, Any]:
    """A new secret, shown once; for 24 hours both the new and the previous one sign."""
    return subscriptions.rotate_secret(ledger, vault, caller, webhook_id, request).as_dict()


@router.get("/{webhook_id}/deliveries", response_model=Deliveries)
def list_deliveries(
    webhook_id: WebhookId,
    caller: CallerDep,
    ledger: LedgerDep,
    outbox: OutboxDep,
    status: Annotated[Literal["pending", "delivered", "failed"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[str | None, Query(max_length=128,
                                       description="The last id of the previous page")] = None,
) -> dict[str, Any]:
    """The messages sent to this subscription, oldest first, each with every attempt."""
    subscription = subscriptions.read_subscription(ledger, caller, webhook_id)
    items = outbox.log.deliveries(str(subscription.id), status=status,
                                  limit=limit + 1, after=after)
    more = len(items) > limit
    page = items[:limit]
    return {"items": page, "next": page[-1]["id"] if more else None}


@router.post("/{webhook_id}/deliveries/{message_id}/redeliver", response_model=Redelivered)
def redeliver(
    webhook_id: WebhookId,
    message_id: MessageId,
    caller: CallerDep,
    ledger: LedgerDep,
    outbox: OutboxDep,
    request: IdempotencyDep,
    body: Annotated[EmptyBody | None, Body(description="Empty, or {}")] = None,
) -> dict[str, Any]:
    """Send one message again, with its original webhook-id, as soon as the sweeper runs.

    With an `Idempotency-Key`, a repeat answers as the first time and changes nothing.
    """
    subscription = subscriptions.read_subscription(ledger, caller, webhook_id)

    def run() -> dict[str, Any]:
        if not outbox.log.redeliver(str(subscription.id), message_id, ledger.clock()):
            raise NotFound(f"no message {message_id} of webhook {webhook_id}")
        return {"id": message_id, "status": "pending"}

    return once(ledger, caller, request, subscription, run)


@router.post("/{webhook_id}/recover", response_model=Recovered)
def recover(
    webhook_id: WebhookId,
    caller: CallerDep,
    ledger: LedgerDep,
    outbox: OutboxDep,
    request: IdempotencyDep,
    since: Annotated[datetime, Query(description="Failed messages created since (ISO 8601)")],
    body: Annotated[EmptyBody | None, Body(description="Empty, or {}")] = None,
) -> dict[str, Any]:
    """Send again every failed message created since ``since``, each with its webhook-id.

    With an `Idempotency-Key`, a repeat answers the first count and sends nothing
    again; the same key with another `since` is 422.
    """
    subscription = subscriptions.read_subscription(ledger, caller, webhook_id)
    moment = since if since.tzinfo is not None else since.replace(tzinfo=UTC)
    if request is not None:  # the query is part of what the key stands for here
        request = IdempotentRequest.of(request.key, "POST", f"recover?since={moment.isoformat()}",
                                       request.fingerprint.encode())

    def run() -> dict[str, Any]:
        count = outbox.log.recover(str(subscription.id), moment, ledger.clock())
        return {"recovered": count, "since": moment.isoformat()}

    return once(ledger, caller, request, subscription, run)
