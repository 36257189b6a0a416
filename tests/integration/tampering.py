"""Alter a stored event behind the application's back, as an intruder with database access would."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any
from uuid import UUID

import psycopg

from workflows.application import Threadneedle
from workflows.settings import Settings


def events_table(settings: Settings) -> str:
    app = Threadneedle(settings)
    try:
        recorder: Any = app.recorder  # both SQL recorders name their events table
        return str(recorder.events_table_name)
    finally:
        app.close()


def alter_stored_event(
    settings: Settings, originator_id: UUID, version: int,
    change: Callable[[dict[str, Any]], None],
) -> None:
    """Rewrite the JSON state of one stored event with ``change`` applied to it."""
    table = events_table(settings)
    if settings.uses_postgres:
        schema = settings.event_store_schema or "public"
        table = f'"{schema}"."{table}"'
        where = "originator_id = %s AND originator_version = %s"
        with psycopg.connect(settings.event_store, autocommit=True) as connection:
            row = connection.execute(
                f"SELECT state FROM {table} WHERE {where}", (originator_id, version)
            ).fetchone()
            assert row is not None, "no such stored event"
            state = json.loads(bytes(row[0]))
            change(state)
            connection.execute(
                f"UPDATE {table} SET state = %s WHERE {where}",
                (json.dumps(state, ensure_ascii=False).encode(), originator_id, version),
            )
        return
    with sqlite3.connect(settings.sqlite_path) as connection:
        where = "originator_id = ? AND originator_version = ?"
        row = connection.execute(
            f"SELECT state FROM {table} WHERE {where}", (originator_id.hex, version)
        ).fetchone()
        assert row is not None, "no such stored event"
        state = json.loads(row[0])
        change(state)
        connection.execute(
            f"UPDATE {table} SET state = ? WHERE {where}",
            (json.dumps(state, ensure_ascii=False).encode(), originator_id.hex, version),
        )
