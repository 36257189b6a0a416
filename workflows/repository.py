"""A repository whose loads of one cached aggregate take turns (``eventsourcing`` 9.5)."""

from __future__ import annotations

import contextlib
import threading
from copy import deepcopy
from typing import Any

from eventsourcing.application import Repository


class LoadSafeRepository(Repository):
    """Serialise loads of one cached aggregate.

    ``eventsourcing`` 9.5 fast-forwards a cached aggregate under a lock but
    deep-copies it after releasing that lock, so a thread copying the aggregate
    while another fast-forwards it fails with "dictionary changed size during
    iteration" (seen with 32 concurrent directives on one contract).
    """

    STRIPES = 1024
    """Many, so that a batch holding the locks of the contracts it borrowed (``borrow``)
    seldom holds up a load of anything else."""
    BUSY_SECONDS = 0.05
    """How long a load waits for a lock that a group-commit batch holds before it loads
    what is stored instead: the pipelined committer keeps an aggregate borrowed from one
    batch to the next while commands on it keep coming (``workflows/group_commit.py``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Re-entrant: the group-commit leader holds the locks of what it borrowed
        # while it loads other aggregates (which may fall in the same stripe).
        self._load_locks = [threading.RLock() for _ in range(self.STRIPES)]

    def lock_for(self, aggregate_id: Any) -> threading.RLock:
        """The lock a load of this aggregate from the cache takes."""
        return self._load_locks[hash(aggregate_id) % self.STRIPES]

    def get(self, aggregate_id: Any, *, version: int | None = None, **kwargs: Any) -> Any:
        if version is not None or not self.cache:
            return self._fresh(super().get(aggregate_id, version=version, **kwargs), version)
        lock = self._load_locks[hash(aggregate_id) % self.STRIPES]
        if not lock.acquire(timeout=self.BUSY_SECONDS):
            # Borrowed by a batch that keeps it (being changed, then written): what is
            # stored, rather than waiting for a pause in the commands on it.
            return self._stored(aggregate_id, **kwargs)
        try:
            if getattr(self.cached(aggregate_id), "_pending_events", None):
                # Borrowed and changed by this thread's batch (``WorkingSet``), not yet
                # saved: a load sees what is stored, as it would anywhere else.
                return self._stored(aggregate_id, **kwargs)
            aggregate = self._fresh(super().get(aggregate_id, **kwargs), None)
            if aggregate is not None and vars(aggregate).get("reloaded_from_events"):
                del vars(aggregate)["reloaded_from_events"]
                self.cache.put(aggregate_id, deepcopy(aggregate))
            return aggregate
        finally:
            lock.release()

    def _stored(self, aggregate_id: Any, **kwargs: Any) -> Any:
        """The aggregate as stored, loaded without the cache."""
        stored = Repository(event_store=self.event_store, snapshot_store=self.snapshot_store)
        return self._fresh(stored.get(aggregate_id, **kwargs), None)

    def _fresh(self, aggregate: Any, version: int | None) -> Any:
        """The aggregate, or, when it came from a snapshot of an older fold of its state
        (``ServiceContract.upcast_v1_v2``), the same aggregate folded from its events."""
        if not vars(aggregate).get("stale_conflicts"):
            return aggregate
        plain = Repository(event_store=self.event_store)
        reloaded: Any = plain.get(aggregate.id, version=version if version else aggregate.version)
        vars(reloaded)["reloaded_from_events"] = True
        return reloaded

    def cached(self, aggregate_id: Any) -> Any:
        """The cached aggregate itself (None if not cached), as it is: no copy and no
        question to the store.  Take ``lock_for`` first and hold it for as long as the
        object is used or changed, so no load copies it half-changed."""
        if not self.cache:
            return None
        try:
            return self.cache.get(aggregate_id)
        except KeyError:
            return None

    def forget(self, aggregate_id: Any) -> None:
        """Drop the aggregate from the cache (its cached object was changed but not saved)."""
        if self.cache:
            with self.lock_for(aggregate_id), contextlib.suppress(KeyError):
                self.cache.get(aggregate_id, evict=True)
