"""Alter a stored event behind the application's back, as an intruder with database access would."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any
from uuid import UUID

import psycopg

from domain.chain import record_hash
from workflows.ledger import Ledger
from workflows.settings import Settings


def events_table(settings: Settings) -> str:
    app = Ledger(settings)
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


# --- what the chain alone did not catch (issue 11) -------------------------------------------

class RawStore:
    """Plain SQL on the event store's tables, behind the application's back."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        app = Ledger(settings)
        try:
            recorder: Any = app.recorder
            snapshots: Any = app.snapshots.recorder if app.snapshots else None
            self.events = self._name(recorder.events_table_name)
            self.anchors = self._name(recorder.anchors_table_name)
            self.snapshots = self._name(snapshots.events_table_name)
        finally:
            app.close()

    @property
    def postgres(self) -> bool:
        return self.settings.uses_postgres

    def _name(self, table: str) -> str:
        if self.postgres:
            return f'"{self.settings.event_store_schema or "public"}"."{table}"'
        return table

    def key(self, aggregate_id: UUID) -> Any:
        return aggregate_id if self.postgres else aggregate_id.hex

    def run(self, statement: str, *params: Any) -> list[Any]:
        if self.postgres:
            with psycopg.connect(self.settings.event_store, autocommit=True) as connection:
                cursor = connection.execute(statement.replace("?", "%s"), params)
                return list(cursor.fetchall()) if cursor.description else []
        with sqlite3.connect(self.settings.sqlite_path) as connection:
            return list(connection.execute(statement, params).fetchall())

    def states(self, table: str, aggregate_id: UUID) -> dict[int, dict[str, Any]]:
        rows = self.run(f"SELECT originator_version, state FROM {table} "
                        "WHERE originator_id = ? ORDER BY originator_version",
                        self.key(aggregate_id))
        return {int(version): json.loads(bytes(state)) for version, state in rows}

    def put_state(self, table: str, aggregate_id: UUID, version: int,
                  state: dict[str, Any]) -> None:
        self.run(f"UPDATE {table} SET state = ? WHERE originator_id = ? AND "
                 "originator_version = ?", json.dumps(state, ensure_ascii=False).encode(),
                 self.key(aggregate_id), version)


def rewrite_history(settings: Settings, aggregate_id: UUID, version: int,
                    change: Callable[[dict[str, Any]], None]) -> None:
    """Change one event's data and recompute every hash from it on, so the chain links."""
    store = RawStore(settings)
    app = Ledger(settings)
    try:
        events = {e.originator_version: e for e in app.events.get(aggregate_id)}
    finally:
        app.close()
    states = store.states(store.events, aggregate_id)
    previous = states[version]["prev_hash"]
    for number in range(version, max(states) + 1):
        state, event = states[number], events[number]
        if number == version:
            change(state["data"])
        state["prev_hash"] = previous
        state["hash"] = previous = record_hash(
            type_name=event.type_name(), aggregate_id=aggregate_id, version=number,
            at=event.timestamp, actor=state["actor"], data=state["data"], prev_hash=previous)
        store.put_state(store.events, aggregate_id, number, state)


def delete_last_events(settings: Settings, aggregate_id: UUID, count: int) -> None:
    store = RawStore(settings)
    last = max(store.states(store.events, aggregate_id))
    store.run(f"DELETE FROM {store.events} WHERE originator_id = ? AND originator_version > ?",
              store.key(aggregate_id), last - count)


def alter_latest_snapshot(settings: Settings, aggregate_id: UUID,
                          change: Callable[[dict[str, Any]], None]) -> int:
    """Change the aggregate state kept in its latest snapshot; the snapshot's version."""
    store = RawStore(settings)
    snapshots = store.states(store.snapshots, aggregate_id)
    assert snapshots, "no snapshot to alter"
    version = max(snapshots)
    change(snapshots[version]["state"])
    store.put_state(store.snapshots, aggregate_id, version, snapshots[version])
    return version


def forget_anchoring(settings: Settings) -> None:
    """Make the store look as it did before anchors and sealed snapshots existed."""
    store = RawStore(settings)
    store.run(f"DELETE FROM {store.anchors}")
    for (raw_id,) in store.run(f"SELECT DISTINCT originator_id FROM {store.snapshots}"):
        aggregate_id = raw_id if isinstance(raw_id, UUID) else UUID(raw_id)
        for version, state in store.states(store.snapshots, aggregate_id).items():
            state.pop("seal", None)
            state.pop("stored_seal", None)
            store.put_state(store.snapshots, aggregate_id, version, state)


def delete_anchor(settings: Settings, aggregate_id: UUID) -> None:
    store = RawStore(settings)
    store.run(f"DELETE FROM {store.anchors} WHERE originator_id = ?", store.key(aggregate_id))
