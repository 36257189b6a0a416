"""Use cases of the directory: organisations, API keys, and who a key is.

Each function takes the ledger (``workflows/ledger.py``) first, then the
caller and the command's arguments, checks the role table through
``domain.access`` and answers plain data.
"""

from __future__ import annotations

import secrets
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from domain import access
from domain.errors import IllegalTransition
from domain.organisations import (
    Caller,
    Directory,
    KeySpec,
    OrganisationSpec,
    Principal,
    key_matches,
)
from workflows.idempotency import IdempotentRequest
from workflows.identities import BOOTSTRAP_ADMIN, DIRECTORY_ID, NAMESPACE
from workflows.ledger import Change, CommandResult, Ledger

KEY_PREFIX = "ndl_"


def directory(ledger: Ledger, caller: Caller) -> Directory:
    """The one directory (opened by the first command that needs it)."""
    try:
        found: object = ledger.load(DIRECTORY_ID)
    except AggregateNotFoundError:
        found = Directory.open(directory_id=DIRECTORY_ID, actor=caller.actor, at=ledger.clock())
    assert isinstance(found, Directory)
    return found


def organisation_names(ledger: Ledger) -> dict[str, str]:
    """Every registered organisation's name by id (explanations name organisations)."""
    try:
        found: object = ledger.load(DIRECTORY_ID)
    except AggregateNotFoundError:
        return {}
    assert isinstance(found, Directory)
    return {org: record["name"] for org, record in found.organisations.items()}


def listed_contracts(ledger: Ledger) -> dict[str, str]:
    """Every contract's code by id, as the directory lists them."""
    return dict(directory(ledger, BOOTSTRAP_ADMIN).contracts)


def register_organisation(ledger: Ledger, caller: Caller, spec: OrganisationSpec,
                          request: IdempotentRequest | None = None) -> CommandResult:
    access.require_admin(caller, "register organisations")

    def attempt() -> Change:
        found = directory(ledger, caller)
        found.register(spec, actor=caller.actor, at=ledger.clock())
        return Change([found], found, spec.id)

    return ledger.execute(caller, request, attempt, serial_key=str(DIRECTORY_ID))


def list_organisations(ledger: Ledger, caller: Caller) -> list[dict[str, str]]:
    access.require_admin(caller, "list organisations")
    return list(directory(ledger, caller).organisations.values())


def create_key(
    ledger: Ledger, caller: Caller, spec: KeySpec, request: IdempotentRequest | None = None
) -> CommandResult:
    """A new API key; the answer carries it (``extra["key"]``) once."""
    access.require_admin(caller, "create keys")

    def attempt() -> Change:
        directory(ledger, caller).require_organisations(spec.org)
        principal_id = request.derived_id(NAMESPACE, caller.principal_id) if request \
            else ledger.new_id()
        raw_key = f"{KEY_PREFIX}{principal_id.hex}_{secrets.token_urlsafe(32)}"
        principal = Principal.issue(
            principal_id=principal_id, spec=spec, raw_key=raw_key,
            actor=caller.actor, at=ledger.clock(),
        )
        extra = {"org": spec.org, "role": spec.role.value}
        return Change([principal], principal, str(principal_id), {**extra, "key": raw_key})

    return ledger.execute(caller, request, attempt)


def revoke_key(ledger: Ledger, caller: Caller, key_id: str) -> CommandResult:
    access.require_admin(caller, "revoke keys")

    def attempt() -> Change:
        principal = ledger.find(Principal, key_id, "key")
        if principal.revoked:  # a second revocation would record nothing to answer with
            raise IllegalTransition("the key is already revoked")
        principal.revoke(actor=caller.actor, at=ledger.clock())
        return Change([principal], principal, key_id)

    return ledger.execute(caller, None, attempt)


def authenticate(ledger: Ledger, raw_key: str) -> Caller | None:
    """Who the key is: the admin key, an unrevoked key, or nobody (``None``)."""
    admin_key = ledger.settings.admin_key
    if admin_key and secrets.compare_digest(raw_key, admin_key.get_secret_value()):
        return BOOTSTRAP_ADMIN
    if not raw_key.startswith(KEY_PREFIX) or len(raw_key) < len(KEY_PREFIX) + 34:
        return None
    try:
        principal_id = UUID(hex=raw_key[len(KEY_PREFIX): len(KEY_PREFIX) + 32])
        principal: object = ledger.current(principal_id)
    except (ValueError, AggregateNotFoundError):
        return None
    if not isinstance(principal, Principal) or principal.revoked:
        return None
    if not key_matches(raw_key, principal.key_hash):
        return None
    return Caller(principal_id=str(principal.id), org=principal.org, role=principal.role)
