"""What routes depend on, declared once as ``Annotated`` aliases.

``CallerDep`` authenticates the ``Authorization: Bearer`` key (401 otherwise);
what the caller may do is decided by the application through ``domain.access``,
so a route never repeats an ownership check.  ``IdempotencyDep`` fingerprints
the raw body; ``IfMatchDep`` turns ``If-Match: "5"`` into an expected version.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from domain.errors import ValidationFailed
from domain.organisations import Caller
from workflows.bootstrap import Services
from workflows.idempotency import IdempotentRequest

ENTITY_TAG = re.compile(r'^(?:W/)?"(\d{1,18})"$|^(\d{1,18})$')
IDEMPOTENCY_KEY = r"^[\x21-\x7e]{1,255}$"

ContractId = Annotated[str, Path(description="The contract's UUID", max_length=64)]
DirectiveId = Annotated[str, Path(description="The directive's id", max_length=64)]

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer <key>`")


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_caller(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    unauthenticated = {"WWW-Authenticate": 'Bearer realm="threadneedle"'}
    if credentials is None:
        raise HTTPException(401, "send an API key as 'Authorization: Bearer <key>'",
                            headers=unauthenticated)
    caller = services.app.authenticate(credentials.credentials)
    if caller is None:
        raise HTTPException(401, "the API key is unknown or revoked", headers=unauthenticated)
    return caller


CallerDep = Annotated[Caller, Depends(get_caller)]


async def get_idempotent_request(
    request: Request,
    idempotency_key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", pattern=IDEMPOTENCY_KEY,
               description="Repeat a command safely: same key and body → the first answer."),
    ] = None,
) -> IdempotentRequest | None:
    if idempotency_key is None:
        return None
    body = await request.body()  # already read and cached by FastAPI for the body parameter
    return IdempotentRequest.of(idempotency_key, request.method, request.url.path, body)


IdempotencyDep = Annotated[IdempotentRequest | None, Depends(get_idempotent_request)]


def get_expected_version(
    if_match: Annotated[
        str | None,
        Header(alias="If-Match", max_length=64,
               description='The contract version the change is based on, as its ETag: "5".'),
    ] = None,
) -> int | None:
    if if_match is None or if_match.strip() == "*":
        return None
    match = ENTITY_TAG.match(if_match.strip())
    if match is None:
        raise ValidationFailed([("If-Match", 'must be one entity tag such as "5"')])
    return int(match.group(1) or match.group(2))


IfMatchDep = Annotated[int | None, Depends(get_expected_version)]


def etag(version: int) -> str:
    return f'"{version}"'
