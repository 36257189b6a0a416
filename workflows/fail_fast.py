"""A store outage answers promptly: the PostgreSQL recorders retry a few times, not ten.

The ``eventsourcing`` library wraps every PostgreSQL read and write of its
recorders in ``@retry((InterfaceError, OperationalError), max_attempts=10,
wait=0.2)``, and each attempt waits up to ``POSTGRES_CONNECT_TIMEOUT`` (1 s here)
for a pooled connection: an outage took about 12 s to become a 503, and a
command's client often gave up first.  The retries exist for a pooled
connection the server dropped (pre-ping catches most of those before use), which
one or two more attempts cover; so each method is re-wrapped around the
library's own undecorated function (kept by ``functools.wraps`` as
``__wrapped__``) with ``NEEDLE_STORE_ATTEMPTS`` attempts: an outage is a 503
after about ``attempts × 1.2 s``.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresTrackingRecorder,
)
from eventsourcing.utils import retry

RETRIED: dict[type, tuple[str, ...]] = {
    PostgresAggregateRecorder: ("insert_events", "select_events"),
    PostgresApplicationRecorder: ("insert_events", "select_notifications",
                                  "max_notification_id"),
    PostgresTrackingRecorder: ("insert_tracking", "max_tracking_id", "has_tracking_id"),
}
WAIT_SECONDS = 0.2
"""Between attempts, as the library waits."""


def limit_store_retries(attempts: int) -> None:
    """Make each retried PostgreSQL recorder method try at most ``attempts`` times."""
    for cls, names in RETRIED.items():
        for name in names:
            method: Any = cls.__dict__.get(name)
            if method is None:
                continue
            original = getattr(method, "_library_function", None) or getattr(
                method, "__wrapped__", None)
            if original is None:  # the library changed how it retries: leave it be
                continue
            if getattr(method, "_attempts", None) == attempts:
                continue
            limited: Any = retry((InterfaceError, OperationalError), max_attempts=attempts,
                                 wait=WAIT_SECONDS)(original)
            limited._library_function = original
            limited._attempts = attempts
            setattr(cls, name, limited)


def attempts_of(cls: type, name: str) -> int | None:
    """How many attempts a recorder method makes, when set here (for tests)."""
    return getattr(cls.__dict__.get(name), "_attempts", None)
