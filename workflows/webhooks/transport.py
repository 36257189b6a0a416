"""Sending a webhook: a client that only connects to addresses the SSRF guard checked.

``WebhookClient`` checks every URL with ``ssrf.check_url`` at the moment it is
sent and connects to the checked address, while the request keeps its own
``Host`` header and, over TLS, its host name for SNI and certificate
verification.  Underneath is one ``urllib3.PoolManager`` shared by every
delivery thread of a process: it keeps connections alive, and its pools are
keyed by the address *and* (over TLS) the host name, so a TLS connection made
for one name is never reused for another name on the same address.

It sends the way §8 says: a 15 s timeout for the whole attempt (connecting,
sending and reading together, however slowly the receiver trickles its
answer: ``deadline``; ``NEEDLE_WEBHOOK_TIMEOUT_SECONDS``), redirects never
followed, no retries of its own (the outbox's schedule retries), no proxies
(a proxy would connect elsewhere than the checked address), and no cookies
(one client serves every subscription).
``post_message`` makes one attempt and answers what the delivery log records;
it never raises for a network failure.

urllib3 rather than ``httpx`` (used elsewhere, e.g. by the tests' clients):
sending is most of a webhook worker's CPU, and urllib3 sends a POST for about
half of what ``httpx.Client`` spends (``docs/benchmarks.md``, Webhooks).
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import lru_cache
from types import TracebackType
from typing import Any

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import HTTPError as TransportError
from urllib3.exceptions import NewConnectionError
from urllib3.exceptions import TimeoutError as TransportTimeout

from workflows.webhooks import deadline
from workflows.webhooks.ssrf import (
    IPNetwork,
    Resolver,
    UnresolvableHost,
    UnsafeUrl,
    check_url,
    system_resolver,
)

DELIVERY_TIMEOUT_SECONDS = 15.0
RESPONSE_EXCERPT_BYTES = 1024
USER_AGENT = "Threadneedle-Webhooks/1"
CONNECTIONS_PER_ENDPOINT = 16
"""Kept alive per (address, port, TLS name): above a thread-pool worker's 16 threads."""
ENDPOINT_POOLS = 512
"""Endpoints with live connections; the least recently used pool is closed beyond this."""


class _Watched:
    """A connection that tells the thread's current attempt (``deadline``) its socket: when
    it connects (before any TLS handshake) and when it is reused for a request."""

    sock: socket.socket | None

    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        _watch(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self.sock)
        super().request(*args, **kwargs)  # type: ignore[misc]


def _watch(sock: socket.socket | None) -> None:
    attempt = deadline.current()
    if attempt is not None:
        attempt.using(sock)


class _WatchedHTTP(_Watched, HTTPConnection):
    pass


class _WatchedHTTPS(_Watched, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTP


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPS


class WebhookClient:
    """Sends each request to the address its URL was checked to; shared by threads."""

    def __init__(
        self,
        allowed_cidrs: Sequence[IPNetwork] = (),
        resolver: Resolver = system_resolver,
        *,
        timeout: float = DELIVERY_TIMEOUT_SECONDS,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.allowed_cidrs = tuple(allowed_cidrs)
        self.resolver = resolver
        self.timeout_seconds = timeout
        """The whole attempt's time: ``attempt()`` shuts its connection when it passes."""
        self._pools = urllib3.PoolManager(
            num_pools=ENDPOINT_POOLS, maxsize=CONNECTIONS_PER_ENDPOINT, retries=False,
            ssl_context=ssl_context or ssl.create_default_context(),
        )
        self._pools.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}

    def attempt(self) -> AbstractContextManager[deadline.Attempt]:
        """One attempt's deadline: wrap ``send`` and the reading of its answer in it."""
        return deadline.attempt_within(self.timeout_seconds)

    def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> urllib3.BaseHTTPResponse:
        """POST ``body`` to the checked address; the caller reads and releases the answer.

        Raises ``UnsafeUrl`` when the guard refuses the URL, and urllib3's
        errors when the endpoint cannot be reached.
        """
        attempt = deadline.current()
        resolver = self.resolver if attempt is None else deadline.resolving_within(
            self.resolver, attempt)
        try:
            target = check_url(url, self.allowed_cidrs, resolver)  # every time: DNS changes
        except UnresolvableHost:
            if attempt is not None and attempt.remaining() <= 0:
                raise TransportTimeout("no DNS answer within the attempt's deadline") from None
            raise
        left = self.timeout_seconds if attempt is None else attempt.remaining()
        if left <= 0:
            raise TransportTimeout("the attempt's deadline passed before connecting")
        request_uri, authority = _request_line(url)
        tls_name = {"server_hostname": target.host, "assert_hostname": target.host} \
            if target.scheme == "https" else None
        pool = self._pools.connection_from_host(
            target.address, target.port, target.scheme, pool_kwargs=tls_name)
        return pool.urlopen(
            "POST", request_uri, body=body,
            headers={**headers, "host": authority or target.host,
                     "content-type": "application/json", "user-agent": USER_AGENT},
            redirect=False, retries=False, assert_same_host=False,
            preload_content=False, release_conn=False,
            timeout=urllib3.Timeout(connect=left, read=left),
        )

    def close(self) -> None:
        self._pools.clear()

    def __enter__(self) -> WebhookClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


@lru_cache(maxsize=4096)
def _request_line(url: str) -> tuple[str, str | None]:
    """The URL's path and query (percent-encoded, e.g. a Chinese path) and its host[:port]:
    parsed once per subscription URL, not once per delivery."""
    parsed = urllib3.util.parse_url(url)
    return parsed.request_uri, parsed.netloc


@dataclass(frozen=True)
class AttemptResult:
    """One attempt as the delivery log records it (SPEC §9 ``attempts``, less ``at``)."""

    status_code: int | None
    duration_ms: float
    error: str | None
    response: str
    """The first KiB of the response body, decoded as UTF-8 (undecodable bytes replaced)."""
    retry_after: str | None = None
    """The response's ``Retry-After`` header, as sent (see ``retries.parse_retry_after``)."""


def post_message(
    client: WebhookClient,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    clock: Callable[[], float] = time.perf_counter,
) -> AttemptResult:
    """POST one signed message and say what happened; never raises for a network failure.

    The whole attempt ends within the client's timeout (``deadline``): an answer
    not complete by then is a ``timeout``, whatever part of it arrived.  Only
    the first KiB of the response is read: a receiver cannot make the
    worker download a large answer (a connection with more left unread is
    closed rather than reused).
    """
    started = clock()
    status_code: int | None = None
    excerpt, retry_after, error = b"", None, None
    with client.attempt() as attempt:
        try:
            response = client.send(url, body, headers)
            complete = False
            try:
                status_code, retry_after = response.status, response.headers.get("retry-after")
                excerpt = response.read(RESPONSE_EXCERPT_BYTES + 1, decode_content=False)
                complete = len(excerpt) <= RESPONSE_EXCERPT_BYTES and not attempt.expired
            finally:
                if not complete:
                    response.close()  # never reuse a connection with an answer left in it
                response.release_conn()
        except UnsafeUrl as refused:
            error = f"refused: {refused.detail}"
        except NewConnectionError as failure:  # urllib3 makes it a timeout too: it is not one
            error = f"{type(failure).__name__}: {failure}"
        except TransportTimeout:
            error = "timeout"
        except (TransportError, OSError) as failure:
            error = f"{type(failure).__name__}: {failure}"
        if attempt.expired:  # the deadline cut the answer short, whatever was read of it
            status_code, retry_after, error = None, None, "timeout"
    return AttemptResult(
        status_code=status_code,
        duration_ms=(clock() - started) * 1000,
        error=error,
        response=excerpt[:RESPONSE_EXCERPT_BYTES].decode("utf-8", errors="replace"),
        retry_after=retry_after,
    )
