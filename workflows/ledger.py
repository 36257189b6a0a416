"""The ledger: the ``eventsourcing`` application, kept to load, save, retry and idempotency.

Every use case (``workflows/directory.py``, ``contracts.py``, ``directives.py``,
``resolution.py``, ``subscriptions.py``, ``history.py``) is a plain function
that takes the ledger first.  A command hands ``Ledger.execute`` an *attempt*:
a function that loads what it needs through ``Ledger.load``/``Ledger.find``,
changes it and answers a ``Change``.  The ledger runs the attempt, saves what
it changed (with the command's idempotency record, if it has a key) and
retries it when another writer got there first.  Concurrent commands are
recorded together, one transaction per batch, by ``workflows/group_commit.py``,
which calls back through the public methods below (``attempt_until_saved``,
``earlier``, ``with_idempotency``, ``Change.answer``, and the three steps of a save:
``prepare_save``, ``write``, ``finish_save``).

The library tuning also lives here: the faster transcoder, sealed snapshots,
the load-safe repository (``workflows/repository.py``) and, on PostgreSQL,
fail-fast store retries and a save recorded with one statement
(``workflows/array_recorder.py``).

Long (about 440 lines) because the library's ``save`` is taken apart here into the
steps the pipelined group commit runs on two threads; each step needs the
application's mapper, recorder, cache and snapshot store.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, cast
from uuid import UUID, uuid4

from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    ProcessingEvent,
    Repository,
)
from eventsourcing.domain import BaseAggregate
from eventsourcing.persistence import (
    EventStore,
    IntegrityError,
    Notification,
    Recording,
    StoredEvent,
    Transcoder,
)
from eventsourcing.postgres import PostgresAggregateRecorder
from eventsourcing.utils import get_topic
from psycopg.sql import SQL, Identifier

from domain.chain import ChainedAggregate
from domain.contract import ServiceContract
from domain.errors import DomainError, IdempotencyKeyReused, NotFound
from domain.organisations import Caller, Directory
from workflows import anchoring
from workflows.array_recorder import ArrayInsertRecorder
from workflows.fail_fast import limit_store_retries
from workflows.group_commit import GroupCommitter
from workflows.idempotency import IdempotencyRecord, IdempotentRequest
from workflows.repository import LoadSafeRepository
from workflows.settings import Settings
from workflows.store import position_of, schema_lock
from workflows.transcoding import FastJSONTranscoder


class ContentionError(DomainError):
    """A command kept meeting concurrent writes and gave up."""

    code = "contention"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class CommandResult:
    id: str
    version: int
    position: int
    replayed: bool = False
    extra: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        body = {"id": self.id, "version": self.version, "position": self.position}
        return {**(self.extra or {}), **body}


@dataclass
class Change:
    """What one attempt of a command produced: the aggregates to save and its result."""

    aggregates: list[ChainedAggregate]
    target: ChainedAggregate
    result_id: str
    extra: dict[str, Any] | None = None

    def answer(self, version: int, position: int) -> CommandResult:
        """The command's answer once its target was recorded at ``version``, ``position``."""
        return CommandResult(self.result_id, version, position, extra=self.extra)


Attempt = Callable[[], Change]


@dataclass
class PreparedSave:
    """A save's events, collected and mapped, not yet written (``Ledger.prepare_save``)."""

    processing_event: ProcessingEvent[UUID]
    stored_events: list[StoredEvent]
    snapshots: list[StoredEvent]
    """Of the aggregates as this save leaves them, written after it."""


class Ledger(Application):
    name = "threadneedle"
    is_snapshotting_enabled = True
    snapshotting_intervals = {ServiceContract: 100, Directory: 100}  # noqa: RUF012

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utc_now,
        new_id: Callable[[], UUID] = uuid4,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.new_id = new_id
        self._command_locks = [threading.Lock() for _ in range(64)]
        interval = settings.snapshot_interval
        self.snapshotting_intervals = {  # type: ignore[misc]  # per instance, from settings
            ServiceContract: interval, Directory: interval,
        }
        self.chain_key = anchoring.chain_key(settings)
        if settings.uses_postgres:
            limit_store_retries(settings.store_attempts)  # an outage is a prompt 503
            with schema_lock(settings.event_store):
                super().__init__(env={**anchoring.anchored_env(settings),
                                      "APPLICATION_RECORDER_TOPIC": get_topic(ArrayInsertRecorder)})
                anchoring.adopt_existing(self, self.chain_key)
        else:
            super().__init__(env=anchoring.anchored_env(settings))
            anchoring.adopt_existing(self, self.chain_key)

    # --- library tuning ---------------------------------------------------------

    def construct_transcoder(self) -> Transcoder:
        transcoder = FastJSONTranscoder()  # same stored bytes, faster loads
        self.register_transcodings(transcoder)
        return transcoder

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        """The library's ``save``, in the three steps the group committer takes apart
        (``prepare_save``, ``write``, ``finish_save``): the pipelined committer writes one
        batch on its writer thread while it runs the next (``workflows/group_commit.py``)."""
        prepared = self.prepare_save(*objs, **kwargs)
        return self.finish_save(prepared, self.write(prepared))

    def prepare_save(self, *objs: Any, **kwargs: Any) -> PreparedSave:
        """The aggregates' new events collected (so they are no longer pending) and mapped
        to stored events, with each aggregate's new anchor; nothing written yet.

        The events are collected without the library's checks against runtime
        ``Protocol``s (in Python 3.11 each walks the protocol's class: ~5 % of the group
        committer's time); anything else is collected as the library does."""
        processing_event: ProcessingEvent[UUID] = ProcessingEvent()
        for obj in objs:
            if isinstance(obj, BaseAggregate):
                processing_event.events.extend(obj.collect_events())
                processing_event.aggregates[obj.id] = obj
            else:
                processing_event.collect_events(obj)
        processing_event.saved_kwargs.update(kwargs)
        # each aggregate's new head, anchored in the events' transaction (workflows/anchoring.py)
        processing_event.saved_kwargs["chain_heads"] = anchoring.heads_of(
            processing_event.events, self.chain_key)
        mapper = self.events.mapper
        return PreparedSave(processing_event,
                            [mapper.to_stored_event(e) for e in processing_event.events],
                            self._snapshots_of(processing_event))

    def write(self, prepared: PreparedSave) -> Sequence[int] | None:
        """The prepared events recorded in one transaction; their notification ids.  Touches
        no aggregate: the pipelined committer calls it on its writer thread."""
        if not prepared.stored_events:
            return []
        return self.recorder.insert_events(
            prepared.stored_events, tracking=prepared.processing_event.tracking,
            **prepared.processing_event.saved_kwargs)

    def finish_save(self, prepared: PreparedSave, notification_ids: Sequence[int] | None
                    ) -> list[Recording[UUID]]:
        """After ``write``: the recordings (as ``EventStore.put`` makes them), what was saved
        kept in the cache, snapshots taken and the library's notifications."""
        processing_event = prepared.processing_event
        recordings: list[Recording[UUID]] = []
        if notification_ids:
            for event, stored, notification_id in zip(
                    processing_event.events, prepared.stored_events, notification_ids,
                    strict=True):
                recordings.append(Recording(event, Notification(
                    originator_id=stored.originator_id,
                    originator_version=stored.originator_version,
                    topic=stored.topic, state=stored.state, id=notification_id)))
        self._keep_saved(processing_event)
        if self.snapshots is not None:
            put_snapshots(self.snapshots, prepared.snapshots)
        self._notify(recordings)
        self.notify(processing_event.events)  # as the library's (deprecated there)
        return recordings

    def _keep_saved(self, processing_event: Any) -> None:
        """Keep what was saved in the cache.

        With fast-forwarding on, the library leaves the cache at the old version,
        so the next command would re-apply (and re-fold) the event it just saved.
        The saved aggregate is exactly the recorded state, so it goes in as it is.
        """
        cache = self.repository.cache
        if cache:
            for aggregate_id, aggregate in processing_event.aggregates.items():
                try:
                    cached = cache.get(aggregate_id)
                except KeyError:
                    cached = None
                if cached is None or cached.version < aggregate.version:
                    cache.put(aggregate_id, aggregate)

    def _snapshots_of(self, processing_event: Any) -> list[StoredEvent]:
        """Snapshots of the saved aggregates as they are, rather than replaying them again,
        mapped to stored events now (the pipelined committer changes the aggregates again
        before this save is written), written after it (``finish_save``).

        An aggregate whose saved events cross a multiple of its interval is
        snapshotted at the version it was saved at: with group commit that may be
        a little past the multiple (several commands on one contract in one save),
        which loads just as well and still bounds the events replayed after it.
        """
        if not (self.snapshots and self.snapshotting_intervals):
            return []
        crossed: dict[Any, Any] = {}
        for event in processing_event.events:
            aggregate = processing_event.aggregates.get(event.originator_id)
            interval = self.snapshotting_intervals.get(type(aggregate))
            if aggregate is not None and interval and event.originator_version % interval == 0:
                crossed[event.originator_id] = aggregate
        return [self.snapshots.mapper.to_stored_event(type(a).Snapshot.take(a))
                for a in crossed.values()]

    def construct_snapshot_store(self) -> Any:
        """Sealed snapshots: one whose seal fails is skipped on load (``workflows/anchoring``)."""
        return anchoring.SealedSnapshotStore(
            mapper=anchoring.SnapshotMapper(self.mapper, self.chain_key),
            recorder=self.factory.aggregate_recorder(purpose="snapshots"))

    def construct_repository(self) -> Repository:
        plain = super().construct_repository()
        return LoadSafeRepository(
            event_store=plain.event_store, snapshot_store=plain.snapshot_store,
            cache_maxsize=self.settings.aggregate_cache_size, fastforward=plain.fastforward,
            fastforward_skipping=plain.fastforward_skipping,
            deepcopy_from_cache=plain.deepcopy_from_cache,
        )

    # --- commands ---------------------------------------------------------------

    def execute(
        self,
        caller: Caller,
        request: IdempotentRequest | None,
        attempt: Attempt,
        *,
        serial_key: str | None = None,
    ) -> CommandResult:
        """Run a command, retrying on optimistic-concurrency conflicts; honour idempotency.

        Concurrent commands are recorded together, one transaction per batch
        (``workflows/group_commit.py``).  Without group commit, commands on one
        aggregate (``serial_key``) take turns within this process, so concurrent
        clients of one contract do not all load the same version and all but one
        retry; other processes are still handled by the retries.
        """
        if self.group_commit is not None:
            return cast("CommandResult", self.group_commit.run(caller, request, attempt))
        stripe = hash(serial_key) % len(self._command_locks) if serial_key else None
        with self._command_locks[stripe] if stripe is not None else nullcontext():
            return self.attempt_until_saved(caller, request, attempt)

    def submit(
        self, caller: Caller, request: IdempotentRequest | None, attempt: Attempt,
    ) -> asyncio.Future[CommandResult] | None:
        """``execute`` answered later, through an asyncio future, when group commit is on
        (for an ``async`` route, on its event loop: it awaits the batch without holding a
        thread); ``None`` when commands are saved one by one (then call ``execute`` on a
        thread)."""
        if self.group_commit is None:
            return None
        return self.group_commit.submit_awaitable(caller, request, attempt)

    def attempt_until_saved(
        self, caller: Caller, request: IdempotentRequest | None, attempt: Attempt,
    ) -> CommandResult:
        """One command loaded, run and saved on its own, again after each write conflict."""
        for _ in range(self.settings.command_retries):
            if request is not None and (earlier := self.earlier(caller, request)):
                return earlier
            change = attempt()
            try:
                recordings = self.save(*self.with_idempotency(caller, request, change))
            except IntegrityError:
                continue  # someone else wrote first: reload and try again
            position = max(
                r.notification.id for r in recordings
                if r.domain_event.originator_id == change.target.id
            )
            return change.answer(change.target.version, position)
        raise ContentionError("the contract is being changed too often; try again")

    @cached_property
    def group_commit(self) -> GroupCommitter | None:
        """The one committer of this ledger (None when ``NEEDLE_GROUP_COMMIT=0``)."""
        return GroupCommitter(self) if self.settings.group_commit else None

    def with_idempotency(
        self, caller: Caller, request: IdempotentRequest | None, change: Change
    ) -> list[ChainedAggregate]:
        """What one command saves: its aggregates, and its idempotency record if it has a key."""
        aggregates = list(change.aggregates)
        if request is not None:
            aggregates.append(IdempotencyRecord.keep(
                record_id=request.record_id(caller.principal_id),
                fingerprint=request.fingerprint,
                result={"id": change.result_id,
                        "target": str(change.target.id),
                        "version": change.target.version,
                        "extra": {k: v for k, v in (change.extra or {}).items()
                                  if k != "key"}},
                actor=caller.actor, at=self.clock(),
            ))
        return aggregates

    def earlier(self, caller: Caller, request: IdempotentRequest) -> CommandResult | None:
        """The first answer to this caller's ``Idempotency-Key``, if it was used already."""
        try:
            record: IdempotencyRecord = self.repository.get(request.record_id(caller.principal_id))
        except AggregateNotFoundError:
            return None
        outcome = record.outcome
        if outcome["fingerprint"] != request.fingerprint:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was already used with a different request"
            )
        target = UUID(outcome["target"])
        extra = dict(outcome.get("extra") or {})
        if "org" in extra and "role" in extra:
            extra["key"] = None  # a key is shown once; a repeat cannot show it again
        return CommandResult(
            outcome["id"], outcome["version"], self.position_of(target, outcome["version"]),
            replayed=True, extra=extra or None,
        )

    # --- loading ----------------------------------------------------------------

    def load(self, aggregate_id: UUID) -> object:
        """The running batch's working copy when in one (so a command sees the batch's
        earlier commands), else the repository's copy."""
        working = self.group_commit.working_set() if self.group_commit is not None else None
        return working.get(aggregate_id) if working else self.repository.get(aggregate_id)

    def find(self, kind: type[ChainedAggregate], aggregate_id: str | UUID, noun: str) -> Any:
        """The aggregate of that kind, or ``NotFound`` naming the ``noun``."""
        try:
            uuid = aggregate_id if isinstance(aggregate_id, UUID) else UUID(aggregate_id)
            aggregate: object = self.load(uuid)
        except (ValueError, AggregateNotFoundError):
            raise NotFound(f"no {noun} {aggregate_id}") from None
        if not isinstance(aggregate, kind):
            raise NotFound(f"no {noun} {aggregate_id}")
        return aggregate

    def current(self, aggregate_id: UUID) -> object:
        """The cached aggregate itself, for reading only, when the store holds nothing
        newer; else a fresh load.

        Why: every request authenticates, and all of one client's requests load the
        same principal; the repository's load holds that aggregate's lock across a
        round trip and deep-copies it, so they queued one behind the other.  Here
        the check is one small query, in parallel, and nothing is copied: a key
        revoked by another process is still refused at once.
        """
        repository = cast("LoadSafeRepository", self.repository)
        with repository.lock_for(aggregate_id):  # not while a batch has it borrowed
            cached = repository.cached(aggregate_id)
        if cached is not None and not self.recorder.select_events(
                aggregate_id, gt=cached.version, limit=1):
            return cached
        return self.repository.get(aggregate_id)

    def events_of(
        self,
        originator_id: UUID,
        *,
        gt: int | None = None,
        lte: int | None = None,
        limit: int | None = None,
    ) -> list[ChainedAggregate.Event]:
        """The stored events of one aggregate (every aggregate here is chained)."""
        events = self.repository.event_store.get(originator_id, gt=gt, lte=lte, limit=limit)
        return cast("list[ChainedAggregate.Event]", list(events))

    def position_of(self, originator_id: UUID, version: int) -> int:
        """The global position at which that version of the aggregate was recorded."""
        return position_of(self.recorder, originator_id, version)

    def head_position(self) -> int:
        return int(self.recorder.max_notification_id() or 0)


def put_snapshots(store: EventStore[Any], snapshots: list[StoredEvent]) -> None:
    """Write snapshots (already mapped); on PostgreSQL with one plain INSERT of binary bytes.

    Why: the library's insert sends a composite array, which psycopg dumps as
    escaped text in Python: 0.75 s for the multi-MB snapshot of a contract with
    a few thousand directives, holding the GIL inside the command path.  A
    snapshot of a version already kept (another process took it) is skipped.
    """
    if not snapshots:  # most saves cross no interval: no transaction for nothing
        return
    recorder = store.recorder
    if not isinstance(recorder, PostgresAggregateRecorder):
        recorder.insert_events(snapshots)
        return
    statement = SQL(
        "INSERT INTO {}.{} (originator_id, originator_version, topic, state) "
        "VALUES (%s, %s, %s, %b) ON CONFLICT DO NOTHING"
    ).format(Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name))
    rows = [(s.originator_id, s.originator_version, s.topic, s.state) for s in snapshots]
    with recorder.datastore.transaction(commit=True) as cursor:
        cursor.executemany(statement, rows)
