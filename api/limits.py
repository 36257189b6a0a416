"""Refuse request bodies over the configured size, before anything parses them.

``read_body`` (run for every request by ``api/gate.py``) trusts neither
``Content-Length`` nor its absence.  It refuses a declared length over the limit
at once, and otherwise reads the body (at most the limit plus one chunk) and
counts what actually arrives, so a chunked upload cannot slip past.  The body it
accepted is replayed to the app.

It also refuses a JSON body whose strings hold a lone UTF-16 surrogate
(``"\\ud800"``): valid JSON, but no UTF-8 text, so it could never be hashed or
stored.  Checked here once for every body, rather than in every string field.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from api.problems import PROBLEM_JSON, problem_bytes


async def read_body(scope: Scope, receive: Receive, send: Send, max_bytes: int
                    ) -> list[Message] | None:
    """The request's body as the one message to replay to the app (or the disconnect that
    ended it); None when refused, after answering 400, 413 or 422."""
    declared = _content_length(scope)
    if declared == -1:
        await _refuse(send, 400, "bad_request", "Content-Length is not a number")
        return None
    if declared is not None and declared > max_bytes:
        await _too_large(send, max_bytes)
        return None

    chunks: list[bytes] = []
    received = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            return [message]
        chunk = message.get("body", b"")
        received += len(chunk)
        if received > max_bytes:
            await _too_large(send, max_bytes)
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    content = b"".join(chunks)
    field = lone_surrogate_field(content)
    if field is not None:
        await _refuse(send, 422, "validation_failed",
                      f"{field}: must not contain a lone UTF-16 surrogate",
                      errors=[(field, "must not contain a lone UTF-16 surrogate")])
        return None
    return [{"type": "http.request", "body": content, "more_body": False}]


async def _too_large(send: Send, max_bytes: int) -> None:
    await _refuse(send, 413, "payload_too_large",
                  f"request bodies are limited to {max_bytes} bytes")


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


def replaying(messages: list[Message], receive: Receive) -> Receive:
    """``receive`` that answers ``messages`` first (the body already read), then asks on."""
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
