"""A group-commit batch's aggregates: one object per id, borrowed from the cache under its
load lock (``workflows/group_commit.py`` runs the batch's commands on them)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from workflows.store import STORE_OUTAGES

log = logging.getLogger("threadneedle.group_commit")


class WorkingSet:
    """The aggregates one batch has loaded or created: one object per id for the whole batch.

    A cached aggregate is *borrowed*: the batch runs its commands on the cached
    object itself, holding that aggregate's load lock
    (``LoadSafeRepository.lock_for``) until the batch is saved or abandoned, so no
    reader copies it half-changed and nothing is deep-copied per batch (copying a
    contract and its conflict tracker was most of a batch's CPU with a few
    thousand directives).  A batch that is not saved ``release``s with
    ``keep=False``: what it borrowed is dropped from the cache and loaded again
    from the store by whoever needs it next.  An aggregate not in the cache is
    loaded (a copy) from the store.

    ``after``: the working set of the batch still being written (the pipelined
    committer): its aggregates, with that batch's changes, are this batch's too,
    borrowed under their locks like cached ones (a copy it loaded goes into the cache
    when that batch is saved).  If that batch is not saved, neither is this one.
    """

    def __init__(self, repository: Any, *, refresh: bool = False,
                 after: WorkingSet | None = None) -> None:
        self._repository = repository
        self._refresh = refresh
        """Bring a borrowed aggregate up to the store first (several API processes)."""
        self._after = after
        self.aggregates: dict[UUID, Any] = {}
        self._loaded_at: dict[UUID, int] = {}
        self._borrowed: list[tuple[UUID, Any]] = []
        self.unchecked = False
        """Whether a copy came from the cache unchecked: a refusal may then be stale."""
        self.strangers: list[Any] = []
        """New aggregates whose id is already taken in the batch: saved, so the store refuses."""

    def get(self, aggregate_id: UUID) -> Any:
        """The batch's copy: from the batch being written, else from the cache as it is when
        cached (the commit's version check catches one that another process has moved
        on), else from the store."""
        found = self.aggregates.get(aggregate_id)
        if found is None:
            lock = self._repository.lock_for(aggregate_id)
            lock.acquire()
            if self._after is not None:
                found = self._after.aggregates.get(aggregate_id)
            if found is None:
                found = self._repository.cached(aggregate_id)
                if found is not None and self._refresh:
                    found = self._fast_forward(aggregate_id, found)
            if found is None:
                lock.release()
                found = self._repository.get(aggregate_id)
            else:
                self._borrowed.append((aggregate_id, lock))
                self.unchecked = True
            self.aggregates[aggregate_id] = found
            self._loaded_at[aggregate_id] = found.version
        return found

    def _fast_forward(self, aggregate_id: UUID, cached: Any) -> Any:
        """The cached aggregate with the events other processes stored since, applied in
        place (its lock held); None (and dropped from the cache) if they do not apply."""
        try:
            for event in self._repository.event_store.get(aggregate_id, gt=cached.version):
                cached = event.mutate(cached)
        except STORE_OUTAGES:
            self._repository.forget(aggregate_id)
            raise
        except Exception:
            log.exception("a cached aggregate could not be brought up to the store")
            self._repository.forget(aggregate_id)
            return None
        return cached

    def release(self, *, keep: bool) -> None:
        """Give back what was borrowed: kept in the cache (saved, or unchanged), or, with
        ``keep=False``, what the batch changed dropped from it (changed but not saved).
        Once; later calls do nothing."""
        borrowed, self._borrowed = self._borrowed, []
        for aggregate_id, lock in reversed(borrowed):
            if not keep and self.aggregates[aggregate_id].version != self._loaded_at[aggregate_id]:
                self._repository.forget(aggregate_id)
            lock.release()

    def versions(self) -> dict[UUID, int]:
        return {aggregate_id: a.version for aggregate_id, a in self.aggregates.items()}

    def changed_since(self, before: dict[UUID, int]) -> bool:
        """Whether any working copy moved since ``before`` (loads in between count from load)."""
        return any(
            a.version != before.get(aggregate_id, self._loaded_at.get(aggregate_id, a.version))
            for aggregate_id, a in self.aggregates.items()
        )

    def adopt(self, aggregates: Iterable[Any]) -> None:
        for aggregate in aggregates:
            known = self.aggregates.setdefault(aggregate.id, aggregate)
            if known is not aggregate and aggregate not in self.strangers:
                self.strangers.append(aggregate)

    def to_save(self) -> list[Any]:
        return [*self.aggregates.values(), *self.strangers]
