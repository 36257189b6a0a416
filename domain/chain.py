"""The hash chain that lets a supervisor prove a history was not altered.

Every recorded event carries ``prev_hash`` (the hash of the event before it,
or ``GENESIS`` for the first) and its own ``hash``: the SHA-256 of the
canonical JSON of its record.  Altering any stored event breaks either its own
hash or the link from the event after it.

A chain alone cannot stop someone who can write to the database: they may
rewrite an event and recompute every hash after it, or delete the last events.
So each aggregate's head is also *anchored*: its version and head hash are kept
outside the events table with a seal, an HMAC-SHA256 under a server key the
database never holds (``head_seal``; written in the same transaction as the
events, ``workflows/anchoring.py``).  Snapshots are sealed the same way over
their state and the head hash they were taken at (``ChainedSnapshot``).  The
functions here are pure: the key is passed in.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.domain import Aggregate, Snapshot

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


def _mac(key: bytes, *parts: object) -> str:
    message = "\x00".join(str(part) for part in parts).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def head_seal(key: bytes, aggregate_id: UUID, version: int, head_hash: str) -> str:
    """The seal of an aggregate's anchored head: only the key's holder can make one."""
    return _mac(key, "head", aggregate_id, version, head_hash)


def adoption_seal(key: bytes, adopted: int) -> str:
    """The seal of the marker saying anchoring is on (``adopted`` heads were anchored then)."""
    return _mac(key, "adopted", adopted)


def snapshot_seal(key: bytes, snapshot: Any, state_digest: str) -> str:
    """The seal of a snapshot (of any snapshot class): an HMAC over its id, version, topic,
    the head hash it recorded and ``state_digest``, the digest of its state (the caller's:
    ``workflows.anchoring.state_digest``)."""
    return _mac(key, "snapshot", snapshot.originator_id, snapshot.originator_version,
                snapshot.topic, snapshot.state.get("head_hash", ""), state_digest)


def stored_snapshot_seal(key: bytes, originator_id: UUID, version: int, topic: str,
                         body_digest: str) -> str:
    """The seal of a snapshot as stored: an HMAC over its id, version, topic and
    ``body_digest``, the digest of its stored bytes before the seal
    (``workflows.anchoring.seal_stored``)."""
    return _mac(key, "stored snapshot", originator_id, version, topic, body_digest)


class ChainedSnapshot(Snapshot):
    """A snapshot that records the head hash it was taken at and can carry a seal.

    ``state["head_hash"]`` is the hash of the event at ``originator_version``.
    A snapshot is stored sealed (``workflows.anchoring.seal_stored``): ``stored_seal``, the
    last key of its stored JSON, is an HMAC over the bytes before it
    (``stored_snapshot_seal``), so an altered snapshot is refused on load without reading
    its JSON.  ``seal``, of snapshots stored by earlier releases, is an HMAC over the id,
    version, topic, head hash and the digest of the state (``snapshot_seal``).
    """

    seal: str = ""
    stored_seal: str = ""


def unsealed(snapshot: Any) -> Any:
    """A copy of ``snapshot`` (of any snapshot class) carrying no seal: events are frozen."""
    copy = object.__new__(type(snapshot))
    copy.__dict__.update({name: value for name, value in snapshot.__dict__.items()
                          if name not in ("seal", "stored_seal")})
    return copy


class ChainedAggregate(Aggregate):
    """An aggregate whose every event carries its actor, its data and the chain."""

    class Snapshot(ChainedSnapshot):
        """Every chained aggregate's snapshots are chained (recorded head, seal)."""

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


@dataclass(frozen=True)
class Anchor:
    """An aggregate's head as the application last recorded it, sealed under the server key."""

    version: int
    head_hash: str
    seal: str


def check_anchor(
    key: bytes, aggregate_id: UUID, events: Sequence[ChainedAggregate.Event],
    anchor: Anchor | None,
) -> ChainReport | None:
    """``None`` when a verified chain ends exactly at a validly sealed anchor, else why not.

    Run after ``verify_chain`` passed.  A chain shorter than its anchor lost its
    last events; one whose event at the anchored version has another hash was
    rewritten (hashes recomputed or not); one longer than its anchor has events
    the application did not record (the caller re-reads the anchor first, in
    case a write landed between the two reads).
    """
    count = len(events)
    head = events[-1].hash if events else GENESIS
    if anchor is None:
        return ChainReport(False, count, head, None,
                           "the chain has no anchor: its head was never recorded by the "
                           "application, or its anchor was deleted")
    if not hmac.compare_digest(anchor.seal, head_seal(key, aggregate_id, anchor.version,
                                                      anchor.head_hash)):
        return ChainReport(False, count, head, None,
                           "the anchor's seal is not valid under the server key: the anchor "
                           "was altered (or the key changed)")
    if count < anchor.version:
        return ChainReport(False, count, head, count + 1,
                           f"events {count + 1}..{anchor.version} are missing: the anchor "
                           f"records version {anchor.version}")
    if events[anchor.version - 1].hash != anchor.head_hash:
        return ChainReport(False, count, head, None,
                           f"the event at the anchored version {anchor.version} does not have "
                           "the anchored hash: the history was rewritten and its hashes "
                           "recomputed")
    if count > anchor.version:
        return ChainReport(False, count, head, anchor.version + 1,
                           f"events after the anchored version {anchor.version} were not "
                           "recorded by the application")
    return None
