"""The contract-views projection: event store → conflict, priority and board views in Redis.

The log is the truth and tasks are only hints.  ``ContractViews.catch_up``
reads the notification log after the generation's stored position in
batches, applies each contract event to that contract's aggregate (kept in an
in-memory LRU per generation, loaded through snapshots when it is missing or
ahead), and commits the touched contracts' views and the new position in one
atomic, position-guarded step (``ViewStore.commit``).  The aggregate folds its
own conflicts, so replay and the live view agree by construction; a repeated,
concurrent or killed run leaves exactly what a clean rebuild would.

Every view document records the position of the contract's own last event it
reflects (``position``) and its ``version``: both are facts of the log, so a
view does not depend on how the log was cut into batches.

The projection is split into partitions by contract id (``partition``,
``partitions``; ``workflows.projection_control.PartitionedViews`` drives them
together): a ``ContractViews`` keeps one partition, reading the whole log and
skipping the other partitions' events.  One consumer runs a partition at a
time, under that partition's Redis lease renewed after every batch; a second
one leaves at once.  A commit sets a wake flag and sends a task
(``workflows.projection_control.wake_projections``); the consumer deletes the
flag before it reads the log and looks at it again before and after it lets
the lease go, so a commit is never left waiting for the periodic safety net.

Long (~670 lines) because reading, applying, the lease and the status of one
partition share the projector's state (its caches and lease token); the
partition-wide driving lives in ``projection_control``, and the documents the views
hold are made in ``view_documents``.

"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic

from domain.chain import ChainedAggregate
from domain.conflict_tracker import Cursor
from domain.contract import ServiceContract
from domain.shanghai_calendar import shanghai_date
from workflows import directory, messaging, view_store
from workflows.collector import collection_paused
from workflows.ledger import Ledger
from workflows.view_documents import (
    ConflictTexts,
    RankingTexts,
    board_item_text,
    due_epoch,
    encoded_json,
    priority_document,
)
from workflows.view_store import PassStart, ViewStore

NAME = view_store.CONTRACTS


class LeaseLost(Exception):
    """The one-consumer lease lapsed (a batch outlived it): leave, another consumer goes on."""


def contract_topics() -> list[str]:
    """The topics of every event of a service contract (the log is filtered by them)."""
    classes = [
        value for value in vars(ServiceContract).values()
        if isinstance(value, type) and issubclass(value, ChainedAggregate.Event)
    ]
    return sorted({get_topic(cls) for cls in classes})


@dataclass(frozen=True)
class RunReport:
    processed: int
    complete: bool
    """False when the time budget ran out (or the lease was lost) with work left."""


BatchKey = tuple[int, int, int]
"""Where a batch of the log was read: (first id, most notifications, last id)."""
ReadBatch = tuple[int, int | None, dict[int, list[Notification]]]
"""A batch of the log as read: how many notifications, the last one's id, and they split by
partition."""
KEPT_BATCHES = 4
"""How many batches ``SharedBatch`` keeps: a pass over a rebuild reads up to four batches of
its partition (``_pass_held``) before the next partition reads the same four."""


@dataclass
class SharedBatch:
    """The last batches one process read, split by partition (see ``ContractViews._read``).

    A batch read at a given key never changes: every notification up to its last id is
    committed (commit order is id order), so a kept batch is as good as a new read.  A
    worker that leases several partitions reads the log once for them: their passes
    follow one another over the same batches (up to ``KEPT_BATCHES`` of 25,000 events,
    ~20 MB each, are kept meanwhile, and dropped when the run ends)."""

    batches: OrderedDict[BatchKey, ReadBatch] = field(default_factory=OrderedDict)
    head: int | None = None
    """The head read once for a round of passes over the partitions (``PartitionedViews.run``),
    or None.  Every notification at or below it is committed (commit order is id order), so
    each partition's batch of the round may stop there, and the partitions, level after the
    last round, read the same batch once: one head query and one read of the log a round,
    not one of each per partition.  Later commits set the wake flags: the next round."""


@dataclass
class Boarded:
    """What our commits left of one contract in a generation: its code, each conflict's
    explained record as written (to its conflict hash and, when open, the board), and where
    the contract's log of conflict writes (``ServiceContract.conflicts_written``) and the
    organisations' names (``ConflictTexts.names_key``) stood then."""

    code: str
    written: dict[str, dict[str, Any]]
    cursor: Cursor | None
    names_key: int


@dataclass
class BoardMemo:
    """What this projector's commits left in a generation, by contract id (``Boarded``),
    valid while the generation's position is still ``position`` (the one our last commit
    set).  A batch looks only at the conflicts written since (the names unchanged), and
    writes one only when it differs from what was written; any other writer (another
    consumer, Redis emptied, a failed commit) moves the position or drops the memo, and the
    next batch writes every conflict of the contracts it touches again."""

    position: int = -1
    items: dict[str, Boarded] = field(default_factory=dict)


@dataclass
class Held:
    """Batches applied to the aggregates but not yet written (``project_batch(hold=True)``):
    the stored position they start from, the position read up to, and the contracts touched
    (with the position of each one's last event)."""

    expected: int
    position: int
    began: float
    events: int = 0
    touched: dict[UUID, tuple[ServiceContract, int]] = field(default_factory=dict)


@dataclass
class ContractViews:
    """Keeps the per-contract conflict and priority views and the open-conflict board."""

    app: Ledger
    store: ViewStore
    clock: Callable[[], datetime]
    batch_size: int = 1000
    bulk_batch_size: int = 25_000
    """The batch while the position is more than this far behind the head: catching up
    commits less often and ranks each touched contract once per larger batch; near the
    head, ``batch_size`` keeps views fresh."""
    flush_events: int = 100_000
    flush_seconds: float = 8.0
    """Held batches (``project_batch``) are written at the latest after this many events
    read or seconds (well within ``lock_seconds``, the lease renewed after every batch)."""
    cache_size: int = 2000
    lock_seconds: float = 30.0
    topics: list[str] = field(default_factory=contract_topics)
    partition: int = 0
    partitions: int = 1
    """This projector keeps the contracts whose ``view_store.partition_of`` is ``partition``; the
    store's projection is that partition's (``contracts.p<partition>``)."""

    shared: SharedBatch | None = None
    """Set by ``PartitionedViews`` on the partitions it drives together."""

    def __post_init__(self) -> None:
        self.name = self.store.projection
        self._partition_of: dict[Any, int] = {}
        self._caches: dict[str, OrderedDict[UUID, ServiceContract]] = {}
        self._texts = ConflictTexts()
        self._rankings: dict[UUID, RankingTexts] = {}
        """Each cached contract's last ranking and its entries' JSON (``RankingTexts``)."""
        self._boards: dict[str, BoardMemo] = {}
        self._held: dict[str, Held] = {}
        self._lease_token: str | None = None
        self._reached_head = False
        """The last batch was written up to the head it read: no need to look again (a
        commit after that head sets the wake flag, which the caller looks at)."""

    # --- running ------------------------------------------------------------

    def run(self, budget_seconds: float | None = None) -> RunReport:
        """Catch the live view (and a rebuild, if one is open) up with the log."""
        deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
        processed = 0
        while True:
            try:
                with self._lease() as held:
                    if not held:  # the holder sees the wake flag before or after it leaves
                        return RunReport(processed, complete=True)
                    done, complete = self._run_held(deadline)
                    processed += done
                    if not complete:
                        return RunReport(processed, complete=False)
            except LeaseLost:
                return RunReport(processed, complete=False)
            # A commit that set the flag while we were leaving found the lease still
            # taken and its task left: look once more now that the lease is free.
            if not self.store.client.exists(messaging.wake_key(self.name)):
                return RunReport(processed, complete=True)

    def run_pass(self, deadline: float | None) -> tuple[int, bool, bool]:
        """One pass under the lease, if free: one batch of the live view (and, once it is
        at the head, a few of an open rebuild), then let go, so that one worker serving
        every partition moves them all forward in turn: a partition busy with a stream of
        commits cannot hold the others (and so the lowest position) back.  The caller
        (``PartitionedViews.run``) comes back while there is more or the wake flag was set
        again.  (events, held, more); raises ``LeaseLost`` past the deadline."""
        lock, token = view_store.lock_key(self.name), secrets.token_hex(8)
        start = self.store.begin_pass(lock, token, int(self.lock_seconds * 1000),
                                      messaging.wake_key(self.name))
        if start is None:
            return 0, False, False
        self._lease_token = token
        try:
            return self._pass_held(start, deadline)
        except LeaseLost:
            return 0, True, True
        finally:
            self._lease_token = None
            self.store.client.eval(_RELEASE, 1, lock, token)

    def _pass_held(self, start: PassStart, deadline: float | None) -> tuple[int, bool, bool]:
        # A pass of a round stops at the round's head (``SharedBatch.head``), read before
        # its wake flag was deleted: a commit that set the flag may lie past that head, so
        # a woken partition comes back in the next round, which reads the head again.
        behind = start.woken and self.shared is not None and self.shared.head is not None
        live = start.generation or self.store.current()
        if start.generation and live not in self._held:  # its position, as begin_pass read it
            self._held[live] = Held(expected=start.position, position=start.position,
                                    began=time.monotonic())
        done, caught_up = self.catch_up(live, max_batches=1, deadline=deadline)
        if not caught_up:
            return done, True, True
        current, reference, building = self.store.after_pass(live)
        if current != live:
            return done, True, True
        self._refresh_if_older(live, reference)
        if not (building and self.store.exists(building)):
            return done, True, behind
        rebuilt, caught_up = self.catch_up(building, max_batches=4, deadline=deadline)
        if caught_up and self.store.position(building) >= self.app.head_position():
            self.refresh_if_stale(building)
            if self.store.switch(building):
                self._caches.pop(live, None)
                self._boards.pop(live, None)
                return done + rebuilt, True, behind
        return done + rebuilt, True, True

    def _run_held(self, deadline: float | None) -> tuple[int, bool]:
        processed = 0
        while True:
            self.store.client.delete(messaging.wake_key(self.name))
            live = self.store.current()
            done, complete = self.catch_up(live, deadline=deadline)
            processed += done
            if not complete:
                return processed, False
            if self.store.current() != live:  # Redis was emptied, or a rebuild switched
                continue
            self.refresh_if_stale(live)
            building = self.store.building()
            if building and self.store.exists(building):
                # Interleave: a few batches of the rebuild, then the live view again.
                done, caught_up = self.catch_up(building, max_batches=4, deadline=deadline)
                processed += done
                if caught_up and self.store.position(building) >= self.app.head_position():
                    self.refresh_if_stale(building)
                    if self.store.switch(building):
                        self._caches.pop(live, None)
                        self._boards.pop(live, None)
                if _past(deadline):
                    return processed, False
                continue
            if not self.store.client.exists(messaging.wake_key(self.name)):
                return processed, True
            if _past(deadline):
                return processed, False

    def catch_up(
        self, generation: str, *, max_batches: int | None = None,
        deadline: float | None = None,
    ) -> tuple[int, bool]:
        """Project batches until the position reaches the head; (events, caught up).
        Far behind the head, batches are held (``project_batch(hold=True)``) and written
        together, at the latest when this returns."""
        processed, batches = 0, 0
        try:
            while max_batches is None or batches < max_batches:
                done = self.project_batch(generation, hold=True)
                if done is None:
                    return processed, True
                processed += done
                batches += 1
                if self._reached_head:  # written up to the head read before it (the
                    return processed, True  # caller lets the lease go, or renews it next)
                self._renew()
                if _past(deadline):
                    break
        except BaseException:
            self._held.pop(generation, None)  # the stored position is where we start again
            raise
        self.flush(generation)
        return processed, False

    def project_batch(self, generation: str, *, hold: bool = False) -> int | None:
        """Project the next batch; ``None`` when there was nothing to do.

        The new position is the last notification read when the batch is full,
        else the head read before the batch: both stores make commit order equal
        id order (SQLite has one writer, PostgreSQL's recorder locks the table),
        so no notification at or below the head can appear later.

        With ``hold``, a batch far from the head (more than ``batch_size`` behind it) is
        applied to the aggregates but not written: the next batches go on from it, and
        the views of every contract they touched are written once, with the position,
        when ``flush_events`` were read, ``flush_seconds`` went by, the head is near, or
        ``flush`` is called (a catch-up ranks and encodes each contract once per flush,
        not once per batch).  Nothing is visible, and nothing is lost, before that write:
        a crash starts again from the stored position.

        The garbage collector is paused meanwhile (``collection_paused``): applying and
        ranking make no cycles, and each full collection walked every cached aggregate.
        """
        with collection_paused():
            return self._project_batch(generation, hold=hold)

    def _project_batch(self, generation: str, *, hold: bool) -> int | None:
        held = self._held.pop(generation, None)
        if held is None:
            position = self.store.position(generation)
            held = Held(expected=position, position=position, began=time.monotonic())
        position = held.position
        shared = self.shared
        head = shared.head if shared is not None and shared.head is not None \
            else self.app.head_position()
        if head <= position:
            if held.position != held.expected:
                self._write(generation, held)
            return None
        limit = self.batch_size
        behind = head - position
        if behind > max(self.batch_size, self.bulk_batch_size // 5):
            # catching up: take what is left (up to bulk), not a bulk batch and a small tail
            limit = max(limit, min(self.bulk_batch_size, behind))
        count, last, notifications = self._read(position + 1, limit, head)
        held.position = last if count == limit and last is not None else head
        self._reached_head = False
        held.events += count
        cache = self._caches.setdefault(generation, OrderedDict())
        touched = held.touched
        for notification in notifications:
            contract = self._advance(cache, notification)
            touched[contract.id] = (contract, notification.id)
        if hold and head - held.position > self.batch_size \
                and held.events < self.flush_events \
                and time.monotonic() - held.began < self.flush_seconds:
            self._held[generation] = held
            return count
        if not self._write(generation, held):
            return None  # dropped, or Redis was emptied: the caller starts again
        self._reached_head = held.position >= head
        return count

    def flush(self, generation: str) -> None:
        """Write what ``project_batch(hold=True)`` holds for the generation, if anything."""
        held = self._held.pop(generation, None)
        if held is not None and held.position != held.expected:
            with collection_paused():
                self._write(generation, held)

    def _write(self, generation: str, held: Held) -> bool:
        """The views of the contracts ``held`` touched and its position, in one commit
        guarded by the position it started from; False when the generation is gone."""
        position = held.expected
        board = self._boards.get(generation)
        if board is None or board.position != position:
            board = self._boards[generation] = BoardMemo(position)
        wrote: dict[str, Boarded] = {}
        reference = shanghai_date(self.clock())
        if held.touched:  # (a batch of other partitions' events only moves the position)
            self._texts.use_names(directory.organisation_names(self.app))
        ops: list[list[Any]] = []
        for contract, event_position in held.touched.values():
            ops.extend(self.view_ops(generation, contract, reference, event_position,
                                     board.items, wrote))
        if position == 0:
            ops.append(["set", view_store.reference_key(self.name, generation),
                        reference.isoformat()])
        if not self.store.commit(generation, position, held.position, ops):
            self._boards.pop(generation, None)
            if not self.store.exists(generation):
                self._caches.pop(generation, None)
                return False
            return True
        for contract_id, done in wrote.items():
            kept = board.items.get(contract_id)
            if kept is not None and kept.code == done.code:
                kept.written.update(done.written)
                kept.cursor, kept.names_key = done.cursor, done.names_key
            else:
                board.items[contract_id] = done
        board.position = held.position
        return True

    def _read(self, start: int, limit: int, stop: int) -> tuple[int, int | None,
                                                                 list[Notification]]:
        """This partition's notifications of a batch: (how many the batch read, the last
        one's id, ours).  Partitions driven side by side in one process (``shared``) read
        a batch once: the next partition at the same place takes its share from memory."""
        key = (start, limit, stop)
        shared = self.shared
        kept = shared.batches.get(key) if shared is not None else None
        if kept is not None:
            return kept[0], kept[1], kept[2].get(self.partition, [])
        notifications = self.app.recorder.select_notifications(
            start=start, limit=limit, stop=stop, topics=self.topics,
        )
        last = notifications[-1].id if notifications else None
        if self.partitions == 1:
            return len(notifications), last, list(notifications)
        parts: dict[int, list[Notification]] = {}
        for notification in notifications:
            parts.setdefault(self._partition(notification), []).append(notification)
        if shared is not None:
            shared.batches[key] = (len(notifications), last, parts)
            while len(shared.batches) > KEPT_BATCHES:
                shared.batches.popitem(last=False)
        return len(notifications), last, parts.get(self.partition, [])

    def _partition(self, notification: Notification) -> int:
        originator = notification.originator_id
        found = self._partition_of.get(originator)
        if found is None:
            found = view_store.partition_of(originator, self.partitions)
            if len(self._partition_of) > 100_000:
                self._partition_of.clear()
            self._partition_of[originator] = found
        return found

    def refresh(self) -> int:
        """Recompute every priority view against today's date (urgency changes daily)."""
        with self._lease() as held:
            if not held:
                return 0
            refreshed = self.refresh_generation(self.store.current())
            building = self.store.building()
            if building:
                refreshed += self.refresh_generation(building)
            return refreshed

    def refresh_if_stale(self, generation: str) -> int:
        return self._refresh_if_older(generation, self.store.reference_date(generation))

    def _refresh_if_older(self, generation: str, stored: str | None) -> int:
        """Rank the generation again if its reference date (``stored``) is before today."""
        if stored is None or stored >= shanghai_date(self.clock()).isoformat():
            return 0
        return self.refresh_generation(generation)

    def refresh_generation(self, generation: str) -> int:
        """Call with the lease held: new priority views, same position."""
        position = self.store.position(generation)
        reference = shanghai_date(self.clock())
        cache = self._caches.setdefault(generation, OrderedDict())
        ops: list[list[Any]] = []
        for raw in self.store.client.smembers(view_store.contracts_key(generation)):
            contract_id = raw.decode() if isinstance(raw, bytes) else raw
            current = self.store.conflicts_head(generation, contract_id)
            if current is None:
                continue
            contract = self._at(cache, UUID(contract_id), current["version"])
            document = priority_document(contract, reference, current["position"])
            ops.append(["set", view_store.priorities_key(generation, contract_id),
                        encoded_json(document)])
        ops.append(["set", view_store.reference_key(self.name, generation), reference.isoformat()])
        self.store.commit(generation, position, position, ops)
        return len(ops) - 1

    # --- views ------------------------------------------------------------------

    def view_ops(
        self, generation: str, contract: ServiceContract, reference: date, position: int,
        known: dict[str, Boarded] | None = None,
        wrote: dict[str, Boarded] | None = None,
    ) -> list[list[Any]]:
        """The operations that write a contract's views.  With ``known`` (what this
        projector's commits left in the generation, ``BoardMemo.items``) only the conflicts
        that changed are written, to the board and to the contract's conflict hash, and what
        was written goes into ``wrote``; without it, the hash is written whole.  One walk
        over the contract's conflicts (only those written since ``known``'s cursor, when it
        has one and the names are the same) explains each (from memory when unchanged) and
        decides what to write of it."""
        contract_id, code = str(contract.id), contract.code
        texts_of = self._texts
        known_text, names_key = texts_of.known.get, texts_of.names_key
        kept = known.get(contract_id) if known is not None else None
        if kept is not None and kept.code != code:
            kept = None
        on_board = kept.written if kept is not None else {}
        changed, cursor = contract.conflicts_written(kept.cursor if kept is not None else None)
        walk: Iterable[tuple[str, dict[str, Any]]] = contract.conflicts.items()
        if kept is not None and kept.names_key == names_key and changed is not None:
            walk = [(conflict_id, contract.conflicts[conflict_id]) for conflict_id in changed]
        written: dict[str, dict[str, Any]] = {}
        conflicts = view_store.conflicts_key(generation, contract_id)
        ops: list[list[Any]] = [] if kept is not None else [["del", conflicts]]
        board, items = view_store.board_key(generation), view_store.board_items_key(generation)
        for conflict_id, conflict in walk:
            text_known = known_text(conflict_id)
            if text_known is not None and text_known[0] is conflict \
                    and text_known[1] == names_key:
                explained, text = text_known[2], text_known[3]
            else:
                explained, text = texts_of.made(conflict)
            if on_board.get(conflict_id) is explained:
                continue
            written[conflict_id] = explained
            ops.append(["hset", conflicts, conflict_id, text])
            member = f"{contract_id}:{conflict_id}"
            if conflict["status"] == "open":
                ops.append(["zadd", board, due_epoch(conflict), member])
                ops.append(["hset", items, member,
                            board_item_text(contract, explained, text)])
            else:
                ops.append(["zrem", board, member])
                ops.append(["hdel", items, member])
        if wrote is not None:
            wrote[contract_id] = Boarded(code, written, cursor, names_key)
        ops += [
            ["hset", conflicts, view_store.HEAD_FIELD, encoded_json(
                {"contract_id": contract_id, "position": position, "version": contract.version})],
            ["set", view_store.priorities_key(generation, contract_id),
             self._rankings.setdefault(contract.id, RankingTexts()).document(
                 contract, reference, position)],
            ["sadd", view_store.contracts_key(generation), contract_id],
        ]
        return ops

    def _advance(
        self, cache: OrderedDict[UUID, ServiceContract], notification: Notification
    ) -> ServiceContract:
        """The notification's contract with its event applied (from memory when possible)."""
        originator = notification.originator_id  # a UUID already from both recorders
        contract_id = originator if isinstance(originator, UUID) else UUID(str(originator))
        version = notification.originator_version
        cached = cache.get(contract_id)
        if cached is not None and cached.version == version - 1:
            event: Any = self.app.mapper.to_domain_event(notification)
            event.mutate(cached)
            return self._keep(cache, cached)
        return self._at(cache, contract_id, version)

    def _at(
        self, cache: OrderedDict[UUID, ServiceContract], contract_id: UUID, version: int
    ) -> ServiceContract:
        cached = cache.get(contract_id)
        if cached is not None and cached.version == version:
            return self._keep(cache, cached)
        loaded: Any = self.app.repository.get(contract_id, version=version)
        assert isinstance(loaded, ServiceContract)
        return self._keep(cache, loaded)

    def _keep(
        self, cache: OrderedDict[UUID, ServiceContract], contract: ServiceContract
    ) -> ServiceContract:
        cache[contract.id] = contract
        cache.move_to_end(contract.id)
        while len(cache) > self.cache_size:
            _, evicted = cache.popitem(last=False)
            self._forget(evicted)
        return contract

    def _forget(self, contract: ServiceContract) -> None:
        """Drop what the memos keep of an evicted contract's conflicts, so that they hold no
        more than the bounded cache does (a memo missing an entry only writes it again)."""
        conflict_ids = list(contract.conflicts)
        self._rankings.pop(contract.id, None)
        self._texts.forget(conflict_ids)
        for board in self._boards.values():
            board.items.pop(str(contract.id), None)

    # --- one consumer at a time ---------------------------------------------------

    @contextmanager
    def _lease(self) -> Iterator[bool]:
        client, key, token = self.store.client, view_store.lock_key(self.name), secrets.token_hex(8)
        held = bool(client.set(key, token, nx=True, px=int(self.lock_seconds * 1000)))
        self._lease_token = token if held else None
        try:
            yield held
        finally:
            self._lease_token = None
            if held:
                client.eval(_RELEASE, 1, key, token)

    def _renew(self) -> None:
        if self._lease_token is None:  # driven directly (tests, tools): no lease to keep
            return
        renewed = self.store.client.eval(
            _RENEW, 1, view_store.lock_key(self.name), self._lease_token,
            int(self.lock_seconds * 1000),
        )
        if not renewed:
            raise LeaseLost

    # --- status -------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Position, head, lag in events and seconds, and status of the live view."""
        head = self.app.head_position()
        generation = self.store.current()
        building = self.store.building()
        entry = {"name": self.name, **self._generation_status(generation, head),
                 "generation": generation}
        if building:
            entry["status"] = "rebuilding"
            entry["rebuild"] = {"generation": building,
                                **self._generation_status(building, head)}
        return entry

    def _generation_status(self, generation: str, head: int) -> dict[str, Any]:
        position = self.store.position(generation)
        lag_events = max(0, head - position)
        lag_seconds = 0.0
        if lag_events:
            waiting = self.app.recorder.select_notifications(
                start=position + 1, limit=1, stop=head, topics=self.topics,
            )
            if waiting:
                event: Any = self.app.mapper.to_domain_event(waiting[0])
                recorded: datetime = event.timestamp
                lag_seconds = max(0.0, (self.clock() - recorded).total_seconds())
        return {
            "position": position,
            "head": head,
            "lag_events": lag_events,
            "lag_seconds": round(lag_seconds, 3),
            "status": "live" if lag_events == 0 else "catching_up",
        }


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
