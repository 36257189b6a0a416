"""Replays take turns on threads of their own, so that one client cannot take the API with them.

A replay (a contract's state, conflicts or priorities as of a version or a time, a
what-if ranking, a diff, an audit of the hash chain, the dashboard's timeline and
conflict pages) loads a contract from its snapshot and events: tens of milliseconds
of CPU for a large contract, over a hundred for the 10,000-event one of
``make bench``.  Run in the general thread pool, a client sending many at once held
the GIL against the event loop and the group committer, and filled the pool that
every synchronous route waits for.

So each API process runs at most ``NEEDLE_REPLAY_CONCURRENCY`` replays at once, on
threads counted by one ``anyio.CapacityLimiter`` (first come, first served); the
others wait in the event loop, holding no thread.  One caller (an API key) may have
at most ``NEEDLE_REPLAY_QUEUE_PER_KEY`` replays running or waiting; beyond that, a
replay is refused at once: 429 ``rate_limited`` with ``Retry-After: 1``.  A burst of
one key therefore delays another key's replay by at most that many turns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from anyio import CapacityLimiter, to_thread
from fastapi import HTTPException

from domain.organisations import Caller
from workflows.settings import Settings

T = TypeVar("T")

RETRY_AFTER_SECONDS = 1


@dataclass
class ReplayTurns:
    """One API process's replay threads and each caller's replays under way."""

    concurrency: int
    per_key: int
    limiter: CapacityLimiter = field(init=False)
    under_way: dict[str, int] = field(default_factory=dict)
    """Principal id → replays of that caller running or waiting here."""

    def __post_init__(self) -> None:
        self.limiter = CapacityLimiter(self.concurrency)

    @classmethod
    def of(cls, settings: Settings) -> ReplayTurns:
        return cls(settings.replay_concurrency, settings.replay_queue_per_key)

    async def run(self, caller: Caller, function: Callable[..., T], *args: Any,
                  **kwargs: Any) -> T:
        """``function(*args, **kwargs)`` on a replay thread, when its turn comes; 429 when
        ``caller`` already has ``per_key`` replays running or waiting."""
        key = caller.principal_id
        if self.under_way.get(key, 0) >= self.per_key:
            raise HTTPException(
                429, f"{self.per_key} replays of this key are already under way; wait for "
                "them, then try again", headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        self.under_way[key] = self.under_way.get(key, 0) + 1
        try:
            return await to_thread.run_sync(partial(function, *args, **kwargs),
                                            limiter=self.limiter)
        finally:
            left = self.under_way[key] - 1
            if left:
                self.under_way[key] = left
            else:
                del self.under_way[key]


def replay_turns(state: Any) -> ReplayTurns:
    """The process's ``ReplayTurns`` (``api/main.py`` makes it with the app)."""
    turns: ReplayTurns = state.replay_turns
    return turns
