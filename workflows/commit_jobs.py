"""The group committer's commands: each waits as a ``Job``, runs on the batch's working set
(``Staged``, gathered in a ``Run``) and is answered after its batch's commit
(``workflows/group_commit.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID


@dataclass(eq=False)
class Job:
    """One command waiting for its batch; answered through ``future`` (a thread waits on
    it) or ``awaited`` (an event loop awaits it: answered with its batch, ``settle``)."""

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


@dataclass
class Run:
    """What running a batch's commands on a working set gave."""

    staged: list[Staged] = field(default_factory=list)
    refused: list[Job] = field(default_factory=list)
    """Commands that raised (``job.error``): answered after the batch's commit."""
    deferred: list[Job] = field(default_factory=list)
    """Commands whose idempotency record an earlier command is about to write: next batch."""
    records: set[UUID] = field(default_factory=set)
    """The idempotency records this batch writes."""
    broken: list[Job] | None = None
    """When a command left the working set untrustworthy: the commands to redo one by one."""
    outage: BaseException | None = None
    """When the store could not be reached while the commands ran."""


def settle(jobs: list[Job]) -> None:
    """On the jobs' event loop: each awaited future set, unless its caller left."""
    for job in jobs:
        awaited = job.awaited
        if awaited is None or awaited.done():  # cancelled: recorded all the same
            continue
        if job.error is not None:
            awaited.set_exception(job.error)
        else:
            awaited.set_result(job.result)
