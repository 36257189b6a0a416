"""Several API processes' group commits take turns on one PostgreSQL store."""

from __future__ import annotations

import contextlib
import zlib
from typing import Any


class CommitTurns:
    """Batches of several API processes on one PostgreSQL store take turns.

    With ``NEEDLE_API_PROCESSES`` above 1, each batch holds a session advisory lock
    (one per events table) while it runs and commits, and brings each aggregate it
    borrows up to the store first (``WorkingSet(refresh=True)``: the events other
    processes stored since, applied in place).  Why: processes batching the same
    contracts met each other's versions in most batches, and every conflict
    reloaded every contract of the batch from the store (≈7 ms a directive with two
    processes).  The version check at commit still guards correctness; the lock
    only makes conflicts rare.  A lock whose connection is lost is released by
    PostgreSQL.  One process, or SQLite: no lock, no refresh.
    """

    def __init__(self, datastore: Any, key: int) -> None:
        self._datastore = datastore
        self._key = key
        self.shared = datastore is not None

    @classmethod
    def of(cls, app: Any) -> CommitTurns:
        settings = getattr(app, "settings", None)
        datastore = getattr(getattr(app, "recorder", None), "datastore", None)
        if settings is None or settings.api_processes < 2 or not settings.uses_postgres \
                or datastore is None:
            return cls(None, 0)
        table = f"{datastore.schema}.{app.recorder.events_table_name}"
        return cls(datastore, zlib.crc32(f"threadneedle group commit {table}".encode()))

    def take(self) -> contextlib.AbstractContextManager[Any]:
        """Wait for this process's turn; the context holds it (nothing without a store lock)."""
        if self._datastore is None:
            return contextlib.nullcontext()
        stack = contextlib.ExitStack()
        try:
            connection = stack.enter_context(self._datastore.get_connection())
            connection.execute("SELECT pg_advisory_lock(%s)", (self._key,))
            stack.callback(self._give_back, connection)
        except BaseException:
            stack.close()
            raise
        return stack

    def _give_back(self, connection: Any) -> None:
        try:
            connection.execute("SELECT pg_advisory_unlock(%s)", (self._key,))
        except Exception:  # never back to the pool still holding the lock
            connection.close()
