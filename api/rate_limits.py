"""Per-key request limits (SPEC §11, abuse): 429 with ``Retry-After``, counted in Redis.

Checked in front of everything but the request id and metrics (``api/gate.py``),
before the body is read: a request is counted against its bearer key — by a
hash of it, so no key is ever written to Redis — or, without one, against the
client's address.  Counting uses the
``limits`` library's fixed windows in the stack's Redis (shared by every API
process), or in memory when no Redis is configured.  Limits are ``limits``
notation, several separated by ``;`` (``NEEDLE_RATE_LIMIT``,
``NEEDLE_RATE_LIMIT_ANONYMOUS``); empty turns them off.

Counts are sent in batches (``Tally``): a Redis round trip per request was 8 %
of the event loop's time in the command-path profile.  Each process adds up
its own hits of a window and sends them (one ``limits`` storage ``incr`` of
that many) when it has not for ``SYNC_SECONDS``, when they reach a share of
what the window has left (``remaining / (2 × NEEDLE_API_PROCESSES)``, so the
processes' unsent hits together stay under it), and whenever the window is
new to it.  It refuses when the window's count, as last read plus its own
since, is over the limit: a key's requests beyond its limit are refused, at
most a few more than the limit going through when processes race.

If Redis cannot be reached the request is let through (and the outage
logged): the live views answer their own 503, and commands must not stop
because a counter is gone.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass, field

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from starlette.types import Scope, Send

from api.problems import PROBLEM_JSON, problem_bytes
from workflows.settings import Settings

log = logging.getLogger("threadneedle.api.rate_limits")

REDIS_TIMEOUT_SECONDS = 0.5
"""How long a count may wait for Redis before the request goes through uncounted."""
OUTAGE_LOG_SECONDS = 30.0
SYNC_SECONDS = 0.05
"""A process sends its hits of a window at least this often while they come."""
MAX_TALLIES = 10_000
"""Tallies kept before those of past windows are dropped."""


@dataclass
class Tally:
    """One process's knowledge of one limit's window for one identity."""

    counted: int = 0
    """The window's count (every process's hits) as the store last answered."""
    unsent: int = 0
    """Hits here since, not yet added to the store."""
    budget: int = 1
    """How many unsent hits this process may hold before it sends them."""
    synced_at: float = 0.0
    resets_at: float = 0.0
    """When the window ends (``time.time()``); 0 before the store has said."""


@dataclass
class RateLimits:
    storage: Storage
    keyed: list[RateLimitItem]
    anonymous: list[RateLimitItem]
    processes: int = 1
    """API processes sharing the counts (``NEEDLE_API_PROCESSES``): each holds back less."""
    _tallies: dict[tuple[RateLimitItem, str], Tally] = field(default_factory=dict)
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
        return cls(storage, keyed, anonymous, settings.api_processes)

    async def retry_after(self, identity: str, keyed: bool) -> int | None:
        """Count one request; the seconds to wait if it is over a limit, else None."""
        now = time.time()
        for item in self.keyed if keyed else self.anonymous:
            try:
                tally = await self._hit(item, identity, now)
            except Exception as error:  # Redis unreachable: let the request through
                self._tallies.pop((item, identity), None)
                if now - self._last_outage_log > OUTAGE_LOG_SECONDS:
                    self._last_outage_log = now
                    log.warning("rate limits not counted: %s", str(error)[:200])
                return None
            if tally.counted + tally.unsent > item.amount:
                return max(1, math.ceil(tally.resets_at - now))
        return None

    async def _hit(self, item: RateLimitItem, identity: str, now: float) -> Tally:
        """This request counted in the tally; sent to the store with the unsent ones when due."""
        tally = self._tallies.get((item, identity))
        if tally is None or (tally.resets_at and now >= tally.resets_at):
            if len(self._tallies) >= MAX_TALLIES:
                self._forget_past_windows(now)
            tally = self._tallies[(item, identity)] = Tally()
        tally.unsent += 1
        if (tally.unsent < tally.budget and now - tally.synced_at < SYNC_SECONDS) \
                or tally.counted > item.amount:  # over already: refused until the window ends
            return tally
        sending, tally.unsent, tally.synced_at = tally.unsent, 0, now
        try:
            counted = await self.storage.incr(item.key_for(identity), item.get_expiry(),
                                              amount=sending)
        except BaseException:
            tally.unsent += sending
            raise
        if counted == sending:  # the store began a window with these hits
            tally.counted, tally.resets_at = counted, now + item.get_expiry()
        else:
            tally.counted = max(tally.counted, counted)  # answers may come back out of order
            if not tally.resets_at:  # a window other processes began: once, when it ends
                tally.resets_at = await self.storage.get_expiry(item.key_for(identity))
        tally.budget = max(1, (item.amount - tally.counted) // (2 * self.processes))
        return tally

    def _forget_past_windows(self, now: float) -> None:
        for key in [k for k, t in self._tallies.items() if not t.resets_at or t.resets_at <= now]:
            del self._tallies[key]


def parse_limits(text: str) -> list[RateLimitItem]:
    """``"50/second;2000/minute"`` as ``limits`` items (``ValueError`` when unreadable)."""
    return parse_many(text) if text.strip() else []


async def refuse_if_limited(limits: RateLimits, scope: Scope, send: Send) -> bool:
    """Count the request; if it is over a limit, answer 429 (``Retry-After``) and say so."""
    identity, keyed = _identity(scope)
    wait = await limits.retry_after(identity, keyed)
    if wait is None:
        return False
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
    return True


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
