"""The hash chain that lets a supervisor prove a history was not altered.

Every recorded event carries ``prev_hash`` (the hash of the event before it,
or ``GENESIS`` for the first) and its own ``hash``: the SHA-256 of the
canonical JSON of its record.  Altering any stored event breaks either its own
hash or the link from the event after it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.domain import Aggregate

GENESIS = "0" * 64


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no insignificant white space (UTF-8, not escaped)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_hash(
    *,
    type_name: str,
    aggregate_id: UUID,
    version: int,
    at: datetime,
    actor: Mapping[str, str],
    data: Mapping[str, Any],
    prev_hash: str,
) -> str:
    record = {
        "type": type_name,
        "aggregate_id": str(aggregate_id),
        "version": version,
        "at": at.isoformat(),
        "actor": actor,
        "data": data,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(record).encode()).hexdigest()


class ChainedAggregate(Aggregate):
    """An aggregate whose every event carries its actor, its data and the chain."""

    class Event(Aggregate.Event):
        actor: dict[str, str]
        data: dict[str, Any]
        prev_hash: str
        hash: str

        @classmethod
        def type_name(cls) -> str:
            return cls.__qualname__

        def expected_hash(self) -> str:
            return record_hash(
                type_name=self.type_name(),
                aggregate_id=self.originator_id,
                version=self.originator_version,
                at=self.timestamp,
                actor=self.actor,
                data=self.data,
                prev_hash=self.prev_hash,
            )

        def mutate(self, aggregate: Any) -> Any:
            aggregate = super().mutate(aggregate)
            aggregate.head_hash = self.hash
            return aggregate

    if TYPE_CHECKING:  # what the library's metaclass builds at run time, spelled out for mypy
        head_hash: str

        class Created(Event, Aggregate.Created):
            pass

    @classmethod
    def _start(
        cls,
        event_class: type[Any],
        *,
        id: UUID,
        actor: Mapping[str, str],
        at: datetime,
        data: dict[str, Any],
    ) -> Any:
        """Create the aggregate with its first, chained event."""
        digest = record_hash(
            type_name=event_class.type_name(),
            aggregate_id=id,
            version=cls.INITIAL_VERSION,
            at=at,
            actor=actor,
            data=data,
            prev_hash=GENESIS,
        )
        return cls._create(
            event_class,
            id=id,
            timestamp=at,
            actor=dict(actor),
            data=data,
            prev_hash=GENESIS,
            hash=digest,
        )

    def _record(
        self,
        event_class: type[Any],
        *,
        actor: Mapping[str, str],
        at: datetime,
        data: dict[str, Any],
    ) -> None:
        """Trigger the next event of the chain."""
        digest = record_hash(
            type_name=event_class.type_name(),
            aggregate_id=self.id,
            version=self.version + 1,
            at=at,
            actor=actor,
            data=data,
            prev_hash=self.head_hash,
        )
        self.trigger_event(
            event_class,
            timestamp=at,
            actor=dict(actor),
            data=data,
            prev_hash=self.head_hash,
            hash=digest,
        )


@dataclass(frozen=True)
class ChainReport:
    verified: bool
    events: int
    head: str
    first_broken_version: int | None = None
    reason: str | None = None


def verify_chain(events: Iterable[ChainedAggregate.Event]) -> ChainReport:
    """Check every event's own hash and its link to the event before it."""
    previous = GENESIS
    count = 0
    for event in events:
        count += 1
        if event.prev_hash != previous:
            return ChainReport(
                False, count, previous, event.originator_version,
                "prev_hash does not match the hash of the event before it",
            )
        if event.expected_hash() != event.hash:
            return ChainReport(
                False, count, previous, event.originator_version,
                "the event's content does not match its recorded hash",
            )
        previous = event.hash
    return ChainReport(True, count, previous)
