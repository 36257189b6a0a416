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

**Pipelined** (one API process): while one batch is written (``Ledger.write`` on the
committer's writer thread, ``workflows/commit_pipeline.py``), the committer runs the
next one on the same objects, with the first one's changes (``WorkingSet(after=…)``),
so folding overlaps the wait for PostgreSQL.  The written batch is then answered, and
only then is the next one handed to the writer: writes stay one after the other, in
order.  If the first write fails, nothing of either was recorded; what both changed is
dropped from the cache and both are redone as above, one after the other.  A snapshot
is taken when its batch is prepared (``Ledger.prepare_save``), before the next batch
changes the aggregate, and written after the commit.  Refusals decided on cached
copies are decided again once nothing is being written.

Set ``NEEDLE_GROUP_COMMIT=0`` (``Settings.group_commit``) to save one command
per transaction (the baseline the benchmark compares with).

The committer works the ledger (``workflows/ledger.py``) through its public
methods only (``Committing``); the ledger asks the committer for the batch a
thread is running (``working_set``) so a command sees its batch's earlier ones.

Several API processes (``NEEDLE_API_PROCESSES``) on PostgreSQL take turns batch by batch
(``workflows/commit_turns.py``: an advisory lock, and each borrowed aggregate brought up
to the store first).

While batches keep borrowing a contract, its load lock stays held from one to the
next; a reader on another thread waits at most ``LoadSafeRepository.BUSY_SECONDS``,
then loads what is stored (``workflows/repository.py``).

Long because the guarantees above are one loop over one batch (run, commit, retry,
answer, and with the pipeline, land the batch before): split, each part would need the
others' working set and jobs.  What stands alone lives apart: the working set
(``workflows/working_set.py``), the jobs (``workflows/commit_jobs.py``) and the
writer (``workflows/commit_pipeline.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from workflows.commit_jobs import Job, Run, Staged, settle
from workflows.commit_pipeline import InFlight, Writer
from workflows.commit_turns import CommitTurns
from workflows.store import STORE_OUTAGES
from workflows.working_set import WorkingSet

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

    def prepare_save(self, *aggregates: Any) -> Any: ...

    def write(self, prepared: Any) -> Any: ...

    def finish_save(self, prepared: Any, notification_ids: Any) -> list[Any]: ...

    def earlier(self, caller: Any, request: Any) -> Any: ...

    def with_idempotency(self, caller: Any, request: Any, change: Any) -> list[Any]: ...

    def attempt_until_saved(self, caller: Any, request: Any, attempt: Any) -> Any: ...


class GroupCommitter:
    """Queues commands; a committer thread of its own records them, a batch at a time."""

    IDLE_SECONDS = 1.0
    """How long the committer thread waits for work before it ends (a new one starts
    with the next command), so an idle ledger holds no thread."""

    def __init__(self, app: Committing, max_batch: int = MAX_BATCH, *,
                 pipelined: bool = True) -> None:
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
        self.pipelined = pipelined and not self._turns.shared
        """Whether a batch is run while the one before is written (not with several API
        processes: they take turns batch by batch, ``workflows/commit_turns.py``)."""
        self._writer: Writer | None = None
        self._in_flight: InFlight | None = None
        self._recheck: list[Job] = []
        """Refusals decided on cached copies, decided again once nothing is in flight."""

    def working_set(self) -> WorkingSet | None:
        """The batch this thread is running, if it is the committer in the middle of one."""
        working: WorkingSet | None = getattr(self._local, "working", None)
        return working

    def run(self, caller: Any, request: Any, attempt: Callable[[], Any]) -> Any:
        """Run one command; answer once its events are committed (or raise its error)."""
        if threading.current_thread() is self._thread:  # a command inside a command
            flight = self._in_flight
            if flight is not None:  # saved after the batch being written, or not at all
                flight.written.result()
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
                # a fork's: its writer and its batch in flight are gone
                self._in_flight, self._recheck, self._writer = None, [], None
                self._thread.start()
            elif self._idle:
                self._arrived.notify()

    def _serve(self) -> None:
        """The committer thread: batch after batch while commands keep coming."""
        while True:
            with self._mutex:
                if not self._pending and self._in_flight is None and not self._recheck:
                    self._idle = True
                    self._arrived.wait(self.IDLE_SECONDS)
                    self._idle = False
                    if not self._pending:
                        self._thread = None
                        writer, self._writer = self._writer, None
                        if writer is not None:
                            writer.close()
                        return
                batch = [self._pending.popleft()
                         for _ in range(min(self._max_batch, len(self._pending)))]
            self._serve_batch(batch)

    def _serve_batch(self, batch: list[Job]) -> None:
        """One batch recorded (with nothing new: the one in flight landed); its deferred
        commands back at the head of the queue."""
        deferred: list[Job] = []
        try:
            if not batch or self._recheck:
                self._drain()
            if batch:
                deferred = self._record_batch(batch)
        except BaseException as error:  # a bug here must not strand the waiting commands
            log.exception("a batch failed")
            with contextlib.suppress(BaseException):
                self._drain()
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
                loop.call_soon_threadsafe(settle, jobs)

    def _record_batch(self, batch: list[Job]) -> list[Job]:
        """Run the batch and record it (pipelined: hand it to the writer); answers the jobs
        it can, returns deferred ones."""
        if self.pipelined:
            return self._pipeline(batch)
        return self._record_alone(batch)

    def _record_alone(self, batch: list[Job], attempts: int = BATCH_ATTEMPTS) -> list[Job]:
        """Run the batch on one working set and save it, with nothing in flight; answers the
        jobs, returns deferred ones.  Run again on a fresh working set while it meets
        version conflicts (``attempts`` tries in all)."""
        try:
            turn = self._turns.take()
        except STORE_OUTAGES as outage:
            self._fail_all(batch, outage)
            return []
        with turn:
            for attempt in range(1, attempts + 1):
                working = WorkingSet(self._app.repository, refresh=self._turns.shared)
                try:
                    deferred = self._run_batch(batch, working, last=attempt == attempts)
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
        run = self._run_commands(batch, working)
        if not run.staged or run.broken is not None or run.outage is not None:
            return self._finish_unwritten(batch, working, run)
        if not self._commit(working, run.staged, retry=not last and not working.strangers):
            return None
        self._answer_refusals(run.refused, working.unchecked)
        return run.deferred

    def _pipeline(self, batch: list[Job]) -> list[Job]:
        """Run the batch behind the one in flight, let that one land, then hand this one to
        the writer; returns the deferred jobs.  Anything but a plain batch of changes is
        finished here once the one in flight has landed."""
        before = self._in_flight
        working = WorkingSet(self._app.repository,
                             after=before.working if before is not None else None)
        try:
            run = self._run_commands(batch, working, before.run.records if before else None)
            prepared = None
            if run.broken is None and run.outage is None and run.staged:
                prepared = self._app.prepare_save(*working.to_save())
            if not self._land(behind=working):  # it was not recorded: neither is this one
                return self._record_alone([job for job in batch if not job.done])
            if prepared is None:
                return self._finish_unwritten(batch, working, run)
            if self._writer is None:
                self._writer = Writer()  # this thread's, ended with it
            self._in_flight = InFlight(batch, working, run, prepared,
                                       self._writer.submit(self._app.write, prepared))
        except BaseException:
            with contextlib.suppress(BaseException):
                self._land(behind=working)
            working.release(keep=False)
            raise
        return run.deferred

    def _finish_unwritten(self, batch: list[Job], working: WorkingSet, run: Run) -> list[Job]:
        """A batch with nothing to write (pipelined: the one before it has landed)."""
        if run.broken is not None or run.outage is not None:
            return self._give_up(batch, working, run)
        working.release(keep=True)  # refusals and repeats changed nothing (``_stage``)
        self._answer_refusals(run.refused, working.unchecked)
        return run.deferred

    def _land(self, *, behind: WorkingSet | None) -> bool:
        """The batch in flight, once written: answered, what it saved kept in the cache.
        If it was not written, it is redone alone and ``behind`` (the batch run on its
        changes) released unsaved; False then."""
        flight, self._in_flight = self._in_flight, None
        if flight is None:
            return True
        conflict = False
        try:
            try:
                ids = flight.written.result()
            except IntegrityError:
                conflict = True
                raise
            recordings = self._app.finish_save(flight.prepared, ids)
        except Exception as error:  # not written, or written but not finished (a snapshot)
            if behind is not None:
                behind.release(keep=False)
            flight.working.release(keep=False)
            if conflict:  # nothing recorded; its write was its first try
                self.retries += 1
                self._record_alone([job for job in flight.jobs if not job.done],
                                   attempts=BATCH_ATTEMPTS - 1)
            else:  # the store is down, say: every command of it failed
                for s in flight.run.staged:
                    s.job.finish(error=error)
                self._answer_refusals(flight.run.refused, flight.working.unchecked)
            return False
        flight.working.release(keep=True)
        self.batches += 1
        self._answer(flight.run.staged, recordings)
        if flight.working.unchecked:
            self._recheck.extend(flight.run.refused)  # once nothing is in flight
        else:
            self._refuse(flight.run.refused)
        return True

    def _drain(self) -> None:
        """Nothing left in flight, and refusals decided on cached copies decided again."""
        self._land(behind=None)
        recheck, self._recheck = self._recheck, []
        self._one_by_one(recheck)

    def _run_commands(self, batch: list[Job], working: WorkingSet,
                      records_in_flight: set[UUID] | None = None) -> Run:
        """The batch's commands on ``working``, in order, each seeing the ones before."""
        run = Run()
        self._local.working = working
        try:
            for index, job in enumerate(batch):
                record_id = job.record_id()
                if record_id is not None and (
                        record_id in run.records
                        or (records_in_flight and record_id in records_in_flight)):
                    run.deferred.append(job)  # its first use is being recorded: answer it after
                    continue
                if not self._stage(job, working, run.staged, run.refused):
                    run.broken = [s.job for s in run.staged] + run.refused + batch[index:]
                    return run
                if record_id is not None and run.staged and run.staged[-1].job is job:
                    run.records.add(record_id)
        except STORE_OUTAGES as outage:
            run.outage = outage
        finally:
            self._local.working = None
        return run

    def _give_up(self, batch: list[Job], working: WorkingSet, run: Run) -> list[Job]:
        """A batch that cannot be recorded as one: redone one by one (a command left the
        working set untrustworthy), or failed alike (the store is down)."""
        working.release(keep=False)
        if run.broken is not None:
            self._one_by_one(run.broken)
        elif run.outage is not None:
            self._fail_all(batch, run.outage)
        return run.deferred

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
        self._answer(staged, recordings)
        return True

    @staticmethod
    def _answer(staged: list[Staged], recordings: list[Any]) -> None:
        """Each command of a committed batch answered with its version and position."""
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

    def _answer_refusals(self, refused: list[Job], unchecked: bool) -> None:
        """A refusal decided on an unchecked copy is decided again on a fresh one."""
        if unchecked:
            self._one_by_one(refused)
        else:
            self._refuse(refused)

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
