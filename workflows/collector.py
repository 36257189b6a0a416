"""The cyclic garbage collector paused while work builds many objects that form no cycles.

Used where a process builds a whole contract state or ranking at once: decoding
a snapshot (``workflows/transcoding.py``), projecting a batch
(``workflows/projections.py``), and reading a contract as of a version
(``workflows/contracts.py``, and ``workflows/history.py``, which drops the
replayed state before the collector resumes: else the first young collection
walked all of it, freeing nothing).  Measured: a catch-up of
100,000 events went from 11 full collections to none (GC time 3.5-4.1 s to
0.7-1.0 s), and a load as of a version of the 10,000-event contract from 179 to
108 ms in ``make bench``.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collection_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many objects that form no cycles.

    Each full collection walks every object the process holds (its cached
    aggregates: hundreds of thousands); work that only allocates acyclic records
    frees nothing by it.  Garbage is still freed by reference counting meanwhile.
    The pause is process-wide: two threads pausing at once at worst resume early.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


THRESHOLDS = (10_000, 10, 10)
"""A young collection every 10,000 allocations (CPython's default is 700)."""


def settle_collector() -> None:
    """Keep a server process's start-up objects out of the cyclic collector's walks, and
    collect the young generation less often: called once a process is ready to serve (the
    API's lifespan, a worker's pool process), never in a test's process.

    Why: every full collection walked the ~150,000 objects of start-up (modules,
    classes, the app) with the GIL held; in the command-path benchmark that was 5-7
    times a run and up to 110 ms each (the run's p99 latency), and 800 young
    collections ran in 8 s.  Frozen (``gc.freeze``), start-up objects are never walked
    again (nor collected: they live as long as the process); garbage is still freed by
    reference counting at once, and cycles made later by the collector.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
