"""``POST /v1/contracts/{id}/directives`` answered without FastAPI's routing and dependencies.

Why: issuing directives is the hot command (SPEC §11, the command path), and
the py-spy profile under load gave FastAPI's route matching (the routers are
nested: every level is matched twice) and dependency solving about a third of
the event loop's time per directive — more than the bare endpoint's whole
request.  ``DirectiveFastPath`` is the first of the app's routes and serves
the common case itself: a bearer key that authenticates, ``application/json``
that validates as ``DirectiveFields``, and valid ``Idempotency-Key`` and
``If-Match`` headers, if any.  It uses what the route uses (``api.deps``'s
shared key checks, header parsing and wake; ``workflows.directives``'s
``submit_directive``), and labels the request with the documented route (so
metrics and traces are unchanged).

Anything else goes on, unchanged, to the documented route
(``api/routes/directives.py``), which answers it as it always did (401, 422
and their problem documents): the fast path never answers a refusal of the
request itself.  A refusal of the command (403, 404, 409, 412, 503) is raised
to the app's problem handlers, exactly as the route raises it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi.routing import APIRoute
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import ValidationError
from starlette.requests import Request
from starlette.routing import BaseRoute, Match
from starlette.types import Message, Receive, Scope, Send

from api.deps import authenticated, parse_if_match, wake
from api.routes.directives import issued
from domain.directives import DirectiveFields
from domain.errors import ValidationFailed
from workflows.idempotency import IdempotentRequest

DECLINED = "threadneedle.fast_path_declined"
"""Set in the scope of a request the fast path handed on, so it is not matched twice."""
IDEMPOTENCY_KEY_FULL = re.compile(r"[\x21-\x7e]{1,255}")  # deps.IDEMPOTENCY_KEY, whole
MAX_CONTRACT_ID = 64
MAX_IF_MATCH = 64
WANTED = {b"authorization", b"content-type", b"idempotency-key", b"if-match"}


class DirectiveFastPath(BaseRoute):
    """Serves ``route`` (``issue_directive``) when the request is plainly valid (see module)."""

    def __init__(self, route: APIRoute) -> None:
        self.route = route
        self.path = route.path
        self.path_format = route.path_format  # what FastAPI's telemetry names the route by
        self.name = route.name
        self.path_regex = route.path_regex
        self.include_in_schema = False

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if (scope["type"] == "http" and scope["method"] == "POST" and DECLINED not in scope
                and not scope.get("root_path")):
            found = self.path_regex.match(scope["path"])
            if found is not None:
                return Match.FULL, {"path_params": found.groupdict()}
        return Match.NONE, {}

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        return self.route.url_path_for(name, **path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self.route  # metrics label the documented route
        messages, body = await _read_body(receive)
        command = None if body is None else _command(scope, body)
        if body is None or command is None:
            await _hand_on(scope, messages, receive, send)
            return
        contract_id, key, fields, idempotency_key, expected_version = command
        state = scope["app"].state
        services = state.services
        ledger = services.ledger
        caller = await authenticated(state, ledger, key)
        if caller is None:  # the route answers the 401
            await _hand_on(scope, messages, receive, send)
            return
        request = (None if idempotency_key is None else IdempotentRequest.of(
            idempotency_key, "POST", Request(scope).url.path, body))
        result = await issued(ledger, caller, contract_id, fields, request=request,
                              expected_version=expected_version)
        await wake(state, services)
        answer = json.dumps(result.as_dict(), ensure_ascii=False,
                            separators=(",", ":")).encode()
        await send({"type": "http.response.start", "status": 201, "headers": [
            (b"content-length", str(len(answer)).encode()),
            (b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": answer, "more_body": False})


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


async def _read_body(receive: Receive) -> tuple[list[Message], bytes | None]:
    """The messages received and the whole body (None if the client went away)."""
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        if not message.get("more_body", False):
            return messages, b"".join(m.get("body", b"") for m in messages)


async def _hand_on(scope: Scope, messages: list[Message], receive: Receive, send: Send) -> None:
    """Let the documented route answer, with the body already read replayed to it."""
    scope[DECLINED] = True
    await scope["router"].app(scope, _replaying(messages, receive), send)


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay
