"""What the open conflicts of a contract hold back in its ranking (SPEC §5): the members
of an open blocking conflict (tier 5: shown, never scheduled), and, for each member of an
open one-side conflict, the schedule outcome it gets unless it is that conflict's
best-ranked schedulable member (``contested``, ``covered``).

``ConflictSides`` keeps them by member and, kept from one ranking of a contract to the
next (``domain.priorities.RankMemo``), reads only the conflicts whose record changed:
records are replaced, never changed in place, so a conflict whose record is the same
object counts as before.  Counting every member of every open conflict again was an
eighth of a 5,000-directive contract's projection batch.  When the caller knows which
records were written since the last count (``update_written``), the others are not even
walked: a walk over the 6,000 conflict records of such a contract was still a fifteenth.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import Any

from domain.conflicts import blocking_kinds, one_side_outcomes


class ConflictSides:
    """The open conflicts of the records last given to ``update``, by member."""

    def __init__(self) -> None:
        self.blocked: dict[str, int] = {}
        """Directive id → how many open blocking conflicts it is a member of (only ids
        with some: ``id in blocked`` says whether it is blocked)."""
        self.sided: dict[str, dict[Hashable, str]] = {}
        """Directive id → each open one-side conflict it is a member of → the outcome it
        gets when it is not that conflict's best-ranked schedulable member."""
        self._records: dict[Hashable, Mapping[str, Any]] = {}
        """The open conflicts counted, by id (by place, for detections, which have none)."""
        self._blocking, self._sides = blocking_kinds(), one_side_outcomes()

    def update(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Count the open ones of these conflict records (a conflict view's, or detections,
        which are all open) instead of those of the last call."""
        current: dict[Hashable, Mapping[str, Any]] = {}
        for place, record in enumerate(records):
            if _is_open(record):
                current[record.get("id", place)] = record
        counted = self._records
        for key, record in counted.items():
            if current.get(key) is not record:
                self._count(key, record, -1)
        for key, record in current.items():
            if counted.get(key) is not record:
                self._count(key, record, 1)
        self._records = current

    def update_written(self, view: Mapping[str, Mapping[str, Any]],
                       written: Iterable[str]) -> None:
        """Count again only these conflicts of ``view``, the conflict view the last update
        counted: their records were written since (``ServiceContract.conflicts_written``),
        and every other record is the one counted."""
        counted = self._records
        for key in written:
            before = counted.get(key)
            record = view.get(key)
            now = record if record is not None and _is_open(record) else None
            if before is now:
                continue
            if before is not None:
                self._count(key, before, -1)
                del counted[key]
            if now is not None:
                self._count(key, now, 1)
                counted[key] = now

    def _count(self, key: Hashable, record: Mapping[str, Any], step: int) -> None:
        kind = record["kind"]
        if kind in self._blocking:
            blocked = self.blocked
            for member in record["members"]:
                left = blocked.get(member, 0) + step
                if left:
                    blocked[member] = left
                else:
                    del blocked[member]
        elif (outcome := self._sides.get(kind)) is not None:
            sided = self.sided
            for member in record["members"]:
                if step > 0:
                    sided.setdefault(member, {})[key] = outcome
                    continue
                held = sided[member]
                held.pop(key, None)
                if not held:
                    del sided[member]


def _is_open(record: Mapping[str, Any]) -> bool:
    return record.get("status", "open") == "open"  # (detections have no status: all open)
