"""The request id of every request, and tracing when it is turned on.

``RequestIdMiddleware`` takes the client's ``X-Request-ID`` (a plain token of at most
128 characters) or makes one, binds it to the logging context for the request (so
every log line, and every Celery task the request sends, carries it: see
``workflows/logs.py``) and answers it in the ``X-Request-ID`` header.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from workflows import logs
from workflows.settings import Settings


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = dict(scope["headers"]).get(logs.HEADER.lower().encode())
        request_id = logs.request_id_from(header.decode("latin-1") if header else None)
        logs.bind_request_id(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"],
                                      (logs.HEADER.lower().encode(), request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            logs.clear()


def install_observability(app: FastAPI, settings: Settings, *, configure: bool) -> None:
    """Request ids always; logging set up when ``configure`` (the process's own app, not a
    test's); tracing when ``NEEDLE_TRACING`` is on."""
    if configure:
        logs.configure_logging(settings.log_level, settings.log_format)
    if settings.tracing:
        from workflows.tracing import instrument_app, start_tracing

        start_tracing(settings, "threadneedle-api")
        instrument_app(app)
    app.add_middleware(RequestIdMiddleware)
