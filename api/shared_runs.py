"""One blocking call on the thread pool, made once for the many requests waiting on it.

``api/deps.py`` shares key checks (``authenticated``) and the projections' wake after a
command (``wake``) this way; ``api/directive_fast_path.py`` uses the same two.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from typing import Any


def shared_on(state: Any, name: str, subject: Any,
              call: Callable[[Any, frozenset[Any]], dict[Any, Any]]) -> SharedRuns:
    """The app's (``app.state``) ``SharedRuns`` of that name, for that subject (the ledger,
    the services)."""
    runs: dict[str, SharedRuns] = getattr(state, "shared_runs", None) or {}
    found = runs.get(name)
    if found is None or not found.serves(subject):
        found = runs[name] = SharedRuns(subject, call)
        state.shared_runs = runs
    return found


class SharedRuns:
    """A blocking call on a thread, made once for many waiting requests.

    Why: a thread hop per request (authenticating its key, waking the
    projections after its command) was a fifth of the event loop's time in the
    command-path profile.  Requests that ask while a run is under way share the
    next run, one run at a time: ``call(subject, keys)`` answers each key asked
    (a key's answer may be an exception, raised to its requests).  A request
    waits for a run that *started* after it asked, so it sees what the request
    did (a command's commit) and what others did before (a key revoked).  Lives
    on the event loop: no lock is needed.

    A run is the loop's executor running ``call`` in the context of the request that
    started it (so its logs and the Celery tasks it sends carry that request's id),
    and each waiting request awaits a future of its own: a request that goes away
    cancels only its own wait (no task, no ``asyncio.shield`` per request: both
    showed in the event loop's profile).
    """

    def __init__(self, subject: Any,
                 call: Callable[[Any, frozenset[Any]], dict[Any, Any]]) -> None:
        self.subject = subject
        self._call = call
        self._loop = asyncio.get_running_loop()
        self._running = False
        self._queued: tuple[set[Any], list[asyncio.Future[dict[Any, Any]]]] | None = None

    def serves(self, subject: Any) -> bool:
        """Whether this one is for that subject on the running loop (a test client may
        run each request on a loop of its own)."""
        return self.subject is subject and self._loop is asyncio.get_running_loop()

    async def __call__(self, key: Any) -> Any:
        if self._queued is None:
            self._queued = (set(), [])
        keys, waiting = self._queued
        keys.add(key)
        answers = self._loop.create_future()
        waiting.append(answers)
        if not self._running:
            self._start()
        answer = (await answers)[key]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def _start(self) -> None:
        assert self._queued is not None
        (keys, waiting), self._queued = self._queued, None
        self._running = True
        run = self._loop.run_in_executor(None, contextvars.copy_context().run, self._call,
                                         self.subject, frozenset(keys))
        run.add_done_callback(lambda done: self._finished(done, waiting))

    def _finished(self, run: asyncio.Future[dict[Any, Any]],
                  waiting: list[asyncio.Future[dict[Any, Any]]]) -> None:
        self._running = False
        for answers in waiting:
            if answers.done():  # its request went away
                continue
            if run.cancelled():
                answers.cancel()
            elif (error := run.exception()) is not None:
                answers.set_exception(error)
            else:
                answers.set_result(run.result())
        if self._queued is not None:
            self._start()
