"""The pipelined group commit's parts: the batch being written (``InFlight``) and the
thread that writes it (``Writer``), while the committer runs the next batch
(``workflows/group_commit.py``)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from workflows.commit_jobs import Job, Run
from workflows.working_set import WorkingSet


@dataclass
class InFlight:
    """A batch run and prepared (``Ledger.prepare_save``), its write under way."""

    jobs: list[Job]
    working: WorkingSet
    run: Run
    prepared: Any
    written: Future[Any]
    """The write's notification ids (or its error), from the writer thread."""


class Writer:
    """One thread running the committer's writes, in the order they are handed over."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[Future[Any], Callable[[Any], Any], Any] | None] \
            = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name="group-commit-writer",
                                        daemon=True)
        self._thread.start()

    def submit(self, write: Callable[[Any], Any], prepared: Any) -> Future[Any]:
        written: Future[Any] = Future()
        self._queue.put((written, write, prepared))
        return written

    def close(self) -> None:
        """The thread ends once the writes handed over are done."""
        self._queue.put(None)

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            written, write, prepared = item
            try:
                written.set_result(write(prepared))
            except BaseException as error:  # the committer decides what it means
                written.set_exception(error)
