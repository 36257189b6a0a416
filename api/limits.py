"""Refuse request bodies over the configured size, before anything parses them.

A pure ASGI middleware: it trusts neither ``Content-Length`` nor its absence.
It refuses a declared length over the limit at once, and otherwise reads the
body (at most the limit plus one chunk) and counts what actually arrives, so a
chunked upload cannot slip past.  The body it accepted is replayed to the app.

It also refuses a JSON body whose strings hold a lone UTF-16 surrogate
(``"\\ud800"``): valid JSON, but no UTF-8 text, so it could never be hashed or
stored.  Checked here once for every body, rather than in every string field.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import PROBLEM_JSON, problem_bytes


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared == -1:
            await _refuse(send, 400, "bad_request", "Content-Length is not a number")
            return
        if declared is not None and declared > self.max_bytes:
            await self._too_large(send)
            return

        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replaying([message], receive), send)
                return
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_bytes:
                await self._too_large(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        content = b"".join(chunks)
        field = lone_surrogate_field(content)
        if field is not None:
            await _refuse(send, 422, "validation_failed",
                          f"{field}: must not contain a lone UTF-16 surrogate",
                          errors=[(field, "must not contain a lone UTF-16 surrogate")])
            return
        body: Message = {"type": "http.request", "body": content, "more_body": False}
        await self.app(scope, _replaying([body], receive), send)

    async def _too_large(self, send: Send) -> None:
        await _refuse(send, 413, "payload_too_large",
                      f"request bodies are limited to {self.max_bytes} bytes")


SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
SURROGATE = re.compile("[\ud800-\udfff]")


def lone_surrogate_field(body: bytes) -> str | None:
    """The field (``a.b.0``) of the first string or key with a lone surrogate, if any.

    Only a body that escapes a surrogate at all is parsed here; one that is not
    JSON is left to the app, which names what is wrong with it.
    """
    if not SURROGATE_ESCAPE.search(body):
        return None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return _surrogate_in(document, [])


def _surrogate_in(value: Any, path: list[str]) -> str | None:
    if isinstance(value, str):
        return (".".join(path) or "body") if SURROGATE.search(value) else None
    items: list[tuple[str, Any]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if SURROGATE.search(key):
                return ".".join([*path, "<key>"])
            items.append((key, item))
    elif isinstance(value, list):
        items = [(str(index), item) for index, item in enumerate(value)]
    for name, item in items:
        found = _surrogate_in(item, [*path, name])
        if found is not None:
            return found
    return None


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return -1
    return None


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


async def _refuse(send: Send, status: int, code: str, detail: str,
                  errors: list[tuple[str, str]] | None = None) -> None:
    body = problem_bytes(status, code, detail, errors=errors)
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", PROBLEM_JSON.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ],
    })
    await send({"type": "http.response.body", "body": body, "more_body": False})
