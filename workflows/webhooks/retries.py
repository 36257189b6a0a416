"""What an attempt's outcome means, and when the next attempt is due (SPEC §8).

- 2xx: delivered.
- 410 Gone: the receiver asks never to be called again: the endpoint is disabled.
- Anything else fails the attempt and is tried again on the schedule: a
  redirect (never followed, the receiver must give its final URL), any other
  4xx, a 5xx, a timeout, a refused or broken connection, an address the SSRF
  guard refused at the time of sending.  On 429 and 503 a ``Retry-After``
  (seconds or an HTTP date) sets the earliest next attempt.

The schedule lists the waits between attempts: n waits mean 1 + n attempts
before a message is ``failed``.  Each wait is spread by ±``JITTER`` so that
endpoints recovering together are not hit by every retry at once.  Time and
randomness come in as arguments.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum

JITTER = 0.2
"""Each wait is drawn uniformly from ±20 % around the scheduled one."""
MAX_RETRY_AFTER = 24 * 3600.0
"""A receiver's ``Retry-After`` is honoured up to a day; beyond that it is a day."""
RETRY_AFTER_STATUSES = frozenset({429, 503})


class Outcome(StrEnum):
    DELIVERED = "delivered"
    DISABLE = "disable"
    """The receiver answered 410 Gone: disable the endpoint, try no more."""
    RETRY = "retry"


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str
    """A few words for the delivery log: ``"server error 502"``, ``"timeout"``…"""
    honours_retry_after: bool = False


def classify(status_code: int | None, error: str | None = None) -> Verdict:
    """The verdict on one attempt: its HTTP status, or ``None`` and the error that stopped it."""
    if status_code is None:
        return Verdict(Outcome.RETRY, error or "no response")
    if 200 <= status_code < 300:
        return Verdict(Outcome.DELIVERED, f"delivered {status_code}")
    if status_code == 410:
        return Verdict(Outcome.DISABLE, "gone 410: the receiver asked to be disabled")
    if 300 <= status_code < 400:
        return Verdict(Outcome.RETRY, f"redirect {status_code} not followed")
    honours = status_code in RETRY_AFTER_STATUSES
    if 400 <= status_code < 500:
        kind = "throttled" if status_code == 429 else "client error"
        return Verdict(Outcome.RETRY, f"{kind} {status_code}", honours_retry_after=honours)
    if 500 <= status_code < 600:
        return Verdict(Outcome.RETRY, f"server error {status_code}", honours_retry_after=honours)
    return Verdict(Outcome.RETRY, f"unexpected status {status_code}")


def parse_schedule(text: str) -> tuple[float, ...]:
    """``NEEDLE_WEBHOOK_RETRY_SCHEDULE``: comma-separated waits in seconds, each ≥ 0."""
    waits: list[float] = []
    for part in text.split(","):
        if not part.strip():
            continue
        try:
            wait = float(part)
        except ValueError:
            raise ValueError(f"retry schedule: {part.strip()!r} is not a number of seconds") \
                from None
        if not math.isfinite(wait) or wait < 0:
            raise ValueError(f"retry schedule: {part.strip()!r} is not a wait of 0 s or more")
        waits.append(wait)
    return tuple(waits)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """A ``Retry-After`` header as seconds from ``now``; ``None`` when absent or unreadable.

    It is either whole seconds or an HTTP date (RFC 9110 §10.2.3); a date in
    the past means "now" (0).
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is GMT; a date without a zone is taken as such
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def next_attempt_at(
    attempts_made: int,
    failed_at: datetime,
    schedule: Sequence[float],
    *,
    random: Callable[[], float],
    retry_after: float | None = None,
) -> datetime | None:
    """When to try again after the ``attempts_made``-th attempt failed at ``failed_at``.

    ``None`` once the schedule is spent: the message is then ``failed``.
    ``random`` answers a float in [0, 1) (``random.random`` in the app, a
    fixed value in tests).  ``retry_after`` (seconds, from the response of a
    429 or 503) is the least wait: the jittered schedule may wait longer.
    """
    if attempts_made < 1:
        raise ValueError("next_attempt_at is asked after at least one attempt")
    if attempts_made > len(schedule):
        return None
    scheduled = schedule[attempts_made - 1]
    wait = scheduled * (1 - JITTER + 2 * JITTER * random())
    if retry_after is not None:
        wait = max(wait, min(retry_after, MAX_RETRY_AFTER))
    return failed_at + timedelta(seconds=wait)


def failing_too_long(failing_since: datetime | None, now: datetime, limit: timedelta) -> bool:
    """Whether an endpoint failing every attempt since ``failing_since`` is to be disabled."""
    return failing_since is not None and now - failing_since >= limit
