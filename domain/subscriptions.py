"""Webhook subscriptions (SPEC §8, issue 5): who is told what, where, signed with which secret.

A ``Subscription`` is an aggregate in the event store, like a contract: its
owner (the organisation and role of the key that made it), the URL, the event
types it wants (as ``check_event_types`` stores them), the contracts it names
(``None``: every contract its organisation may read), a description, whether it
is enabled, and its signing secrets.

Signing needs the secret itself, so the secret is kept (not a hash), but
never in clear: the application seals it (``workflows.webhooks.vault``:
encrypted under a data key of its own, which is destroyed when the secret is
retired) and the events hold only the sealed form, which this module treats
as opaque.  Events recorded before sealing existed hold the secret as a
plain string: ``sealed`` reads them as ``{"clear": …}`` (a read-time upcast,
in ``apply``; not the library's ``upcast_v1_v2`` hooks, which would change
``data`` and break the hash chain, which covers ``data`` as recorded).  The
secret is shown to the caller once, by the application; ``as_dict`` never
shows it.
A rotation keeps the previous secret for ``ROTATION_OVERLAP`` so that both
sign meanwhile and a receiver can switch without losing a message.

``SubscriptionRegistry`` (one aggregate with a fixed id) lists the live
subscriptions with their owner organisation, so that listing and dispatching
need not scan the store; it is saved in the same transaction as the
subscription's creation or deletion.

Everything here is pure: secrets, ids and times come in as arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

from pydantic import Field, StrictBool

from domain.chain import ChainedAggregate
from domain.errors import NotFound, ValidationFailed
from domain.organisations import Actor, Caller, Role
from domain.primitives import Change, Strict
from domain.webhooks import SubscriptionFilter, check_event_types

ENABLED, DISABLED, DELETED = "enabled", "disabled", "deleted"
GONE, FAILING, BY_OWNER = "gone", "failing", "by_owner"
DISABLED_REASONS = frozenset({GONE, FAILING, BY_OWNER})
"""``gone``: the endpoint answered 410; ``failing``: it failed for too long; ``by_owner``."""
ROTATION_OVERLAP = timedelta(hours=24)
"""How long the previous secret still signs after a rotation (SPEC §8)."""
EDITABLE = ("url", "event_types", "contracts", "description")
CLEAR = "clear"
Sealed = Mapping[str, str]
"""A sealed secret (``{"key", "nonce", "sealed"}``), or ``{"clear": …}`` read from an event
recorded before secrets were sealed."""


# --- request bodies: a new subscription and a change to one ---------------------------

WebhookUrl = Annotated[str, Field(min_length=1, max_length=2048)]
EventTypePattern = Annotated[str, Field(min_length=1, max_length=64)]
ContractRef = Annotated[str, Field(min_length=1, max_length=64)]
Description = Annotated[str, Field(max_length=500)]
NOT_NULL_IN_A_CHANGE = ("url", "event_types", "enabled")


class SubscriptionSpec(Strict):
    """``POST /v1/webhooks``: where to send which messages (SPEC §9).

    ``event_types`` are checked against the §8 types by the domain
    (``check_event_types``); ``contracts`` omitted or ``null`` means every
    contract the organisation may read.  The URL is checked by the SSRF guard.
    """

    url: WebhookUrl
    event_types: list[EventTypePattern] = Field(min_length=1, max_length=50)
    contracts: list[ContractRef] | None = Field(default=None, max_length=200)
    description: Description = ""


class SubscriptionPatch(Change):
    """``PATCH /v1/webhooks/{id}``: any of the spec's fields, and ``enabled`` to switch it.

    ``{"enabled": true}`` re-enables a subscription that was disabled (by its
    owner, after a 410 or after failing too long); ``contracts: null`` widens
    it to every readable contract.
    """

    not_clearable = frozenset(NOT_NULL_IN_A_CHANGE)

    url: WebhookUrl | None = None
    event_types: list[EventTypePattern] | None = Field(default=None, min_length=1, max_length=50)
    contracts: list[ContractRef] | None = Field(default=None, max_length=200)
    description: Description | None = None
    enabled: StrictBool | None = None


def sealed(recorded: str | Mapping[str, str]) -> dict[str, str]:
    """A secret as an event recorded it: sealed as is, an old clear string as ``{"clear"}``."""
    return {CLEAR: recorded} if isinstance(recorded, str) else dict(recorded)


def normalised_contracts(contracts: Iterable[str] | None) -> list[str] | None:
    """Contract ids as the filter compares them (canonical UUID text, no repeats).

    A reference that is not a UUID cannot name a contract, so it is refused
    with the same message as a contract the caller may not read.
    """
    if contracts is None:
        return None
    canonical: list[str] = []
    for reference in contracts:
        try:
            canonical.append(str(UUID(reference)))
        except ValueError:
            raise ValidationFailed([("contracts", f"no contract {reference} that you may read")]) \
                from None
    return list(dict.fromkeys(canonical))


class Subscription(ChainedAggregate):
    """One webhook subscription: its filter, its endpoint, its state and its secrets."""

    if TYPE_CHECKING:  # set by the Subscribed event
        owner: dict[str, str]
        url: str
        event_types: list[str]
        contracts: list[str] | None
        description: str
        secret: dict[str, str]

    def __init__(self) -> None:
        self.status = ENABLED
        self.disabled_reason: str | None = None
        self.previous_secret: dict[str, str] | None = None
        self.previous_secret_until: str | None = None

    class Subscribed(ChainedAggregate.Created):
        def apply(self, subscription: Subscription) -> None:
            subscription.owner = dict(self.data["owner"])
            subscription.secret = sealed(self.data["secret"])
            for name in EDITABLE:
                setattr(subscription, name, self.data[name])

    class Changed(ChainedAggregate.Event):
        def apply(self, subscription: Subscription) -> None:
            for name, value in self.data.items():
                setattr(subscription, name, value)

    class Disabled(ChainedAggregate.Event):
        def apply(self, subscription: Subscription) -> None:
            subscription.status = DISABLED
            subscription.disabled_reason = self.data["reason"]

    class Enabled(ChainedAggregate.Event):
        def apply(self, subscription: Subscription) -> None:
            subscription.status = ENABLED
            subscription.disabled_reason = None

    class SecretRotated(ChainedAggregate.Event):
        def apply(self, subscription: Subscription) -> None:
            subscription.previous_secret = subscription.secret
            subscription.previous_secret_until = self.data["previous_secret_until"]
            subscription.secret = sealed(self.data["secret"])

    class Deleted(ChainedAggregate.Event):
        def apply(self, subscription: Subscription) -> None:
            subscription.status = DELETED

    # --- commands -----------------------------------------------------------------

    @classmethod
    def subscribe(
        cls,
        *,
        subscription_id: UUID,
        owner: Caller,
        url: str,
        event_types: Iterable[str],
        contracts: Iterable[str] | None,
        description: str,
        secret: Sealed,
        actor: Actor,
        at: datetime,
    ) -> Subscription:
        """A new, enabled subscription; ``event_types`` unknown to §8 are refused.

        ``secret`` is sealed (``workflows.webhooks.vault``); a clear string is refused, so
        that no new event holds a secret in clear.
        """
        _require_sealed(secret)
        data = {
            "owner": {"org": owner.org, "role": owner.role.value},
            "url": url,
            "event_types": check_event_types(event_types),
            "contracts": normalised_contracts(contracts),
            "description": description,
            "secret": dict(secret),
        }
        subscription: Subscription = cls._start(
            cls.Subscribed, id=subscription_id, actor=actor, at=at, data=data
        )
        return subscription

    def change(self, changes: Mapping[str, Any], *, actor: Actor, at: datetime) -> None:
        """Change any of ``url``, ``event_types``, ``contracts``, ``description``.

        Only the fields whose value differs are recorded; no difference, no event.
        """
        self._require_live()
        unknown = set(changes) - set(EDITABLE)
        if unknown:
            raise ValueError(f"not a field a subscription change may set: {sorted(unknown)}")
        wanted = dict(changes)
        if "event_types" in wanted:
            wanted["event_types"] = check_event_types(wanted["event_types"])
        if "contracts" in wanted:
            wanted["contracts"] = normalised_contracts(wanted["contracts"])
        different = {name: value for name, value in wanted.items()
                     if getattr(self, name) != value}
        if different:
            self._record(self.Changed, actor=actor, at=at, data=different)

    def disable(self, reason: str, *, actor: Actor, at: datetime) -> None:
        """Stop delivering; a disabled subscription keeps the first reason it was given."""
        self._require_live()
        if reason not in DISABLED_REASONS:
            raise ValueError(f"unknown reason to disable a subscription: {reason}")
        if self.status == ENABLED:
            self._record(self.Disabled, actor=actor, at=at, data={"reason": reason})

    def enable(self, *, actor: Actor, at: datetime) -> None:
        """Deliver again, whatever disabled it (an owner fixed the endpoint)."""
        self._require_live()
        if self.status == DISABLED:
            self._record(self.Enabled, actor=actor, at=at, data={})

    def rotate_secret(self, new_secret: Sealed, *, actor: Actor, at: datetime) -> None:
        """Sign with ``new_secret`` (sealed) from now on, and with the current one too for a
        day.

        A second rotation within the overlap drops the oldest secret: at most two sign.
        """
        self._require_live()
        _require_sealed(new_secret)
        if dict(new_secret) == self.secret:
            raise ValueError("a rotation needs a new secret")
        until = (at + ROTATION_OVERLAP).isoformat()
        self._record(self.SecretRotated, actor=actor, at=at,
                     data={"secret": dict(new_secret), "previous_secret_until": until})

    def delete(self, *, actor: Actor, at: datetime) -> None:
        self._require_live()
        self._record(self.Deleted, actor=actor, at=at, data={})

    # --- queries ------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        return self.status == ENABLED

    @property
    def deleted(self) -> bool:
        return self.status == DELETED

    def signing_secrets(self, now: datetime) -> list[dict[str, str]]:
        """The (sealed) secrets that sign a message sent at ``now``: current first, then the
        previous one while the rotation's overlap lasts."""
        secrets = [self.secret]
        if self.previous_secret and self.previous_secret_until \
                and now < datetime.fromisoformat(self.previous_secret_until):
            secrets.append(self.previous_secret)
        return secrets

    def filter(self) -> SubscriptionFilter:
        """What the dispatcher matches messages against (owner, types, contracts)."""
        owner = Caller(principal_id=f"subscription:{self.id}", org=self.owner["org"],
                       role=Role(self.owner["role"]))
        contracts = frozenset(self.contracts) if self.contracts is not None else None
        return SubscriptionFilter(owner, tuple(self.event_types), contracts)

    def as_dict(self) -> dict[str, Any]:
        """The subscription as the API shows it: never a secret.

        SPEC §9 names the statuses ``active`` and ``disabled``; the aggregate's
        own ``status`` says ``enabled`` for ``active``.
        """
        return {
            "id": str(self.id),
            "url": self.url,
            "event_types": list(self.event_types),
            "contracts": list(self.contracts) if self.contracts is not None else None,
            "description": self.description,
            "status": "active" if self.enabled else self.status,
            "disabled_reason": self.disabled_reason,
            "owner": dict(self.owner),
            "version": self.version,
            "created_at": self.created_on.isoformat(),
            "previous_secret_until": self.previous_secret_until,
        }

    def _require_live(self) -> None:
        if self.deleted:
            raise NotFound(f"no webhook subscription {self.id}")


def _require_sealed(secret: Sealed) -> None:
    if isinstance(secret, str) or not secret or CLEAR in secret \
            or not {"key", "nonce", "sealed"} <= set(secret):
        raise ValueError("a subscription's signing secret must be sealed, never in clear")


class SubscriptionRegistry(ChainedAggregate):
    """Every live subscription's id and owner organisation, in creation order."""

    def __init__(self) -> None:
        self.subscriptions: dict[str, str] = {}  # subscription id -> owner org

    class Opened(ChainedAggregate.Created):
        pass

    class Listed(ChainedAggregate.Event):
        def apply(self, registry: SubscriptionRegistry) -> None:
            registry.subscriptions[self.data["id"]] = self.data["org"]

    class Removed(ChainedAggregate.Event):
        def apply(self, registry: SubscriptionRegistry) -> None:
            registry.subscriptions.pop(self.data["id"], None)

    @classmethod
    def open(cls, *, registry_id: UUID, actor: Actor, at: datetime) -> SubscriptionRegistry:
        registry: SubscriptionRegistry = cls._start(
            cls.Opened, id=registry_id, actor=actor, at=at, data={}
        )
        return registry

    def add(self, subscription: Subscription, *, actor: Actor, at: datetime) -> None:
        self._record(self.Listed, actor=actor, at=at,
                     data={"id": str(subscription.id), "org": subscription.owner["org"]})

    def remove(self, subscription_id: UUID, *, actor: Actor, at: datetime) -> None:
        if str(subscription_id) in self.subscriptions:
            self._record(self.Removed, actor=actor, at=at, data={"id": str(subscription_id)})

    def ids(self, org: str | None = None) -> list[str]:
        """The live subscriptions' ids, of one organisation or (``None``) of all."""
        return [sid for sid, owner in self.subscriptions.items() if org is None or owner == org]
