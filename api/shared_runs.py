"""One blocking call on the thread pool, made once for the many requests waiting on it.

``api/deps.py`` shares key checks (``authenticated``) and the projections' wake after a
command (``wake``) this way; ``api/directive_fast_path.py`` uses the same two.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from fastapi.concurrency import run_in_threadpool


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
    """A blocking call on the thread pool, made once for many waiting requests.

    Why: a thread hop per request (authenticating its key, waking the
    projections after its command) was a fifth of the event loop's time in the
    command-path profile.  Requests that ask while a run is under way share the
    next run, one run at a time: ``call(subject, keys)`` answers each key asked
    (a key's answer may be an exception, raised to its requests).  A request
    waits for a run that *started* after it asked, so it sees what the request
    did (a command's commit) and what others did before (a key revoked).  Lives
    on the event loop: no lock is needed.
    """

    def __init__(self, subject: Any,
                 call: Callable[[Any, frozenset[Any]], dict[Any, Any]]) -> None:
        self.subject = subject
        self._call = call
        self._loop = asyncio.get_running_loop()
        self._running: asyncio.Task[None] | None = None
        self._queued: tuple[set[Any], asyncio.Future[dict[Any, Any]]] | None = None

    def serves(self, subject: Any) -> bool:
        """Whether this one is for that subject on the running loop (a test client may
        run each request on a loop of its own)."""
        return self.subject is subject and self._loop is asyncio.get_running_loop()

    async def __call__(self, key: Any) -> Any:
        queued = self._queued
        if queued is None:
            queued = self._queued = (set(), self._loop.create_future())
        queued[0].add(key)
        if self._running is None:
            self._start()
        answer = (await asyncio.shield(queued[1]))[key]  # one request gone: the run goes on
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def _start(self) -> None:
        assert self._queued is not None
        (keys, answers), self._queued = self._queued, None
        self._running = asyncio.ensure_future(self._run(frozenset(keys), answers))

    async def _run(self, keys: frozenset[Any], answers: asyncio.Future[dict[Any, Any]]) -> None:
        try:
            answers.set_result(await run_in_threadpool(self._call, self.subject, keys))
        except asyncio.CancelledError:
            answers.cancel()
            raise
        except Exception as error:
            answers.set_exception(error)
        finally:
            self._running = None
            if self._queued is not None:
                self._start()


# --- authorising view reads ------------------------------------------------------
