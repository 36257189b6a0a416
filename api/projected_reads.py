"""The live views the API serves from Redis, and the read-your-writes wait.

A live read answers the projection's position together with what it read (one
atomic read in ``workflows.view_store``), so ``X-Projection-Position`` always
describes the document it accompanies.  ``min_position`` waits, polling the
position from a worker thread and sleeping on the event loop, never blocking
it; a projection that does not get there in time is ``projection_lagging``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from anyio import to_thread

from domain.conflict_records import listed
from domain.errors import DomainError
from workflows import view_store

POSITION_HEADER = "X-Projection-Position"
DEFAULT_WAIT_SECONDS = 5.0
MAX_WAIT_SECONDS = 30.0
FIRST_POLL_SECONDS, LAST_POLL_SECONDS = 0.01, 0.1

T = TypeVar("T")


class ProjectionLagging(DomainError):
    """The views have not reached the position the client asked for within its wait."""

    code = "projection_lagging"


class ViewsUnavailable(DomainError):
    """No Redis is configured, so there are no live views (replay still answers)."""

    code = "views_unavailable"


@dataclass(frozen=True)
class Freshness:
    """``min_position`` and ``wait`` of a live-view query."""

    min_position: int | None = None
    wait: float = DEFAULT_WAIT_SECONDS


@dataclass(frozen=True)
class ProjectedReads:
    client: Any  # a redis.Redis, or None when none is configured

    async def conflicts(
        self, contract_id: str, status: str | None, freshness: Freshness
    ) -> tuple[int, dict[str, Any]]:
        """A contract's conflict view, filtered by ``status`` as replay filters it."""
        listed({}, status)  # refuses a bad status before waiting for anything
        read = await self._fresh(
            lambda: view_store.read_contract_view(self.client, "conflicts", contract_id), freshness,
            view_store.contract_partition(contract_id),
        )
        document = read.value or {"contract_id": contract_id, "version": None, "conflicts": []}
        records = {record["id"]: record for record in document["conflicts"]}
        return read.position, {
            **document, "position": read.position, "conflicts": listed(records, status),
        }

    async def priorities(
        self, contract_id: str, freshness: Freshness
    ) -> tuple[int, dict[str, Any]]:
        read = await self._fresh(
            lambda: view_store.read_contract_view(self.client, "priorities", contract_id),
            freshness,
            view_store.contract_partition(contract_id),
        )
        document = read.value or {
            "contract_id": contract_id, "version": None, "profile": None, "weights": None,
            "reference_date": None, "priorities": [],
        }
        return read.position, {**document, "position": read.position}

    async def board(
        self, readable: Collection[str], now: datetime, freshness: Freshness,
        start: int = 0, stop: int = -1,
    ) -> tuple[int, dict[str, Any]]:
        """Open conflicts of the ``readable`` contracts, most overdue first (of the board's
        ranks ``start``..``stop``: the dashboard pages through it)."""
        read = await self._fresh(lambda: view_store.read_board(self.client, start, stop), freshness)
        at = now.timestamp()
        items = [
            {**item, "overdue_seconds": max(0.0, at - datetime.fromisoformat(item["due"])
                                            .timestamp())}
            for item in read.value if item["contract_id"] in readable
        ]
        return read.position, {"items": items}

    async def _fresh(self, read: Callable[[], T], freshness: Freshness,
                     partition: str | None = None) -> T:
        """``partition``: a contract's view waits for its own partition only; the board
        waits for every partition."""
        if self.client is None:
            raise ViewsUnavailable("live views need Redis; ask with ?version= or ?as_of=")
        if freshness.min_position is not None:
            await self._reach(freshness.min_position, freshness.wait, partition)
        return await to_thread.run_sync(read)

    async def _reach(self, wanted: int, wait: float, partition: str | None = None) -> None:
        deadline = time.monotonic() + wait
        pause = FIRST_POLL_SECONDS
        while True:
            position = await to_thread.run_sync(view_store.read_position, self.client, partition)
            if position >= wanted:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProjectionLagging(
                    f"the views are at position {position}, not yet {wanted}; "
                    "try again shortly"
                )
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, LAST_POLL_SECONDS)
