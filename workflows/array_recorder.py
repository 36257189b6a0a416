"""The PostgreSQL recorder the ledger uses: the anchoring recorder, inserting a save's
events as four arrays sent in binary (``ArrayInsertRecorder``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresDatastore
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from workflows.anchoring import AnchoredPostgresRecorder


class ArrayInsertRecorder(AnchoredPostgresRecorder):
    """The anchoring recorder, inserting a save's events as four arrays sent in binary.

    Why: the library sends them as one array of a composite type, which psycopg
    dumps as text in Python, escaping every byte of every event's state: the largest
    part of a group commit's save in the command-path profile.  The statement is the
    library's (same columns, same order, ``RETURNING notification_id``), its arrays
    of ids, versions, topics and states dumped by psycopg's binary dumpers.
    """

    def __init__(self, datastore: PostgresDatastore, *,
                 events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self.insert_arrays_statement = SQL(
            "INSERT INTO {}.{} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%b::{}[], %b::bigint[], %b::text[], %b::bytea[]) "
            "RETURNING notification_id"
        ).format(Identifier(datastore.schema), Identifier(events_table_name),
                 Identifier(datastore.originator_id_type))
        self.notify_statement = SQL("NOTIFY {}").format(Identifier(self.channel_name))

    def _insert_stored_events(self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent],
                              **kwargs: Any) -> None:
        self._lock_table(curs)
        curs.execute(self.notify_statement, prepare=True)
        curs.execute(self.insert_arrays_statement, (
            [e.originator_id for e in stored_events],
            [e.originator_version for e in stored_events],
            [e.topic for e in stored_events],
            [e.state for e in stored_events],
        ), prepare=True)
