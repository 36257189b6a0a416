"""Per-key request limits (SPEC §11, abuse): 429 with ``Retry-After``, counted in Redis.

A pure ASGI middleware in front of everything else (after metrics): a request
is counted against its bearer key — by a hash of it, so no key is ever written
to Redis — or, without one, against the client's address.  Counting uses the
``limits`` library's fixed windows on the stack's Redis (shared by every API
process), or in memory when no Redis is configured: one ``INCR`` per limit and
request, about 70 µs of CPU (the sliding-window counter cost 120 µs a limit).
Limits are ``limits`` notation, several separated by ``;``
(``NEEDLE_RATE_LIMIT``, ``NEEDLE_RATE_LIMIT_ANONYMOUS``); empty turns them off.

If Redis cannot be reached the request is let through (and the outage
logged): the live views answer their own 503, and commands must not stop
because a counter is gone.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter
from starlette.types import ASGIApp, Receive, Scope, Send

from api.problems import PROBLEM_JSON, problem_bytes
from workflows.settings import Settings

log = logging.getLogger("threadneedle.api.rate_limits")

REDIS_TIMEOUT_SECONDS = 0.5
"""How long a count may wait for Redis before the request goes through uncounted."""
OUTAGE_LOG_SECONDS = 30.0


@dataclass
class RateLimits:
    limiter: FixedWindowRateLimiter
    keyed: list[RateLimitItem]
    anonymous: list[RateLimitItem]
    _last_outage_log: float = 0.0

    @classmethod
    def of(cls, settings: Settings) -> RateLimits | None:
        keyed, anonymous = parse_limits(settings.rate_limit), \
            parse_limits(settings.rate_limit_anonymous)
        if not keyed and not anonymous:
            return None
        prefix = f"tn:rate:{settings.celery_queue}"
        storage: Storage
        if settings.redis_url:
            storage = RedisStorage(
                "async+" + settings.redis_url, implementation="redispy", key_prefix=prefix,
                wrap_exceptions=True, socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS)
        else:
            storage = MemoryStorage()
        return cls(FixedWindowRateLimiter(storage), keyed, anonymous)

    async def retry_after(self, identity: str, keyed: bool) -> int | None:
        """Count one request; the seconds to wait if it is over a limit, else None."""
        for item in self.keyed if keyed else self.anonymous:
            try:
                if await self.limiter.hit(item, identity):
                    continue
                stats = await self.limiter.get_window_stats(item, identity)
            except Exception as error:  # Redis unreachable: let the request through
                now = time.monotonic()
                if now - self._last_outage_log > OUTAGE_LOG_SECONDS:
                    self._last_outage_log = now
                    log.warning("rate limits not counted: %s", str(error)[:200])
                return None
            return max(1, math.ceil(stats.reset_time - time.time()))
        return None


def parse_limits(text: str) -> list[RateLimitItem]:
    """``"50/second;2000/minute"`` as ``limits`` items (``ValueError`` when unreadable)."""
    return parse_many(text) if text.strip() else []


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, *, limits: RateLimits | None) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.limits is None:
            await self.app(scope, receive, send)
            return
        identity, keyed = _identity(scope)
        wait = await self.limits.retry_after(identity, keyed)
        if wait is None:
            await self.app(scope, receive, send)
            return
        who = "this API key" if keyed else "this address (no API key)"
        body = problem_bytes(429, "rate_limited",
                             f"too many requests from {who}; try again in {wait} s")
        await send({
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(wait).encode()),
            ],
        })
        await send({"type": "http.response.body", "body": body, "more_body": False})


def _identity(scope: Scope) -> tuple[str, bool]:
    """``key:<hash>`` for a request with a bearer key, else ``addr:<client address>``."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, credentials = value.partition(b" ")
            if scheme.lower() == b"bearer" and credentials.strip():
                digest = hashlib.sha256(credentials.strip()).hexdigest()[:32]
                return f"key:{digest}", True
    client = scope.get("client")
    return f"addr:{client[0] if client else 'unknown'}", False
