"""Small reads of the event store that the ``eventsourcing`` recorders do not offer."""

from __future__ import annotations

from typing import Any
from uuid import UUID


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
