"""What routes depend on, declared once as ``Annotated`` aliases.

``CallerDep`` authenticates the ``Authorization: Bearer`` key (401 otherwise);
what the caller may do is decided by the application through ``domain.access``,
so a route never repeats an ownership check.  ``IdempotencyDep`` fingerprints
the raw body; ``IfMatchDep`` turns ``If-Match: "5"`` into an expected version.
``ReadableContractId``, ``ReadableContracts``, ``OverseerDep`` and ``AdminDep``
authorise view reads; ``PointInTimeDep`` and ``FreshnessDep`` parse how a view
is asked for (replayed, or live and at least this fresh).  ``wake_after_commands``
is the one place a successful command wakes the projections.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic.json_schema import SkipJsonSchema

from api.metrics import COMMAND_METHODS
from api.projected_reads import (
    DEFAULT_WAIT_SECONDS,
    MAX_WAIT_SECONDS,
    Freshness,
    ProjectedReads,
)
from api.replays import ReplayTurns, replay_turns
from api.shared_runs import shared_on
from domain import access
from domain.errors import Forbidden, ValidationFailed
from domain.organisations import Caller
from workflows import contracts, directory
from workflows.bootstrap import Services
from workflows.explanations import in_language
from workflows.i18n import negotiate
from workflows.idempotency import IdempotentRequest
from workflows.ledger import Ledger
from workflows.projection_control import wake_projections
from workflows.webhooks.outbox import Outbox
from workflows.webhooks.vault import SecretVault

log = logging.getLogger("threadneedle.api")

MAX_INTEGER = 2**63 - 1
"""The largest integer a query may carry: the store's positions and versions are 64-bit."""
ENTITY_TAG = re.compile(r'^(?:W/)?"(\d{1,18})"$|^(\d{1,18})$')
IDEMPOTENCY_KEY = r"^[\x21-\x7e]{1,255}$"
IF_MATCH = r'^\s*(\*|(W/)?"\d{1,18}"|\d{1,18})\s*$'

ContractId = Annotated[str, Path(description="The contract's UUID", max_length=64)]
DirectiveId = Annotated[str, Path(description="The directive's id", max_length=64)]
ConflictId = Annotated[str, Path(description="The conflict's id", max_length=128)]

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer <key>`")


# Dependencies that only read the request are ``async``: FastAPI runs a plain ``def``
# dependency on the thread pool, one hop per dependency per request, which showed as
# the largest share of a command's time in the command-path profile.


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
"""The whole container: for the projection controls, which wake and read several parts."""


async def get_replay_turns(request: Request) -> ReplayTurns:
    return replay_turns(request.app.state)


ReplaysDep = Annotated[ReplayTurns, Depends(get_replay_turns)]
"""Where a route runs a replay (``api/replays.py``): its turn on the replay threads."""


# One part each: built once by the composition root (``workflows/bootstrap.py``); the
# webhook parts are built when the app is made (``api/main.py``), not in a request.


async def get_ledger(services: ServicesDep) -> Ledger:
    return services.ledger


LedgerDep = Annotated[Ledger, Depends(get_ledger)]


async def get_outbox(services: ServicesDep) -> Outbox:
    return services.outbox


OutboxDep = Annotated[Outbox, Depends(get_outbox)]


async def get_vault(services: ServicesDep) -> SecretVault:
    return services.vault


VaultDep = Annotated[SecretVault, Depends(get_vault)]


async def get_caller(
    request: Request,
    ledger: LedgerDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    unauthenticated = {"WWW-Authenticate": 'Bearer realm="threadneedle"'}
    if credentials is None:
        raise HTTPException(401, "send an API key as 'Authorization: Bearer <key>'",
                            headers=unauthenticated)
    caller = await authenticated(request.app.state, ledger, credentials.credentials)
    if caller is None:
        raise HTTPException(401, "the API key is unknown or revoked", headers=unauthenticated)
    return caller


async def authenticated(state: Any, ledger: Ledger, key: str) -> Caller | None:
    """The caller this key stands for, or None (unknown, revoked, or not ASCII: keys are
    ASCII, and the admin key's compare needs it).  Shared with the other requests asking."""
    if not key.isascii():
        return None
    caller: Caller | None = await shared_on(state, "authenticate", ledger, authenticate_keys)(key)
    return caller


def authenticate_keys(ledger: Ledger, keys: frozenset[str]) -> dict[str, Any]:
    """``directory.authenticate`` of each key; a key's error is its answer."""
    answers: dict[str, Any] = {}
    for key in keys:
        try:
            answers[key] = directory.authenticate(ledger, key)
        except Exception as error:  # a store outage, say: that request answers with it
            answers[key] = error
    return answers


CallerDep = Annotated[Caller, Depends(get_caller)]


async def get_idempotent_request(
    request: Request,
    idempotency_key: Annotated[
        str | SkipJsonSchema[None],  # a header is absent or a string, never null
        Header(alias="Idempotency-Key", pattern=IDEMPOTENCY_KEY,
               json_schema_extra={"pattern": IDEMPOTENCY_KEY},  # SkipJsonSchema drops it
               description="Repeat a command safely: same key and body → the first answer."),
    ] = None,
) -> IdempotentRequest | None:
    if idempotency_key is None:
        return None
    body = await request.body()  # already read and cached by FastAPI for the body parameter
    return IdempotentRequest.of(idempotency_key, request.method, request.url.path, body)


IdempotencyDep = Annotated[IdempotentRequest | None, Depends(get_idempotent_request)]


async def get_expected_version(
    if_match: Annotated[
        str | SkipJsonSchema[None],
        Header(alias="If-Match", max_length=64,
               # Documented, not enforced here: get_expected_version refuses with a clearer
               # message; the document must not promise that any string is accepted.
               json_schema_extra={"pattern": IF_MATCH},
               description='The contract version the change is based on, as its ETag: "5".'),
    ] = None,
) -> int | None:
    return parse_if_match(if_match)


def parse_if_match(if_match: str | None) -> int | None:
    """``"5"`` (or ``W/"5"``, ``5``) -> 5; absent or ``*`` -> None; else ``ValidationFailed``."""
    if if_match is None or if_match.strip() == "*":
        return None
    match = ENTITY_TAG.match(if_match.strip())
    if match is None:
        raise ValidationFailed([("If-Match", 'must be one entity tag such as "5"')])
    return int(match.group(1) or match.group(2))


IfMatchDep = Annotated[int | None, Depends(get_expected_version)]


def etag(version: int) -> str:
    return f'"{version}"'


async def wake_after_commands(request: Request, services: ServicesDep) -> AsyncIterator[None]:
    """After a command succeeded (and before it answers), wake the projections.

    Installed once on the API router; a command that raised never gets here.
    Waking is de-duplicated and never fails a command (see ``wake_projections``);
    its Redis calls run on the thread pool, after commands, and once for all the
    commands that finished while a wake was under way (``SharedRuns``).
    """
    yield
    if request.method in COMMAND_METHODS:
        await wake(request.app.state, services)


async def wake(state: Any, services: Services) -> None:
    """Wake the projections after a command (shared with the other commands finishing).

    Never raises: the command has committed, so an error here (one ``wake_projections``
    does not expect, say while Redis or the broker restarts) is logged and the command
    still answers.  A lost wake only delays the views until the next wake or beat's run.
    """
    try:
        await shared_on(state, "wake", services, wake_all)(None)
    except Exception:
        log.exception("the projections were not woken after a command")


def wake_all(services: Services, _: frozenset[None]) -> dict[None, None]:
    wake_projections(services)
    return {None: None}


# --- authorising view reads ------------------------------------------------------


def get_readable_contract_id(
    contract_id: ContractId, caller: CallerDep, ledger: LedgerDep
) -> str:
    """The contract's id, once the caller is one of its readers (404 for anyone else)."""
    return str(contracts.read_contract(ledger, caller, contract_id).id)


ReadableContractId = Annotated[str, Depends(get_readable_contract_id)]


def get_readable_contracts(caller: CallerDep, ledger: LedgerDep) -> frozenset[str]:
    return contracts.readable_contract_ids(ledger, caller)


ReadableContracts = Annotated[frozenset[str], Depends(get_readable_contracts)]


def get_overseer(caller: CallerDep) -> Caller:
    if caller.role not in access.EVERYTHING:
        raise Forbidden("only an admin or a supervisor may see the projections")
    return caller


OverseerDep = Annotated[Caller, Depends(get_overseer)]


def get_admin(caller: CallerDep) -> Caller:
    access.require_admin(caller, "rebuild projections")
    return caller


AdminDep = Annotated[Caller, Depends(get_admin)]


# --- how a view is asked for -------------------------------------------------------


@dataclass(frozen=True)
class PointInTime:
    """``?version=`` or ``?as_of=``: a past state, replayed from the event store."""

    version: int | None = None
    as_of: datetime | None = None

    @property
    def given(self) -> bool:
        return self.version is not None or self.as_of is not None


def get_point_in_time(
    version: Annotated[int | None, Query(ge=1, le=MAX_INTEGER, description="A past version")
                       ] = None,
    as_of: Annotated[datetime | None, Query(description="A past time (ISO 8601)")] = None,
) -> PointInTime:
    if version is not None and as_of is not None:
        raise ValidationFailed([("version", "give either version or as_of, not both")])
    if as_of is not None:
        try:  # 9999-12-31T23:59:59-23:59 is valid ISO 8601 but past the end of time in UTC
            as_of.astimezone(UTC)
        except (OverflowError, ValueError):
            raise ValidationFailed([("query.as_of", "must be a time between the years 1 and 9999 "
                                     "in UTC")]) from None
    return PointInTime(version, as_of)


PointInTimeDep = Annotated[PointInTime, Depends(get_point_in_time)]


def get_freshness(
    min_position: Annotated[int | None, Query(
        ge=0, le=MAX_INTEGER,
        description="Wait until the view includes the event at this position")] = None,
    wait: Annotated[float, Query(
        ge=0, le=MAX_WAIT_SECONDS, description="Seconds to wait for min_position")
    ] = DEFAULT_WAIT_SECONDS,
) -> Freshness:
    return Freshness(min_position, wait)


FreshnessDep = Annotated[Freshness, Depends(get_freshness)]


def get_projected_reads(services: ServicesDep) -> ProjectedReads:
    return ProjectedReads(services.redis)


ProjectedReadsDep = Annotated[ProjectedReads, Depends(get_projected_reads)]


# SPEC §12: ``explanation`` is the English one unless Accept-Language prefers Chinese.
AcceptLanguage = Annotated[str | SkipJsonSchema[None], Header(
    alias="Accept-Language", max_length=500,
    description="zh prefers the Chinese explanation; anything else gives the English one")]


def in_accepted_language(records: list[dict[str, Any]],
                         accept: str | None) -> list[dict[str, Any]]:
    """Conflict records whose ``explanation`` is in the language ``accept`` prefers."""
    language = negotiate(accept, default="en")
    if language == "en":
        return records
    return [in_language(record, language) for record in records]
