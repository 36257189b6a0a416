"""Sending a webhook: an ``httpx`` client that only connects to addresses the guard checked.

``GuardedTransport`` checks every request's URL with ``ssrf.check_url`` at the
moment it is sent and connects to the checked address, while the request
keeps its own ``Host`` header and, over TLS, its host name for SNI and
certificate verification.  Each (scheme, host, port) gets a connection pool
of its own, so a TLS connection made for one name is never reused for
another name on the same address.

``webhook_client`` wraps it the way §8 sends: 15 s timeout, redirects never
followed, no proxies from the environment (a proxy would connect elsewhere
than the checked address), and no cookies kept: the one client serves every
subscription, so a cookie one endpoint sets would otherwise go back with
other organisations' deliveries to the same host.  ``post_message`` makes one attempt and answers
what the delivery log records.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx

from workflows.webhooks.ssrf import (
    CheckedTarget,
    IPNetwork,
    Resolver,
    UnsafeUrl,
    check_url,
    system_resolver,
)

DELIVERY_TIMEOUT_SECONDS = 15.0
RESPONSE_EXCERPT_BYTES = 1024
USER_AGENT = "Threadneedle-Webhooks/1"

TransportFactory = Callable[[CheckedTarget], httpx.BaseTransport]


class GuardedTransport(httpx.BaseTransport):
    """An ``httpx`` transport that sends each request to the address its URL was checked to."""

    def __init__(
        self,
        allowed_cidrs: Sequence[IPNetwork] = (),
        resolver: Resolver = system_resolver,
        *,
        verify: ssl.SSLContext | bool = True,
        limits: httpx.Limits | None = None,
        transport_factory: TransportFactory | None = None,
    ) -> None:
        self._allowed_cidrs = tuple(allowed_cidrs)
        self._resolver = resolver
        self._factory = transport_factory or (
            lambda target: httpx.HTTPTransport(
                verify=verify, trust_env=False, limits=limits or httpx.Limits(),
            )
        )
        self._transports: dict[tuple[str, str, int], httpx.BaseTransport] = {}
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        target = check_url(str(request.url), self._allowed_cidrs, self._resolver)
        extensions = dict(request.extensions)
        if target.scheme == "https":
            extensions["sni_hostname"] = target.host
        pinned = httpx.Request(
            request.method,
            request.url.copy_with(host=target.address),
            headers=request.headers,  # the Host header names the URL's host, not the address
            stream=request.stream,
            extensions=extensions,
        )
        return self._transport_for(target).handle_request(pinned)

    def _transport_for(self, target: CheckedTarget) -> httpx.BaseTransport:
        key = (target.scheme, target.host, target.port)
        with self._lock:
            transport = self._transports.get(key)
            if transport is None:
                transport = self._transports[key] = self._factory(target)
            return transport

    def close(self) -> None:
        with self._lock:
            transports, self._transports = list(self._transports.values()), {}
        for transport in transports:
            transport.close()


def webhook_client(
    allowed_cidrs: Sequence[IPNetwork] = (),
    resolver: Resolver = system_resolver,
    *,
    timeout: float = DELIVERY_TIMEOUT_SECONDS,
    verify: ssl.SSLContext | bool = True,
    limits: httpx.Limits | None = None,
    transport_factory: TransportFactory | None = None,
) -> httpx.Client:
    """The client deliveries are sent with: guarded, ``timeout`` seconds, no redirects,
    no cookies."""
    return httpx.Client(
        transport=GuardedTransport(allowed_cidrs, resolver, verify=verify, limits=limits,
                                   transport_factory=transport_factory),
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        trust_env=False,
        headers={"user-agent": USER_AGENT},
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
    )


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
    client: httpx.Client,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    clock: Callable[[], float] = time.perf_counter,
) -> AttemptResult:
    """POST one signed message and say what happened; never raises for a network failure.

    Only the first KiB of the response is read: a receiver cannot make the
    worker download a large answer.
    """
    started = clock()
    status_code: int | None = None
    excerpt, retry_after, error = b"", None, None
    try:
        with client.stream(
            "POST", url, content=body,
            headers={**headers, "content-type": "application/json"},
        ) as response:
            status_code, retry_after = response.status_code, response.headers.get("retry-after")
            for chunk in response.iter_bytes():
                excerpt += chunk
                if len(excerpt) >= RESPONSE_EXCERPT_BYTES:
                    break
    except UnsafeUrl as refused:
        error = f"refused: {refused.detail}"
    except httpx.TimeoutException:
        error = "timeout"
    except httpx.HTTPError as failure:
        error = f"{type(failure).__name__}: {failure}"
    return AttemptResult(
        status_code=status_code,
        duration_ms=(clock() - started) * 1000,
        error=error,
        response=excerpt[:RESPONSE_EXCERPT_BYTES].decode("utf-8", errors="replace"),
        retry_after=retry_after,
    )
