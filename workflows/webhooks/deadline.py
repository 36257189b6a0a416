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

Resolving the host name happens before the first socket: ``resolving_within``
asks the resolver on a small shared thread pool and waits only for what is
left of the attempt (a resolver that hangs keeps a pool thread until the
system resolver's own timeouts end it, never the delivery).

Cost: a heap push per attempt and no extra thread per attempt; an attempt
that ends in time is dropped from the heap lazily, when its deadline comes
up.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
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


_resolvers: ThreadPoolExecutor | None = None
_resolvers_pid: int | None = None
_resolvers_lock = threading.Lock()
RESOLVER_THREADS = 8


def resolving_within(resolver: Callable[[str, int], Iterable[str]],
                     attempt: Attempt) -> Callable[[str, int], list[str]]:
    """``resolver``, answering within what is left of ``attempt`` or raising ``TimeoutError``
    (an ``OSError``: the SSRF guard reports the host as unresolvable)."""

    def resolve(host: str, port: int) -> list[str]:
        future = _resolver_pool().submit(lambda: list(resolver(host, port)))
        try:
            return future.result(timeout=attempt.remaining())
        except FutureTimeout:
            raise TimeoutError(f"no answer within the attempt's deadline for {host}") from None

    return resolve


def _resolver_pool() -> ThreadPoolExecutor:
    global _resolvers, _resolvers_pid
    with _resolvers_lock:
        if _resolvers is None or _resolvers_pid != os.getpid():
            _resolvers = ThreadPoolExecutor(RESOLVER_THREADS, thread_name_prefix="webhook-dns")
            _resolvers_pid = os.getpid()
        return _resolvers


def current() -> Attempt | None:
    """The attempt this thread is in (``None`` outside ``attempt_within``)."""
    return getattr(_current, "attempt", None)
