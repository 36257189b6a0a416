"""The PostgreSQL recorder the ledger uses: a save's events, its anchors, the table lock
and the notification in one call of one server function (``ArrayInsertRecorder``)."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier, Literal

from workflows.anchoring import AnchoredPostgresRecorder, anchor_rows
from workflows.fail_fast import WAIT_SECONDS, attempts_of

LIBRARY_ATTEMPTS = 10
"""The library's attempts at an insert, unless ``limit_store_retries`` set fewer."""


class ArrayInsertRecorder(AnchoredPostgresRecorder):
    """The anchoring recorder, recording a save with one statement: one server function.

    Why: the library's insert is a pipeline of five statements in a transaction
    (lock, notify, insert, then the anchors and the commit), and psycopg's Python
    side of each (the pipeline, the transaction, each cursor and statement) was
    most of the group committer's save in the command-path profile, while it
    holds the GIL the event loop needs.  Here the function (created with the
    tables, replaced at each start) takes the table lock (``LOCK TABLE … IN
    EXCLUSIVE MODE``, as the library: notification ids in commit order), sends
    the ``NOTIFY``, inserts the events (``RETURNING notification_id``, in their
    order) and writes the anchors (``workflows/anchoring.py``), all in the one
    transaction of one ``SELECT`` on an autocommit connection.  Its arguments are
    arrays sent in binary (psycopg dumps the library's composite array as text in
    Python, escaping every byte of every event's state).  A version conflict is
    the same unique violation (``IntegrityError``) as before, and nothing of it
    is recorded.
    """

    def __init__(self, datastore: PostgresDatastore, *,
                 events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        function = SQL("{}.{}").format(
            Identifier(datastore.schema), Identifier(function_name(events_table_name)))
        events = SQL("{}.{}").format(Identifier(datastore.schema), Identifier(events_table_name))
        id_type = Identifier(datastore.originator_id_type)
        self.sql_create_statements.append(SQL(
            "CREATE OR REPLACE FUNCTION {function}("
            "ids {id_type}[], versions bigint[], topics text[], states bytea[], "
            "anchor_ids uuid[], anchor_versions bigint[], anchor_hashes text[], "
            "anchor_seals text[]) RETURNS SETOF bigint LANGUAGE plpgsql AS $$ "
            "BEGIN "
            "SET LOCAL lock_timeout = {lock_timeout}; "
            "LOCK TABLE {events} IN EXCLUSIVE MODE; "
            "NOTIFY {channel}; "
            "RETURN QUERY INSERT INTO {events} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(ids, versions, topics, states) RETURNING notification_id; "
            "INSERT INTO {anchors} "
            "SELECT * FROM unnest(anchor_ids, anchor_versions, anchor_hashes, anchor_seals) "
            "ON CONFLICT (originator_id) DO UPDATE SET version = excluded.version, "
            "head_hash = excluded.head_hash, seal = excluded.seal; "
            "END $$"
        ).format(function=function, id_type=id_type, events=events, anchors=self.anchors_table,
                 lock_timeout=Literal(f"{datastore.lock_timeout}s"),
                 channel=Identifier(self.channel_name)))
        self.record_statement = SQL(
            "SELECT * FROM {}(%b::{}[], %b::bigint[], %b::text[], %b::bytea[], "
            "%b::uuid[], %b::bigint[], %b::text[], %b::text[])").format(function, id_type)
        self._record_retried = retry(
            (InterfaceError, OperationalError), wait=WAIT_SECONDS,
            max_attempts=attempts_of(PostgresApplicationRecorder, "insert_events")
            or LIBRARY_ATTEMPTS)(self._record_at_once)

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any
                      ) -> Sequence[int] | None:
        if not stored_events or self.datastore.enable_db_functions:
            return super().insert_events(stored_events, **kwargs)
        return self._record_retried(stored_events, kwargs.get("chain_heads") or ())

    def _record_at_once(self, stored_events: Sequence[StoredEvent],
                        heads: Sequence[tuple[Any, int, str, str]]) -> list[int]:
        anchors = anchor_rows(heads)
        with self.datastore.get_connection() as connection, \
                connection.cursor(row_factory=tuple_row) as cursor:
            cursor.execute(self.record_statement, (
                [e.originator_id for e in stored_events],
                [e.originator_version for e in stored_events],
                [e.topic for e in stored_events],
                [e.state for e in stored_events],
                [row[0] for row in anchors], [row[1] for row in anchors],
                [row[2] for row in anchors], [row[3] for row in anchors],
            ), prepare=True)
            return [row[0] for row in cursor.fetchall()]


def function_name(events_table_name: str) -> str:
    """The recording function's name: the table's, within PostgreSQL's 63 bytes."""
    name = f"{events_table_name}_record"
    if len(name.encode()) <= 63:
        return name
    head = events_table_name.encode()[:50].decode(errors="ignore")
    return f"{head}_{zlib.crc32(name.encode()):08x}"
