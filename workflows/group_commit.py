"""Group commit: commands that arrive together are recorded in one transaction.

Why: one ``eventsourcing`` save per command is one PostgreSQL transaction (a
table lock, several round trips and a WAL flush), so a few dozen to a few
hundred commands a second is all one process manages, however many clients
wait.  Here commands queue up while a transaction is in flight; the
committer thread (one per ledger, started by the first command and ended when
idle) takes the whole queue, runs every command in arrival order against one
working copy of each aggregate it touches, and records all their events with
one ``save`` — one ``insert_events``, one commit.  Each command then answers
with its own version and position, only after that commit, through a future:
a request thread waits on it (``run``), an ``async`` route awaits it
(``submit_awaitable``) and holds no thread at all: the batch's answers reach
each event loop in one callback (``call_soon_threadsafe``), not one wake-up each.

The batch works on the cached aggregates themselves, not on copies (see
``WorkingSet``): nothing is deep-copied per batch.

Guarantees kept:

- **Order and the hash chain**: commands on one contract run one after the
  other on the same working copy, so each sees the previous one's events and
  chains its ``prev_hash`` to them, exactly as if saved one by one.
- **Conflicts**: if the batch's transaction meets a version conflict
  (``IntegrityError``: another API process wrote one of its aggregates
  first), nothing of it was recorded; the batch is run again as a whole on
  fresh copies of what it changed (what it only read stays cached), up to
  ``BATCH_ATTEMPTS`` times, then each command on its own with the usual
  reload-and-retry.  A command answered in between (an idempotent repeat)
  is not run again; one whose key another process recorded meanwhile finds
  that record and answers as a repeat.
- **A failed command** (a domain error) answers with its error and records
  nothing; the others of its batch go on.  If it failed *after* changing a
  working copy (so the copy can no longer be trusted), the batch is redone one
  by one.
- **Idempotency**: a command whose ``Idempotency-Key`` record is already
  waiting in the batch is held back to the next batch, where it finds that
  record and answers as a repeat.

Set ``NEEDLE_GROUP_COMMIT=0`` (``Settings.group_commit``) to save one command
per transaction (the baseline the benchmark compares with).

The committer works the ledger (``workflows/ledger.py``) through its public
methods only (``Committing``); the ledger asks the committer for the batch a
thread is running (``working_set``) so a command sees its batch's earlier ones.

Several API processes (``NEEDLE_API_PROCESSES``) on PostgreSQL take turns batch by batch
(``workflows/commit_turns.py``: an advisory lock, and each borrowed aggregate brought up
to the store first).

Long because the guarantees above are one loop over one batch (run, commit, retry,
answer): split, each part would need the others' working set and jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from workflows.commit_turns import CommitTurns
from workflows.store import STORE_OUTAGES

# A store outage (``workflows.store.STORE_OUTAGES``) fails every command waiting in
# the batch alike: each failing store call takes the library's ten connection attempts
# (about 12 s), so trying the commands one after another would keep the last of them
# waiting for minutes; they all answer 503 with the first outage instead, and clients
# retry with the same ``Idempotency-Key``.

MAX_BATCH = 512
"""The most commands one transaction takes (bounds a batch's latency and memory)."""
BATCH_ATTEMPTS = 3
"""Tries of a whole batch that meets version conflicts before it is redone one by one."""

log = logging.getLogger("threadneedle.group_commit")


class NothingRecorded(RuntimeError):
    """A command that ran without error but recorded no event of its target (a bug)."""


class Committing(Protocol):
    """What the ledger lends the committer (``workflows.ledger.Ledger``).

    A command's ``attempt`` answers a change (``workflows.ledger.Change``) with
    ``target`` (the aggregate it answers about) and ``answer(version, position)``.
    """

    @property
    def repository(self) -> Any: ...

    def save(self, *aggregates: Any) -> list[Any]: ...

    def earlier(self, caller: Any, request: Any) -> Any: ...

    def with_idempotency(self, caller: Any, request: Any, change: Any) -> list[Any]: ...

    def attempt_until_saved(self, caller: Any, request: Any, attempt: Any) -> Any: ...


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
    """

    def __init__(self, repository: Any, *, refresh: bool = False) -> None:
        self._repository = repository
        self._refresh = refresh
        """Bring a borrowed aggregate up to the store first (several API processes)."""
        self.aggregates: dict[UUID, Any] = {}
        self._loaded_at: dict[UUID, int] = {}
        self._borrowed: list[tuple[UUID, Any]] = []
        self.unchecked = False
        """Whether a copy came from the cache unchecked: a refusal may then be stale."""
        self.strangers: list[Any] = []
        """New aggregates whose id is already taken in the batch: saved, so the store refuses."""

    def get(self, aggregate_id: UUID) -> Any:
        """The batch's copy: from the cache as it is when cached (the commit's version
        check catches one that another process has moved on), else from the store."""
        found = self.aggregates.get(aggregate_id)
        if found is None:
            lock = self._repository.lock_for(aggregate_id)
            lock.acquire()
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


@dataclass(eq=False)
class Job:
    """One command waiting for its batch; answered through ``future`` (a thread waits on
    it) or ``awaited`` (an event loop awaits it: answered with its batch, ``_settle``)."""

    caller: Any
    request: Any
    attempt: Callable[[], Any]
    future: Future[Any] | None = None
    awaited: asyncio.Future[Any] | None = None
    outbox: list[Job] = field(default_factory=list)
    """Where an awaited job goes once finished, to be answered on its loop after the batch."""
    done: bool = False
    result: Any = None
    error: BaseException | None = None

    def finish(self, result: Any = None, error: BaseException | None = None) -> None:
        self.result, self.error, self.done = result, error, True
        if self.awaited is not None:
            self.outbox.append(self)
            return
        assert self.future is not None
        if self.future.cancelled():  # its caller left (a client gone): recorded all the same
            return
        if error is not None:
            self.future.set_exception(error)
        else:
            self.future.set_result(result)

    def record_id(self) -> UUID | None:
        return self.request.record_id(self.caller.principal_id) if self.request else None


@dataclass
class Staged:
    """A command that ran on the working set and waits for the batch's commit."""

    job: Job
    change: Any
    version: int


class GroupCommitter:
    """Queues commands; a committer thread of its own records them, a batch at a time."""

    IDLE_SECONDS = 1.0
    """How long the committer thread waits for work before it ends (a new one starts
    with the next command), so an idle ledger holds no thread."""

    def __init__(self, app: Committing, max_batch: int = MAX_BATCH) -> None:
        self._app = app
        self._max_batch = max_batch
        self._mutex = threading.Lock()
        self._arrived = threading.Condition(self._mutex)
        self._pending: deque[Job] = deque()
        self._idle = False
        """Whether the committer thread waits for work (a new command must wake it)."""
        self._answered: list[Job] = []
        """Awaited jobs finished in the running batch, answered on their loops after it."""
        self._thread: threading.Thread | None = None
        self._local = threading.local()
        self.batches = 0
        """How many batches committed in one transaction (for tests and the benchmark)."""
        self.retries = 0
        """How many times a batch met a version conflict and was run again as a whole."""
        self.fallbacks = 0
        """How many batches kept meeting conflicts (or failed oddly) and were redone one
        by one."""
        self._turns = CommitTurns.of(app)

    def working_set(self) -> WorkingSet | None:
        """The batch this thread is running, if it is the committer in the middle of one."""
        working: WorkingSet | None = getattr(self._local, "working", None)
        return working

    def run(self, caller: Any, request: Any, attempt: Callable[[], Any]) -> Any:
        """Run one command; answer once its events are committed (or raise its error)."""
        if threading.current_thread() is self._thread:  # a command inside a command
            return self._app.attempt_until_saved(caller, request, attempt)
        return self.submit(caller, request, attempt).result()

    def submit(self, caller: Any, request: Any, attempt: Callable[[], Any]) -> Future[Any]:
        """Queue one command; its future answers once its events are committed."""
        job = Job(caller, request, attempt, future=Future())
        self._queue(job)
        assert job.future is not None
        return job.future

    def submit_awaitable(self, caller: Any, request: Any, attempt: Callable[[], Any]
                         ) -> asyncio.Future[Any]:
        """``submit`` for an ``async`` route (call it on the event loop): an asyncio future,
        awaited without holding a thread.  Cancelling it does not withdraw the command."""
        job = Job(caller, request, attempt, awaited=asyncio.get_running_loop().create_future(),
                  outbox=self._answered)
        self._queue(job)
        assert job.awaited is not None
        return job.awaited

    def _queue(self, job: Job) -> None:
        with self._mutex:
            self._pending.append(job)
            if self._thread is None or not self._thread.is_alive():  # none yet, or forked
                self._thread = threading.Thread(
                    target=self._serve, name="group-commit", daemon=True)
                self._thread.start()
            elif self._idle:
                self._arrived.notify()

    def _serve(self) -> None:
        """The committer thread: batch after batch while commands keep coming."""
        while True:
            with self._mutex:
                if not self._pending:
                    self._idle = True
                    self._arrived.wait(self.IDLE_SECONDS)
                    self._idle = False
                if not self._pending:
                    self._thread = None
                    return
                batch = [self._pending.popleft()
                         for _ in range(min(self._max_batch, len(self._pending)))]
            deferred: list[Job] = []
            try:
                deferred = self._record_batch(batch)
            except BaseException as error:  # a bug here must not strand the waiting commands
                log.exception("a batch failed")
                for job in batch:
                    if not job.done:
                        job.finish(error=error)
            finally:
                self._answer_awaited()
                with self._mutex:
                    self._pending.extendleft(reversed(deferred))

    def _answer_awaited(self) -> None:
        """The batch's awaited jobs answered: one callback for each loop they wait on."""
        by_loop: dict[asyncio.AbstractEventLoop, list[Job]] = {}
        for job in self._answered:
            assert job.awaited is not None
            by_loop.setdefault(job.awaited.get_loop(), []).append(job)
        self._answered.clear()
        for loop, jobs in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits there
                loop.call_soon_threadsafe(_settle, jobs)

    def _record_batch(self, batch: list[Job]) -> list[Job]:
        """Run the batch on one working set and save it; answers the jobs, returns deferred
        ones.  Run again on a fresh working set while it meets version conflicts."""
        try:
            turn = self._turns.take()
        except STORE_OUTAGES as outage:
            self._fail_all(batch, outage)
            return []
        with turn:
            for attempt in range(1, BATCH_ATTEMPTS + 1):
                working = WorkingSet(self._app.repository, refresh=self._turns.shared)
                try:
                    deferred = self._run_batch(batch, working, last=attempt == BATCH_ATTEMPTS)
                finally:
                    working.release(keep=False)  # only if something went wrong before
                if deferred is not None:
                    return deferred
                self.retries += 1
                batch = [job for job in batch if not job.done]
        return []  # not reached: the last attempt never asks for another

    def _run_batch(self, batch: list[Job], working: WorkingSet, *, last: bool = True
                   ) -> list[Job] | None:
        """The batch's commands on ``working``, then one commit; None when that met a version
        conflict and ``last`` is false (nothing was answered: run the batch again)."""
        staged: list[Staged] = []
        refused: list[Job] = []
        deferred: list[Job] = []
        waiting_records: set[UUID] = set()
        self._local.working = working
        try:
            for index, job in enumerate(batch):
                record_id = job.record_id()
                if record_id is not None and record_id in waiting_records:
                    deferred.append(job)  # its first use is in this batch: answer it after
                    continue
                if not self._stage(job, working, staged, refused):
                    self._local.working = None
                    working.release(keep=False)
                    self._one_by_one([s.job for s in staged] + refused + batch[index:])
                    return deferred
                if record_id is not None and staged and staged[-1].job is job:
                    waiting_records.add(record_id)
        except STORE_OUTAGES as outage:
            working.release(keep=False)
            self._fail_all(batch, outage)
            return deferred
        finally:
            self._local.working = None
        if staged:
            if not self._commit(working, staged, retry=not last and not working.strangers):
                return None
        else:
            working.release(keep=True)  # refusals changed nothing (``_stage``)
        # A refusal decided on an unchecked copy is decided again on a fresh one.
        if working.unchecked:
            self._one_by_one(refused)
        else:
            self._refuse(refused)
        return deferred

    def _stage(
        self, job: Job, working: WorkingSet, staged: list[Staged], refused: list[Job]
    ) -> bool:
        """Run one command on the working set; False when it left the set untrustworthy.

        A command that raises is kept in ``refused`` (its error in ``job.error``)
        and answered after the batch's commit.
        """
        before = working.versions()
        try:
            if job.request is not None and (earlier := self._app.earlier(job.caller, job.request)):
                job.finish(result=earlier)
                return True
            change = job.attempt()
        except STORE_OUTAGES:
            raise  # the whole batch fails alike (see ``STORE_OUTAGES``)
        except Exception as error:
            if working.changed_since(before):
                return False
            job.error = error
            refused.append(job)
            return True
        working.adopt(self._app.with_idempotency(job.caller, job.request, change))
        staged.append(Staged(job, change, change.target.version))
        return True

    def _commit(self, working: WorkingSet, staged: list[Staged], *, retry: bool) -> bool:
        """One transaction for the whole batch.  On a version conflict: False if ``retry``
        (the caller runs the batch again), else each command redone one by one."""
        try:
            recordings = self._app.save(*working.to_save())
        except IntegrityError:
            working.release(keep=False)
            if retry:
                return False
            self.fallbacks += 1
            self._one_by_one([s.job for s in staged])
            return True
        except Exception as error:  # the store is down, say: every command of it failed
            working.release(keep=False)
            for s in staged:
                s.job.finish(error=error)
            return True
        working.release(keep=True)
        self.batches += 1
        positions = {
            (r.domain_event.originator_id, r.domain_event.originator_version): r.notification.id
            for r in recordings
        }
        for s in staged:  # each command its own outcome: one's failure is not the others'
            try:
                position = positions[(s.change.target.id, s.version)]
                s.job.finish(result=s.change.answer(s.version, position))
            except Exception:
                log.exception("a command of a committed batch could not be answered")
                s.job.finish(error=NothingRecorded(
                    "the command recorded nothing; its batch's other commands were recorded"))
        return True

    @staticmethod
    def _fail_all(jobs: list[Job], error: BaseException) -> None:
        for job in jobs:
            if not job.done:
                job.finish(error=error)

    @staticmethod
    def _refuse(jobs: list[Job]) -> None:
        for job in jobs:
            job.finish(error=job.error)

    def _one_by_one(self, jobs: list[Job]) -> None:
        """The fallback: each command loaded, run and saved on its own, with retries."""
        for job in jobs:
            if job.done:
                continue
            try:
                result = self._app.attempt_until_saved(job.caller, job.request, job.attempt)
            except STORE_OUTAGES as outage:
                self._fail_all(jobs, outage)
                return
            except Exception as error:
                job.finish(error=error)
            else:
                job.finish(result=result)


def _settle(jobs: list[Job]) -> None:
    """On the jobs' event loop: each awaited future set, unless its caller left."""
    for job in jobs:
        awaited = job.awaited
        if awaited is None or awaited.done():  # cancelled: recorded all the same
            continue
        if job.error is not None:
            awaited.set_exception(job.error)
        else:
            awaited.set_result(job.result)
