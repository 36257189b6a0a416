"""The outbox's tables in the event store's database, and the connection to them.

Redis only wakes things up; everything a delivery needs to survive a killed
worker or an emptied Redis is a row here, in the event store's own database
(the SQLite file, or the PostgreSQL schema ``NEEDLE_EVENT_STORE_SCHEMA``),
reached through the application recorder's datastore.  The tables are made
on first use (under ``workflows.store.schema_lock`` on PostgreSQL):

- ``webhook_dispatch(name, position)``: how far the dispatcher has read the log.
- ``webhook_lanes(subscription_id, contract_id, last_sequence, leased_until,
  lease_token)``: one lane per (subscription, contract), its ``sequence``
  counter and its lease (one in-flight message per lane keeps the order).
- ``webhook_messages(id, subscription_id, contract_id, sequence, position,
  idx, type, body, status, attempts, round_attempts, next_attempt_at,
  created_at, finished_at, last_error)``; ``id`` is the ``webhook-id``
  (``message_id``), ``status`` is ``pending``, ``delivered`` or ``failed``,
  ``round_attempts`` counts the attempts since the message was last (re)queued
  (the retry schedule restarts on a redelivery, the log keeps every attempt).
- ``webhook_attempts(message_id, attempt, at, status_code, duration_ms, error,
  response)``: every attempt (numbered by the database: ``record_groups``, so
  none is lost to a duplicate number); ``response`` is the first KiB of the answer.
- ``webhook_endpoints(subscription_id, failing_since)``: when the endpoint's
  current run of failures began (NULL after a success).

Each part of the outbox (``dispatch_log``, ``leases``, ``attempts``,
``delivery_log``; the vault's keys too) writes and reads through one
``OutboxTables``: ``sql`` fills in the table names (schema-qualified on
PostgreSQL) and the placeholder style.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

from workflows.ledger import Ledger
from workflows.store import schema_lock

TABLES = (
    """CREATE TABLE IF NOT EXISTS {webhook_dispatch} (
        name TEXT PRIMARY KEY,
        position BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS {webhook_lanes} (
        subscription_id TEXT NOT NULL,
        contract_id TEXT NOT NULL,
        last_sequence BIGINT NOT NULL,
        leased_until DOUBLE PRECISION,
        lease_token TEXT,
        PRIMARY KEY (subscription_id, contract_id))""",
    """CREATE TABLE IF NOT EXISTS {webhook_messages} (
        id TEXT PRIMARY KEY,
        subscription_id TEXT NOT NULL,
        contract_id TEXT NOT NULL,
        sequence BIGINT NOT NULL,
        position BIGINT NOT NULL,
        idx INTEGER NOT NULL,
        type TEXT NOT NULL,
        body {blob} NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        round_attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at DOUBLE PRECISION,
        created_at DOUBLE PRECISION NOT NULL,
        finished_at DOUBLE PRECISION,
        last_error TEXT,
        UNIQUE (subscription_id, contract_id, sequence))""",
    """CREATE INDEX IF NOT EXISTS webhook_messages_by_status
        ON {webhook_messages} (status, subscription_id, contract_id, sequence)""",
    """CREATE INDEX IF NOT EXISTS webhook_messages_by_subscription
        ON {webhook_messages} (subscription_id, position, idx)""",
    """CREATE TABLE IF NOT EXISTS {webhook_attempts} (
        message_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        at DOUBLE PRECISION NOT NULL,
        status_code INTEGER,
        duration_ms DOUBLE PRECISION NOT NULL,
        error TEXT,
        response TEXT NOT NULL,
        PRIMARY KEY (message_id, attempt))""",
    """CREATE TABLE IF NOT EXISTS {webhook_endpoints} (
        subscription_id TEXT PRIMARY KEY,
        failing_since DOUBLE PRECISION)""",
    # the data keys of sealed signing secrets (workflows/webhooks/vault.py)
    """CREATE TABLE IF NOT EXISTS {webhook_secret_keys} (
        key_id TEXT PRIMARY KEY,
        subscription_id TEXT NOT NULL,
        wrapped {blob} NOT NULL,
        destroy_after DOUBLE PRECISION)""",
)
TABLE_NAMES = (
    "webhook_dispatch",
    "webhook_lanes",
    "webhook_messages",
    "webhook_attempts",
    "webhook_endpoints",
    "webhook_secret_keys",
)


class OutboxTables:
    """The outbox tables of one application's event store (thread-safe; one per process)."""

    _created: set[str] = set()  # noqa: RUF012  # stores whose tables exist, per process
    _create_lock = threading.Lock()

    def __init__(self, app: Ledger) -> None:
        self.app = app
        self.datastore: Any = getattr(app.recorder, "datastore")  # noqa: B009  # both recorders have one
        self.postgres = app.settings.uses_postgres
        schema = (app.settings.event_store_schema or "public") if self.postgres else ""
        self.names = {
            name: (f'"{schema}"."{name}"' if self.postgres else name) for name in TABLE_NAMES
        }
        self._key = f"{app.settings.event_store}|{schema}"
        self.create_tables()

    def create_tables(self) -> None:
        """Create the tables once per store and process (PostgreSQL: under the schema lock)."""
        with self._create_lock:
            if self._key in self._created:
                return
            statements = [
                s.format(blob="BYTEA" if self.postgres else "BLOB", **self.names) for s in TABLES
            ]
            with (
                schema_lock(self.app.settings.event_store) if self.postgres else nullcontext(),
                self.write() as cursor,
            ):
                for statement in statements:
                    cursor.execute(statement)
            self._created.add(self._key)

    def sql(self, statement: str) -> str:
        statement = statement.format(**self.names)
        return statement.replace("?", "%s") if self.postgres else statement

    @contextmanager
    def write(self) -> Iterator[Any]:
        """A transaction that commits; its first statement should write (SQLite takes the
        write lock then, waiting its turn, instead of failing to upgrade a read)."""
        with self.datastore.transaction(commit=True) as cursor:
            yield getattr(cursor, "sqlite_cursor", cursor)  # the sqlite3 cursor has rowcount

    @contextmanager
    def read(self) -> Iterator[Any]:
        with self.datastore.transaction(commit=False) as cursor:
            yield getattr(cursor, "sqlite_cursor", cursor)

    def execute(self, cursor: Any, statement: str, params: Sequence[Any] = ()) -> Any:
        cursor.execute(self.sql(statement), tuple(params))
        return cursor
