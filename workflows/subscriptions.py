"""Use cases of webhook subscriptions: subscribe, list, read, change, delete,
rotate the secret; and what the webhook workers read and record.

Owner = the organisation of the key that subscribed; admins manage every
subscription, stakeholder keys those of their organisation (another
organisation's, or one an admin made, is "not found").  Resolver and
supervisor keys manage none.  Secrets are shown once: never kept in an
idempotency record, so a repeat answers ``secret: null``.  They are kept
sealed by the secret vault (``workflows/webhooks/vault.py``), which the
commands that make or retire a secret take as an argument.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from domain import access
from domain.contract import ServiceContract
from domain.errors import Forbidden, NotFound, ValidationFailed
from domain.organisations import Caller, Role
from domain.subscriptions import (
    BY_OWNER,
    Subscription,
    SubscriptionPatch,
    SubscriptionRegistry,
    SubscriptionSpec,
    normalised_contracts,
)
from workflows.idempotency import IdempotentRequest
from workflows.identities import (
    SUBSCRIPTION_NAMESPACE,
    SUBSCRIPTION_REGISTRY_ID,
    WEBHOOK_DELIVERY,
)
from workflows.ledger import Change, CommandResult, Ledger
from workflows.webhooks.signing import secret_from_bytes
from workflows.webhooks.ssrf import (
    Resolver,
    UnsafeUrl,
    check_url,
    parse_allowed_cidrs,
    system_resolver,
)
from workflows.webhooks.vault import SecretVault

# --- the owner's commands ------------------------------------------------------------


def create_subscription(
    ledger: Ledger, vault: SecretVault, caller: Caller, spec: SubscriptionSpec,
    request: IdempotentRequest | None = None, *, resolver: Resolver = system_resolver,
) -> CommandResult:
    """Subscribe ``spec.url``; the answer carries the new secret (``extra["secret"]``) once."""
    _require_webhook_role(caller)
    _check_webhook_url(ledger, spec.url, resolver)
    shown: dict[str, str] = {}

    def attempt() -> Change:
        _check_subscribed_contracts(ledger, caller, spec.contracts)
        subscription_id = request.derived_id(SUBSCRIPTION_NAMESPACE, caller.principal_id) \
            if request else ledger.new_id()
        secret = secret_from_bytes(secrets.token_bytes(32))
        at = ledger.clock()
        subscription = Subscription.subscribe(
            subscription_id=subscription_id, owner=caller, url=spec.url,
            event_types=spec.event_types, contracts=spec.contracts,
            description=spec.description, actor=caller.actor, at=at,
            secret=vault.seal(secret, str(subscription_id)),  # never in clear
        )
        registry = _registry(ledger, caller)
        registry.add(subscription, actor=caller.actor, at=at)
        shown["secret"] = secret
        return Change([subscription, registry], subscription, str(subscription_id),
                      subscription.as_dict())

    result = ledger.execute(caller, request, attempt, serial_key=str(SUBSCRIPTION_REGISTRY_ID))
    secret = None if result.replayed else shown.get("secret")
    return replace(result, extra={**(result.extra or {}), "secret": secret})


def list_subscriptions(ledger: Ledger, caller: Caller) -> list[dict[str, Any]]:
    """The subscriptions the caller manages, oldest first, without secrets."""
    _require_webhook_role(caller)
    org = None if caller.role is Role.ADMIN else caller.org
    found = []
    for subscription_id in _registry(ledger, caller).ids(org):
        subscription = ledger.find(Subscription, subscription_id, "webhook subscription")
        if _manages(caller, subscription):
            found.append(subscription.as_dict())
    return found


def read_subscription(ledger: Ledger, caller: Caller, subscription_id: str) -> Subscription:
    """One subscription the caller manages (404 for any other, or a deleted one)."""
    _require_webhook_role(caller)
    return _manageable(ledger, caller, subscription_id)


def update_subscription(
    ledger: Ledger, caller: Caller, subscription_id: str, patch: SubscriptionPatch, *,
    resolver: Resolver = system_resolver,
) -> CommandResult:
    """Change the URL, types, contracts or description; ``enabled`` disables or
    re-enables it.  A new URL is checked like a new subscription's."""
    _require_webhook_role(caller)
    given = patch.model_dump(include=patch.model_fields_set)
    if "url" in given:
        _check_webhook_url(ledger, given["url"], resolver)
    enabled = given.pop("enabled", None)

    def act(subscription: Subscription) -> None:
        if "contracts" in given:
            _check_subscribed_contracts(ledger, caller, given["contracts"])
        at = ledger.clock()
        subscription.change(given, actor=caller.actor, at=at)
        if enabled is True:
            subscription.enable(actor=caller.actor, at=at)
        elif enabled is False:
            subscription.disable(BY_OWNER, actor=caller.actor, at=at)

    return _on_subscription(ledger, caller, subscription_id, act)


def delete_subscription(
    ledger: Ledger, vault: SecretVault, caller: Caller, subscription_id: str
) -> CommandResult:
    """Delete: nothing more is sent, and the subscription is gone from every list."""
    _require_webhook_role(caller)

    def attempt() -> Change:
        subscription = _manageable(ledger, caller, subscription_id)
        at = ledger.clock()
        subscription.delete(actor=caller.actor, at=at)
        registry = _registry(ledger, caller)
        registry.remove(subscription.id, actor=caller.actor, at=at)
        return Change([subscription, registry], subscription, str(subscription.id))

    result = ledger.execute(caller, None, attempt, serial_key=str(SUBSCRIPTION_REGISTRY_ID))
    deleted = load_subscription(ledger, result.id)  # its secrets are destroyed with it
    vault.destroy([deleted.secret, deleted.previous_secret], ledger.clock())
    return result


def rotate_secret(ledger: Ledger, vault: SecretVault, caller: Caller, subscription_id: str,
                  request: IdempotentRequest | None = None) -> CommandResult:
    """A new secret, shown once; the previous one signs too for 24 hours."""
    _require_webhook_role(caller)
    shown: dict[str, str] = {}
    retired: dict[str, Any] = {}

    def act(subscription: Subscription) -> None:
        secret = secret_from_bytes(secrets.token_bytes(32))
        retired.update(current=subscription.secret, older=subscription.previous_secret)
        subscription.rotate_secret(vault.seal(secret, str(subscription.id)),
                                   actor=caller.actor, at=ledger.clock())
        retired["until"] = subscription.previous_secret_until
        shown["secret"] = secret

    result = _on_subscription(ledger, caller, subscription_id, act, request=request)
    if retired and not result.replayed:  # saved: the retired secrets' keys are destroyed
        vault.destroy([retired["older"]], ledger.clock())
        vault.destroy_after(retired["current"], datetime.fromisoformat(retired["until"]))
    secret = None if result.replayed else shown.get("secret")
    return replace(result, extra={**(result.extra or {}), "secret": secret})


# --- for the webhook workers -----------------------------------------------------------


def listed_subscriptions(ledger: Ledger) -> list[Subscription]:
    """For the dispatcher: every subscription not deleted, enabled or not, oldest first."""
    registry = _registry(ledger, WEBHOOK_DELIVERY)
    return [ledger.find(Subscription, sid, "webhook subscription") for sid in registry.ids()]


def active_subscriptions(ledger: Ledger) -> list[Subscription]:
    """Every enabled subscription, oldest first."""
    return [subscription for subscription in listed_subscriptions(ledger)
            if subscription.enabled]


def load_subscription(ledger: Ledger, subscription_id: str | UUID) -> Subscription:
    """For the workers: a subscription as stored, whatever its status (deleted included)."""
    subscription: Subscription = ledger.find(Subscription, subscription_id,
                                             "webhook subscription")
    return subscription


def disable_subscription(
    ledger: Ledger, subscription_id: str | UUID, reason: str
) -> CommandResult:
    """For the workers: disable after a 410 (``gone``) or too long failing (``failing``).

    Already disabled or deleted: nothing is recorded (the first reason stays).
    """
    def act(subscription: Subscription) -> None:
        if not subscription.deleted:
            subscription.disable(reason, actor=WEBHOOK_DELIVERY.actor, at=ledger.clock())

    return _on_subscription(ledger, WEBHOOK_DELIVERY, str(subscription_id), act,
                            include_deleted=True)


# --- helpers ---------------------------------------------------------------------------


class _Unchanged(Exception):  # a signal, not an error
    """A subscription command that changed nothing: answer its current version."""

    def __init__(self, subscription: Subscription) -> None:
        super().__init__(str(subscription.id))
        self.subscription = subscription


def _on_subscription(ledger: Ledger, caller: Caller, subscription_id: str,
                     act: Callable[[Subscription], None], *,
                     request: IdempotentRequest | None = None,
                     include_deleted: bool = False) -> CommandResult:
    """Load a subscription the caller manages, let ``act`` change it, save.

    A command that changes nothing (re-enabling an enabled subscription)
    answers the current version and records nothing.
    """
    def attempt() -> Change:
        if include_deleted:
            subscription = load_subscription(ledger, subscription_id)
        else:
            subscription = _manageable(ledger, caller, subscription_id)
        act(subscription)
        if not subscription.pending_events:
            raise _Unchanged(subscription)
        return Change([subscription], subscription, str(subscription.id))

    try:
        return ledger.execute(caller, request, attempt, serial_key=subscription_id)
    except _Unchanged as unchanged:
        current = unchanged.subscription
        return CommandResult(str(current.id), current.version,
                             ledger.position_of(current.id, current.version))


def _require_webhook_role(caller: Caller) -> None:
    if caller.role not in (Role.ADMIN, Role.STAKEHOLDER):
        raise Forbidden("only stakeholder and admin keys manage webhook subscriptions")


def _manages(caller: Caller, subscription: Subscription) -> bool:
    if subscription.deleted:
        return False
    if caller.role is Role.ADMIN:
        return True
    return subscription.owner == {"org": caller.org, "role": caller.role.value}


def _manageable(ledger: Ledger, caller: Caller, subscription_id: str) -> Subscription:
    subscription: Subscription = ledger.find(Subscription, subscription_id,
                                             "webhook subscription")
    if not _manages(caller, subscription):
        raise NotFound(f"no webhook subscription {subscription_id}")
    return subscription


def _check_webhook_url(ledger: Ledger, url: str, resolver: Resolver) -> None:
    """The SSRF guard at subscription time: ``UnsafeUrl`` → 422 on ``url``."""
    allowed = parse_allowed_cidrs(ledger.settings.webhook_allowed_cidrs)
    try:
        check_url(url, allowed, resolver)
    except UnsafeUrl as error:
        raise ValidationFailed([("url", f"{error.reason}: {error.detail}")]) from None


def _check_subscribed_contracts(
    ledger: Ledger, caller: Caller, contracts: list[str] | None
) -> None:
    """A subscription may name only contracts its caller may read (else 422, as if unknown)."""
    for reference in normalised_contracts(contracts) or []:
        try:
            contract = ledger.find(ServiceContract, reference, "contract")
        except NotFound:
            contract = None
        if contract is None or not access.can_read(caller, contract):
            raise ValidationFailed(
                [("contracts", f"no contract {reference} that you may read")])


def _registry(ledger: Ledger, caller: Caller) -> SubscriptionRegistry:
    try:
        registry: object = ledger.repository.get(SUBSCRIPTION_REGISTRY_ID)
    except AggregateNotFoundError:
        registry = SubscriptionRegistry.open(
            registry_id=SUBSCRIPTION_REGISTRY_ID, actor=caller.actor, at=ledger.clock())
    assert isinstance(registry, SubscriptionRegistry)
    return registry
