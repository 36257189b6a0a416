"""``POST /v1/contracts/{id}/directives`` answered without FastAPI's routing and dependencies.

Why: issuing directives is the hot command (SPEC §11, the command path), and
the py-spy profile under load gave FastAPI's route matching (the routers are
nested: every level is matched twice) and dependency solving about a third of
the event loop's time per directive — more than the bare endpoint's whole
request.  ``api/gate.py`` hands ``DirectiveFastPath`` each such request once
its rate limit and body limit are passed, and it serves the common case
itself: a bearer key that authenticates, ``application/json`` that validates
as ``DirectiveFields``, and valid ``Idempotency-Key`` and ``If-Match``
headers, if any.  It uses what the route uses (``api.deps``'s shared key
checks, header parsing and wake; ``workflows.directives``'s
``submit_directive``), and labels the request with the documented route (so
metrics are unchanged).  With tracing on, FastAPI's own spans name the route
as the router picks it, so every request goes through the router.

Anything else goes on, unchanged, to the app and the documented route
(``api/routes/directives.py``), which answers it as it always did (401, 422
and their problem documents): the fast path never answers a refusal of the
request itself.  A refusal of the command (403, 404, 409, 412, 503) goes to the
app too, raised by the first of its routes (``Raised``), so the app's problem
handlers answer it exactly as when the route raises it.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
from fastapi.routing import APIRoute
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import ValidationError
from starlette.datastructures import URLPath
from starlette.requests import Request
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import authenticated, parse_if_match, wake
from api.limits import replaying
from api.routes.directives import issued
from domain.directives import DirectiveFields
from domain.errors import ValidationFailed
from workflows.idempotency import IdempotentRequest

RAISED = "threadneedle.fast_path_raised"
"""In the scope of a request whose command raised: the exception, for ``Raised`` to raise."""
IDEMPOTENCY_KEY_FULL = re.compile(r"[\x21-\x7e]{1,255}")  # deps.IDEMPOTENCY_KEY, whole
MAX_CONTRACT_ID = 64
MAX_IF_MATCH = 64
WANTED = {b"authorization", b"content-type", b"idempotency-key", b"if-match"}
JSON_HEADER = (b"content-type", b"application/json")


class DirectiveFastPath:
    """Serves ``route`` (``issue_directive``) when the request is plainly valid (see module)."""

    def __init__(self, route: APIRoute) -> None:
        self.route = route
        self.path_regex = route.path_regex

    def takes(self, scope: Scope) -> bool:
        """Whether the request is for this route (its path parameters then in the scope)."""
        if scope["method"] != "POST" or scope.get("root_path") \
                or scope.get("fastapi.telemetry") is not None:
            return False
        found = self.path_regex.match(scope["path"])
        if found is None:
            return False
        scope["path_params"] = found.groupdict()
        return True

    async def serve(self, scope: Scope, messages: list[Message], receive: Receive, send: Send,
                    app: ASGIApp) -> None:
        """Answer the request (its body in ``messages``), or hand it on to ``app``."""
        body = messages[0].get("body") if messages[0]["type"] == "http.request" else None
        command = None if body is None else _command(scope, body)
        if body is None or command is None:
            await app(scope, replaying(messages, receive), send)
            return
        scope["route"] = self.route  # metrics label the documented route
        contract_id, key, fields, idempotency_key, expected_version = command
        state = scope["app"].state
        services = state.services
        ledger = services.ledger
        try:
            caller = await authenticated(state, ledger, key)
            if caller is None:  # the route answers the 401
                await app(scope, replaying(messages, receive), send)
                return
            request = (None if idempotency_key is None else IdempotentRequest.of(
                idempotency_key, "POST", Request(scope).url.path, body))
            result = await issued(ledger, caller, contract_id, fields, request=request,
                                  expected_version=expected_version)
            await wake(state, services)
        except Exception as error:
            scope[RAISED] = error
            await app(scope, replaying(messages, receive), send)
            return
        answer = orjson.dumps(result.as_dict())
        await send({"type": "http.response.start", "status": 201, "headers": [
            (b"content-length", b"%d" % len(answer)), JSON_HEADER]})
        await send({"type": "http.response.body", "body": answer, "more_body": False})


class Raised(BaseRoute):
    """The first of the app's routes: raises what a fast-path command raised (``RAISED``),
    from where the route would have, for the app's problem handlers to answer."""

    def __init__(self, route: APIRoute) -> None:
        self.route = route
        self.include_in_schema = False

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if RAISED in scope:
            return Match.FULL, {"route": self.route}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise scope[RAISED]

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        raise NoMatchFound(name, path_params)


def _command(scope: Scope, body: bytes
             ) -> tuple[str, str, DirectiveFields, str | None, int | None] | None:
    """What the request asks, when every part of it is plainly valid; else None."""
    contract_id = scope["path_params"]["contract_id"]
    if len(contract_id) > MAX_CONTRACT_ID:
        return None
    headers: dict[bytes, str] = {}
    for name, value in scope["headers"]:
        if name in WANTED and name not in headers:  # the first of each, as Starlette reads
            headers[name] = value.decode("latin-1")
    scheme, key = get_authorization_scheme_param(headers.get(b"authorization"))
    if not key or scheme.lower() != "bearer":
        return None
    content_type = headers.get(b"content-type", "")
    if content_type.partition(";")[0].strip().lower() != "application/json":
        return None
    idempotency_key = headers.get(b"idempotency-key")
    if idempotency_key is not None and not IDEMPOTENCY_KEY_FULL.fullmatch(idempotency_key):
        return None
    if_match = headers.get(b"if-match")
    if if_match is not None and len(if_match) > MAX_IF_MATCH:
        return None
    try:
        expected_version = parse_if_match(if_match)
        fields = DirectiveFields.model_validate(json.loads(body))  # as FastAPI parses a body
    except (ValidationFailed, ValidationError, ValueError, RecursionError):
        return None
    return contract_id, key, fields, idempotency_key, expected_version
