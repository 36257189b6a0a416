"""One deadline for a whole webhook attempt: connect, send and read together (SPEC §8, §11).

urllib3's timeouts (like the socket's) bound each operation: connecting, and
each read.  A receiver that sends one byte every few seconds never lets a
read time out, so an attempt could last as long as the receiver pleases
(issue 11: 150 s with a 15 s timeout).  Celery's time limits do not help:
they do not apply to the thread pool the webhook worker runs.

Here an attempt has an absolute deadline.  Each connection of the delivery
client tells the current attempt (a thread-local) which socket it uses, as it
connects or as it is reused for a request; one watchdog thread per process
keeps the deadlines of the attempts in flight in a heap and, when one passes,
shuts that attempt's socket down.  The read blocked on it returns at once
(urllib3 raises, or the body ends short) and the attempt is reported as a
``timeout``.  The connection is then closed, never reused.

Cost: a heap push per attempt and no extra thread per attempt; an attempt
that ends in time is dropped from the heap lazily, when its deadline comes
up.  What the deadline cannot cut short: resolving the host name (the system
resolver's own timeouts apply), which happens before the first socket.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class Attempt:
    """One attempt's deadline, and the socket to shut down when it passes."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.expired = False
        self.finished = False
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def using(self, sock: socket.socket | None) -> None:
        """The connection's socket for this attempt (shut at once if the deadline passed)."""
        if sock is None:
            return
        with self._lock:
            self._socket = sock
            if self.expired:
                _shut(sock)

    def expire(self) -> None:
        with self._lock:
            if self.finished:
                return
            self.expired = True
            if self._socket is not None:
                _shut(self._socket)

    def finish(self) -> None:
        with self._lock:
            self.finished = True
            self._socket = None


def _shut(sock: socket.socket) -> None:
    """Shut the socket down under a blocked read.  The plain socket's ``shutdown`` even for
    TLS: ``SSLSocket.shutdown`` would drop its TLS state under the reading thread."""
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class Watchdog:
    """Expires attempts whose deadline passed; one thread per process, started on first use."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Attempt]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._pid: int | None = None

    def watch(self, attempt: Attempt) -> None:
        with self._cond:
            self._start()
            earliest = not self._heap or attempt.deadline < self._heap[0][0]
            heapq.heappush(self._heap, (attempt.deadline, next(self._order), attempt))
            if earliest:
                self._cond.notify()

    def _start(self) -> None:
        """Called holding the condition: a thread of this process (not one forked away)."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            threading.Thread(target=self._run, name="webhook-deadlines", daemon=True).start()

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][2].finished:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                deadline, _, attempt = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
                attempt.expire()


WATCHDOG = Watchdog()
_current = threading.local()


@contextmanager
def attempt_within(seconds: float, watchdog: Watchdog = WATCHDOG) -> Iterator[Attempt]:
    """This thread's attempt for the block: its sockets are shut down after ``seconds``."""
    attempt = Attempt(time.monotonic() + seconds)
    watchdog.watch(attempt)
    _current.attempt = attempt
    try:
        yield attempt
    finally:
        _current.attempt = None
        attempt.finish()


def current() -> Attempt | None:
    """The attempt this thread is in (``None`` outside ``attempt_within``)."""
    return getattr(_current, "attempt", None)
