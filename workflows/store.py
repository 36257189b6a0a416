"""Small reads of the event store that the ``eventsourcing`` recorders do not offer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError

STORE_OUTAGES: tuple[type[Exception], ...] = (
    OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError,
)
"""Errors that mean "the event store cannot be reached now", not "this request is wrong".

The ``eventsourcing`` recorders wrap driver errors in their own ``OperationalError``
and ``InterfaceError`` (a lost connection, a pool that timed out waiting for one, a
server shutting down); raw ``psycopg`` ones can escape code that talks to
PostgreSQL directly.  The transaction did not commit or its answer was lost, so a
client should retry, with the same ``Idempotency-Key``.
"""

# One advisory-lock key for "creating the event store's tables": two processes
# starting at once would otherwise race on CREATE TABLE IF NOT EXISTS, which
# PostgreSQL answers with "tuple concurrently updated".
SCHEMA_LOCK_KEY = 0x7468_6E65_6564_6C65 & 0x7FFF_FFFF_FFFF_FFFF  # "thneedle"


@contextmanager
def schema_lock(postgres_url: str) -> Iterator[None]:
    """Hold a PostgreSQL session advisory lock while tables are being created."""
    with psycopg.connect(postgres_url, autocommit=True, connect_timeout=5) as connection:
        connection.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_KEY,))
        try:
            yield
        finally:
            connection.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK_KEY,))


def position_of(recorder: Any, originator_id: UUID, version: int) -> int:
    """The global position (notification id) of one stored event."""
    table = recorder.events_table_name
    if hasattr(recorder.datastore, "schema"):  # PostgreSQL
        schema = recorder.datastore.schema or "public"
        statement = (
            f'SELECT notification_id FROM "{schema}"."{table}" '  # names, not input
            "WHERE originator_id = %s AND originator_version = %s"
        )
        with recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, (originator_id, version))
            row = cursor.fetchone()
            return int(row["notification_id"]) if row else 0
    statement = (
        f"SELECT rowid FROM {table} "  # a table name, not input
        "WHERE originator_id = ? AND originator_version = ?"
    )
    with recorder.datastore.transaction(commit=False) as cursor:
        cursor.execute(statement, (originator_id.hex, version))
        row = cursor.fetchone()
        return int(row[0]) if row else 0
