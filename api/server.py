"""The HTTP server's own limits: a guarded uvicorn protocol, and how to run it.

uvicorn's httptools protocol (the fast one, used by default) puts no limit on
the size or number of request headers, lets a client send its headers as
slowly as it likes, caps no connections, and answers the requests it cannot
parse with a ``text/plain`` 400.  ``GuardedProtocol`` is that protocol with:

- the request line and headers limited to ``NEEDLE_MAX_HEADER_BYTES`` and
  ``NEEDLE_MAX_HEADERS`` (431, counted as bytes arrive, so a 16 MB header is
  refused after the limit plus one read, never buffered whole);
- the whole head of a request due within ``NEEDLE_HEADER_TIMEOUT_SECONDS`` of its
  first byte, or of the connection opening (408, then closed: no slowloris);
- at most ``NEEDLE_MAX_CONNECTIONS`` open connections (a new one beyond is
  answered 503 with ``Retry-After`` and closed);
- every answer it gives itself — 400 for an unparsable request, 408, 431,
  503 — an RFC 9457 problem document, like the app's own.

Run it with ``uvicorn --http api.server:GuardedProtocol`` (``needle up`` and
docker-compose do); the limits come from ``Settings`` (read once per process).
A request asking to upgrade to WebSocket is answered as plain HTTP (the API has
no WebSockets; uvicorn's WebSocket protocol would answer its own ``text/plain``
403).  What uvicorn still answers by itself: a 500 in plain text if the app
failed before starting a response (the app's handlers answer every exception
with a problem document first).  TLS or HTTP/2 bytes sent to this plain
HTTP/1.1 port are answered with the 400 problem document.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import cache
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.problems import problem_bytes
from workflows.settings import Settings

REASONS = {400: b"Bad Request", 408: b"Request Timeout",
           431: b"Request Header Fields Too Large", 503: b"Service Unavailable"}
CODES = {400: "bad_request", 408: "request_timeout", 431: "headers_too_large",
         503: "too_many_connections"}


@dataclass(frozen=True)
class HttpLimits:
    max_header_bytes: int
    max_headers: int
    header_timeout_seconds: float
    max_connections: int

    @classmethod
    def of(cls, settings: Settings) -> HttpLimits:
        return cls(settings.max_header_bytes, settings.max_headers,
                   settings.header_timeout_seconds, settings.max_connections)


@cache
def limits_from_environment() -> HttpLimits:
    return HttpLimits.of(Settings())


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request that is refused."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with limits on heads and connections (see module)."""

    limits: HttpLimits | None = None
    """Set on a subclass (``guarded_protocol``) by code that runs uvicorn in-process."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = self.limits or limits_from_environment()
        self._in_head = True
        self._head_bytes = 0
        self._header_count = 0
        self._head_timer: asyncio.TimerHandle | None = None

    def _should_upgrade_to_ws(self) -> bool:
        return False  # the API has no WebSockets: an Upgrade request is answered as HTTP

    # --- connections -----------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self._limits.max_connections:
            self._refuse(503, f"the server holds its limit of {self._limits.max_connections} "
                              "connections; try again shortly", retry_after=1)
            return
        self._start_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    # --- the head of each request -----------------------------------------------

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        if self.parser is None or self.transport.is_closing():
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError as error:
            cause = error.__cause__ or error.__context__
            refused = cause if isinstance(cause, _Refused) else None
            if refused is not None:
                self._refuse(refused.status, refused.detail)
            else:
                self.logger.warning("Invalid HTTP request received.")
                self._refuse(400, "the request is not valid HTTP/1.1")
            return
        if self._in_head:  # still no complete head: count what it has taken so far
            self._head_bytes += len(data)
            if self._head_bytes > self._limits.max_header_bytes:
                self._refuse(431, "the request line and headers are limited to "
                                  f"{self._limits.max_header_bytes} bytes")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._header_count = True, 0
        if self._head_timer is None:
            self._start_head_timer()

    def on_url(self, url: bytes) -> None:
        if len(self.url) + len(url) > self._limits.max_header_bytes:
            raise _Refused(431, "the request line and headers are limited to "
                                f"{self._limits.max_header_bytes} bytes")
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self._limits.max_headers:
            raise _Refused(431, f"a request may carry at most {self._limits.max_headers} headers")
        if len(name) + len(value) > self._limits.max_header_bytes:
            raise _Refused(431, "the request line and headers are limited to "
                                f"{self._limits.max_header_bytes} bytes")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head, self._head_bytes = False, 0
        self._stop_head_timer()
        super().on_headers_complete()

    def _start_head_timer(self) -> None:
        self._stop_head_timer()
        self._head_timer = self.loop.call_later(self._limits.header_timeout_seconds,
                                                self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being answered; its body is the app's business
        if self._in_head:
            self._refuse(408, "the request's headers did not arrive within "
                              f"{self._limits.header_timeout_seconds:g} s")

    # --- the server's own answers ------------------------------------------------

    def send_400_response(self, msg: str) -> None:
        self._refuse(400, msg)

    def _refuse(self, status: int, detail: str, retry_after: int | None = None) -> None:
        """Write a problem document and close: the connection cannot be trusted any further."""
        self._stop_head_timer()
        if self.transport.is_closing():
            return
        body = problem_bytes(status, CODES[status], detail)
        head = [b"HTTP/1.1 %d %s\r\n" % (status, REASONS[status])]
        head += [name + b": " + value + b"\r\n" for name, value in
                 self.server_state.default_headers]
        head += [b"content-type: application/problem+json\r\n",
                 b"content-length: %d\r\n" % len(body), b"connection: close\r\n"]
        if retry_after is not None:
            head.append(b"retry-after: %d\r\n" % retry_after)
        self.transport.write(b"".join([*head, b"\r\n", body]))
        self.transport.close()
        self.parser = None  # type: ignore[assignment]


def guarded_protocol(limits: HttpLimits) -> type[GuardedProtocol]:
    """The protocol with these limits (for servers built in-process, such as the tests')."""
    return type("GuardedProtocol", (GuardedProtocol,), {"limits": limits})
