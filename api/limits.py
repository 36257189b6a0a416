"""Refuse request bodies over the configured size, before anything parses them.

A pure ASGI middleware: it trusts neither ``Content-Length`` nor its absence.
It refuses a declared length over the limit at once, and otherwise reads the
body (at most the limit plus one chunk) and counts what actually arrives, so a
chunked upload cannot slip past.  The body it accepted is replayed to the app.
"""

from __future__ import annotations

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
        body: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replaying([body], receive), send)

    async def _too_large(self, send: Send) -> None:
        await _refuse(send, 413, "payload_too_large",
                      f"request bodies are limited to {self.max_bytes} bytes")


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


async def _refuse(send: Send, status: int, code: str, detail: str) -> None:
    body = problem_bytes(status, code, detail)
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
