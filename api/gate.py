"""The one middleware in front of the routes: request id, metrics, rate limit, body limit.

Every HTTP request passes, in this order (the order the four middlewares it
replaces ran in):

1. its request id (``api/observability.py``) is bound to the logging context and
   answered in ``X-Request-ID``;
2. its answer is timed and counted by route template (``api/metrics.py``), every
   answer, including the refusals below;
3. it is counted against its key's rate limits (``api/rate_limits.py``): over one,
   429, before its body is read;
4. its body is read within the size limit (``api/limits.py``): 400, 413 or 422
   otherwise;
5. then the directive fast path (``api/directive_fast_path.py``) serves it, when it is
   a plainly valid ``POST /v1/contracts/{id}/directives``, or the app does.

Why one: each pure-ASGI layer is a call and a ``send`` wrapper per request, and
four of them, with FastAPI's exception middleware and routing in front of the
fast path, were about a quarter of the event loop's time per directive in the
command-path profile.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import limits, observability
from api.directive_fast_path import DirectiveFastPath
from api.metrics import Metrics
from api.rate_limits import RateLimits, refuse_if_limited
from workflows import logs


class Gate:
    def __init__(self, app: ASGIApp, *, metrics: Metrics, rate_limits: RateLimits | None,
                 max_body_bytes: int, fast_path: DirectiveFastPath | None) -> None:
        self.app = app
        self.metrics = metrics
        self.rate_limits = rate_limits
        self.max_body_bytes = max_body_bytes
        self.fast_path = fast_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = observability.request_id_of(scope)
        logs.bind_request_id(request_id)
        id_header = (observability.HEADER, request_id.encode())
        status = 500

        async def answer(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        try:
            await self._pass(scope, receive, answer)
        finally:
            self.metrics.observe(scope, status, time.perf_counter() - started)
            logs.clear()

    async def _pass(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.rate_limits is not None and await refuse_if_limited(self.rate_limits, scope,
                                                                    send):
            return
        messages = await limits.read_body(scope, receive, send, self.max_body_bytes)
        if messages is None:  # refused (and answered)
            return
        if self.fast_path is not None and self.fast_path.takes(scope):
            await self.fast_path.serve(scope, messages, receive, send, self.app)
        else:
            await self.app(scope, limits.replaying(messages, receive), send)
