"""Anchors: each aggregate's head, sealed under the server key, kept beside the events.

Why: the hash chain (``domain/chain.py``) proves that events link up, but anyone
who can write to the database can rewrite an event and recompute every hash
after it, or delete the last events, and the chain still links.  So every save
also writes, *in the same transaction as the events*, one row per aggregate it
touched to the ``<events table>_anchors`` table: the aggregate's new version,
its head hash and ``head_seal`` (an HMAC under a key the database never holds).
Forging a row needs the key; deleting or truncating events leaves a row that
no longer matches them.  The audit (``workflows/audit.py``) checks both.

The recorders below are the library's, with that one extra statement; the
application selects them through ``APPLICATION_RECORDER_TOPIC``.

The key: ``NEEDLE_CHAIN_KEY`` (required in production), else one generated once
in ``<NEEDLE_VAR_DIR>/chain.key`` (mode 0600).

Data written before anchoring existed is adopted once, when an application
first opens the store: every aggregate's current head is anchored as it is,
legacy snapshots that equal a replay of their events are sealed and those that
do not are deleted (a snapshot is only a cache), and a sealed marker row records
that this happened.  From then on a missing anchor or marker is tampering.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import EventStore, JSONTranscoder, Mapper, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore
from eventsourcing.utils import get_topic
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from domain.chain import (
    Anchor,
    ChainedAggregate,
    adoption_seal,
    head_seal,
    snapshot_seal,
    stored_snapshot_seal,
    unsealed,
)
from workflows.settings import Settings, development_key
from workflows.transcoding import SnapshotTranscoder

log = logging.getLogger(__name__)

MARKER_ID = UUID(int=0)
"""The anchors table's row that says anchoring is on (no aggregate has this id)."""
KEY_FILE = "chain.key"


# --- the key ------------------------------------------------------------------

def chain_key(settings: Settings) -> bytes:
    """``NEEDLE_CHAIN_KEY``, else the development key file (created once, atomically)."""
    if settings.chain_key is not None:
        return settings.chain_key.get_secret_value().encode()
    return development_key(Path(settings.var_dir) / KEY_FILE, "chain key").encode()


# --- recorders that write anchors with the events -----------------------------

def anchor_rows(heads: Sequence[tuple[UUID, int, str, str]]) -> list[tuple[UUID, int, str, str]]:
    return sorted(heads, key=lambda row: row[0])  # one lock order for every writer


class AnchoredSQLiteRecorder(SQLiteApplicationRecorder):
    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_events"):
        self.anchors_table_name = f"{events_table_name}_anchors"  # the parent creates tables
        super().__init__(datastore, events_table_name)

    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(),
                f"CREATE TABLE IF NOT EXISTS {self.anchors_table_name} ("
                "originator_id TEXT PRIMARY KEY, version INTEGER NOT NULL, "
                "head_hash TEXT NOT NULL, seal TEXT NOT NULL)"]

    def _insert_events(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent],
                       **kwargs: Any) -> Sequence[int] | None:
        ids = super()._insert_events(c, stored_events, **kwargs)
        heads = kwargs.get("chain_heads")
        if heads:
            c.executemany(
                f"INSERT INTO {self.anchors_table_name} VALUES (?, ?, ?, ?) "
                "ON CONFLICT (originator_id) DO UPDATE SET version = excluded.version, "
                "head_hash = excluded.head_hash, seal = excluded.seal",
                [(i.hex, v, h, s) for i, v, h, s in anchor_rows(heads)])
        return ids


class AnchoredPostgresRecorder(PostgresApplicationRecorder):
    def __init__(self, datastore: PostgresDatastore, *,
                 events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        self.anchors_table_name = f"{events_table_name}_anchors"
        self.anchors_table = SQL("{}.{}").format(
            Identifier(datastore.schema), Identifier(self.anchors_table_name))
        self.sql_create_statements.append(SQL(
            "CREATE TABLE IF NOT EXISTS {} (originator_id uuid PRIMARY KEY, "
            "version bigint NOT NULL, head_hash text NOT NULL, seal text NOT NULL)"
        ).format(self.anchors_table))
        if datastore.enable_db_functions:  # that path inserts without our statement
            raise RuntimeError("anchoring needs POSTGRES_ENABLE_DB_FUNCTIONS off")

    def _fetch_ids_after_insert_events(self, curs: Cursor[DictRow],
                                       stored_events: Sequence[StoredEvent],
                                       **kwargs: Any) -> Sequence[int] | None:
        """After the events' INSERT (the table lock is held), in the same transaction."""
        ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        heads = kwargs.get("chain_heads")
        if heads:
            with curs.connection.cursor() as anchors:
                anchors.executemany(SQL(
                    "INSERT INTO {} VALUES (%s, %s, %s, %s) ON CONFLICT (originator_id) "
                    "DO UPDATE SET version = excluded.version, head_hash = excluded.head_hash, "
                    "seal = excluded.seal").format(self.anchors_table), anchor_rows(heads))
        return ids


def anchored_env(settings: Settings) -> dict[str, str]:
    """The ``eventsourcing`` environment, with the anchoring recorder selected."""
    recorder = AnchoredPostgresRecorder if settings.uses_postgres else AnchoredSQLiteRecorder
    return {**settings.eventsourcing_env(), "APPLICATION_RECORDER_TOPIC": get_topic(recorder)}


def heads_of(events: Sequence[Any], key: bytes) -> list[tuple[UUID, int, str, str]]:
    """One anchor row per aggregate: its last event among ``events`` (chained ones only)."""
    last: dict[UUID, Any] = {}
    for event in events:
        if isinstance(event, ChainedAggregate.Event):
            current = last.get(event.originator_id)
            if current is None or current.originator_version < event.originator_version:
                last[event.originator_id] = event
    return [(i, e.originator_version, e.hash, head_seal(key, i, e.originator_version, e.hash))
            for i, e in last.items()]


# --- reading and writing anchors outside a save ---------------------------------

class _Sql:
    """The few statements anchoring needs, in SQLite's or PostgreSQL's dialect."""

    def __init__(self, recorder: Any) -> None:
        self.recorder = recorder
        self.postgres = isinstance(recorder.datastore, PostgresDatastore)

    def table(self, name: str) -> str:
        if self.postgres:
            return f'"{self.recorder.datastore.schema}"."{name}"'  # our own names, not input
        return name

    def key(self, aggregate_id: UUID) -> Any:
        return aggregate_id if self.postgres else aggregate_id.hex

    def run(self, statement: str, params: Sequence[Any] = (), *, commit: bool = False,
            many: bool = False) -> list[Any]:
        if self.postgres:
            statement = statement.replace("?", "%s")
        with self.recorder.datastore.transaction(commit=commit) as cursor:
            if many:
                cursor.executemany(statement, params)
                return []
            cursor.execute(statement, params)
            if not statement.lstrip().startswith("SELECT"):
                return []
            return [tuple(row.values()) if isinstance(row, dict) else tuple(row)
                    for row in cursor.fetchall()]


def read_anchor(recorder: Any, aggregate_id: UUID) -> Anchor | None:
    sql = _Sql(recorder)
    rows = sql.run(f"SELECT version, head_hash, seal FROM {sql.table(recorder.anchors_table_name)}"
                   " WHERE originator_id = ?", (sql.key(aggregate_id),))
    return Anchor(int(rows[0][0]), str(rows[0][1]), str(rows[0][2])) if rows else None


def marker_problem(recorder: Any, key: bytes) -> str | None:
    """Why anchoring cannot be trusted for this store (no marker, or a forged one), else None."""
    marker = read_anchor(recorder, MARKER_ID)
    if marker is None:
        return "the store's anchoring marker is missing: anchors were deleted"
    if not secrets.compare_digest(marker.seal, adoption_seal(key, marker.version)):
        return "the store's anchoring marker is not sealed by the server key"
    return None


def adopt_existing(app: Any, key: bytes) -> int:
    """Anchor what was recorded before anchoring existed, once per store; the count adopted."""
    recorder = app.recorder
    marker = read_anchor(recorder, MARKER_ID)
    if marker is not None:
        if not secrets.compare_digest(marker.seal, adoption_seal(key, marker.version)):
            # another key (a process without NEEDLE_CHAIN_KEY generated its own), or an
            # altered marker: writing anchors under this key would break every audit
            raise RuntimeError("this event store was anchored under another chain key: set "
                               "NEEDLE_CHAIN_KEY (or NEEDLE_VAR_DIR) to the one it was "
                               "written with")
        return 0
    sql = _Sql(recorder)
    events = sql.table(recorder.events_table_name)
    anchors = sql.table(recorder.anchors_table_name)
    unanchored = sql.run(
        f"SELECT e.originator_id, MAX(e.originator_version) FROM {events} e "
        f"LEFT JOIN {anchors} a ON a.originator_id = e.originator_id "
        "WHERE a.originator_id IS NULL GROUP BY e.originator_id")
    rows = []
    for raw_id, version in unanchored:
        aggregate_id = raw_id if isinstance(raw_id, UUID) else UUID(str(raw_id))
        (head,) = app.events.get(aggregate_id, gt=version - 1, lte=version)
        if isinstance(head, ChainedAggregate.Event):
            rows.append((sql.key(aggregate_id), int(version), head.hash,
                         head_seal(key, aggregate_id, int(version), head.hash)))
    if rows:
        sql.run(f"INSERT INTO {anchors} VALUES (?, ?, ?, ?) ON CONFLICT (originator_id) DO NOTHING",
                rows, commit=True, many=True)
    _adopt_snapshots(app)
    sql.run(f"INSERT INTO {anchors} VALUES (?, ?, ?, ?) ON CONFLICT (originator_id) DO NOTHING",
            (sql.key(MARKER_ID), len(rows), "", adoption_seal(key, len(rows))), commit=True)
    if rows:
        log.warning("anchored the current heads of %d aggregates recorded before anchoring",
                    len(rows))
    return len(rows)


def _adopt_snapshots(app: Any) -> None:
    """Seal each legacy snapshot that equals a replay of its events; delete the others."""
    store = app.snapshots
    if store is None:
        return
    sql = _Sql(store.recorder)
    table = sql.table(store.recorder.events_table_name)
    for (raw_id,) in sql.run(f"SELECT DISTINCT originator_id FROM {table}"):
        aggregate_id = raw_id if isinstance(raw_id, UUID) else UUID(str(raw_id))
        for stored in store.recorder.select_events(aggregate_id):
            snapshot, is_sealed = store.checked(stored)
            if is_sealed:
                continue
            where = "WHERE originator_id = ? AND originator_version = ?"
            params = (sql.key(aggregate_id), stored.originator_version)
            if replays_to(app, snapshot):
                state = store.mapper.to_stored_event(unsealed(snapshot)).state
                sql.run(f"UPDATE {table} SET state = ? {where}", (state, *params), commit=True)
            else:
                log.warning("deleted snapshot %s v%d: it does not equal a replay of its events",
                            aggregate_id, stored.originator_version)
                sql.run(f"DELETE FROM {table} {where}", params, commit=True)


STORED_SEAL = b',"stored_seal":"'
SEALED_END = len(STORED_SEAL) + 64 + 2
"""The stored seal's bytes at the end of a sealed snapshot: the key, 64 hex digits, ``"}``."""


def seal_stored(stored: StoredEvent, key: bytes) -> StoredEvent:
    """A snapshot mapped to be stored, with ``stored_seal`` added as the last key of its JSON:
    an HMAC over its id, version, topic and the SHA-256 of the bytes before the seal
    (``domain.chain.stored_snapshot_seal``).  Checking it on load hashes those bytes and
    reads no JSON, where checking a seal over the state (``snapshot_is_sealed``) encodes the
    whole decoded state again: ~13 ms of each load of a 5,000-directive contract."""
    body = bytes(stored.state)
    if not body.endswith(b"}") or body.rstrip() == b"{}" or not body.startswith(b"{"):
        raise ValueError("a snapshot is stored as a JSON object with some keys")
    seal = _stored_seal(key, stored, body)
    return StoredEvent(originator_id=stored.originator_id,
                       originator_version=stored.originator_version, topic=stored.topic,
                       state=body[:-1] + STORED_SEAL + seal.encode() + b'"}')


def stored_is_sealed(stored: StoredEvent, key: bytes) -> bool | None:
    """Whether a stored snapshot's ``stored_seal`` matches its bytes; ``None`` when it has
    none where ``seal_stored`` puts it (stored by an earlier release, unsealed, or
    rewritten): ``snapshot_is_sealed`` then decides, on the decoded snapshot."""
    state = bytes(stored.state)
    end = len(state) - SEALED_END
    if end < 1 or state[end:end + len(STORED_SEAL)] != STORED_SEAL \
            or not state.endswith(b'"}'):
        return None
    seal = state[-66:-2].decode("ascii", errors="replace")
    return hmac.compare_digest(seal, _stored_seal(key, stored, state[:end] + b"}"))


def _stored_seal(key: bytes, stored: StoredEvent, body: bytes) -> str:
    originator = stored.originator_id
    return stored_snapshot_seal(key, originator if isinstance(originator, UUID)
                                else UUID(str(originator)), stored.originator_version,
                                stored.topic, hashlib.sha256(body).hexdigest())


def state_digest(state: Mapping[str, Any]) -> str:
    """SHA-256 of a snapshot's state as sorted JSON (the same before storing and after loading:
    ids, times and decimals come back as the same values, tuples as equal lists)."""
    options = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
    return hashlib.sha256(orjson.dumps(state, option=options, default=str)).hexdigest()


def snapshot_is_sealed(snapshot: Any, key: bytes) -> bool:
    """Whether a loaded snapshot (of any snapshot class) carries a valid seal."""
    seal = getattr(snapshot, "seal", "")
    if not seal:
        return False
    return hmac.compare_digest(seal, snapshot_seal(key, snapshot, state_digest(snapshot.state)))


def replays_to(app: Any, snapshot: Any) -> bool:
    """Whether replaying the events up to the snapshot's version gives the snapshot's state."""
    aggregate = None
    for event in app.events.get(snapshot.originator_id, lte=snapshot.originator_version):
        aggregate = event.mutate(aggregate)
    if aggregate is None or aggregate.version != snapshot.originator_version:
        return False
    replayed = type(aggregate).Snapshot.take(aggregate)
    return bool(state_digest(replayed.state) == state_digest(snapshot.state))


class SnapshotMapper(Mapper[UUID]):
    """The ledger's mapper for snapshots: encoded with orjson (``SnapshotTranscoder``, the
    events' transcodings), sealed over the encoded bytes (``seal_stored``), then compressed
    and encrypted as the events are (when the application is configured to)."""

    def __init__(self, events: Mapper[UUID], key: bytes) -> None:
        transcoder = events.transcoder
        assert isinstance(transcoder, JSONTranscoder)
        super().__init__(SnapshotTranscoder.like(transcoder), events.compressor, events.cipher)
        self.key = key
        self._encoding = Mapper[UUID](self.transcoder)
        """The library's mapping, encoding only (no compression, no cipher)."""

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        stored = seal_stored(self._encoding.to_stored_event(domain_event), self.key)
        state = stored.state
        if self.compressor:
            state = self.compressor.compress(state)
        if self.cipher:
            state = self.cipher.encrypt(state)
        return replace(stored, state=state)

    def sealed(self, stored: StoredEvent) -> bool | None:
        """``stored_is_sealed`` on the encoded bytes (decrypted and decompressed)."""
        state = stored.state
        if self.cipher:
            state = self.cipher.decrypt(state)
        if self.compressor:
            state = self.compressor.decompress(state)
        return stored_is_sealed(replace(stored, state=state), self.key)


class SealedSnapshotStore(EventStore[UUID]):
    """Snapshots stored sealed (``SnapshotMapper``); yields only those whose seal matches:
    an altered one is skipped (the aggregate is then loaded from its events, which the
    anchors protect) and logged."""

    mapper: SnapshotMapper

    def get(self, originator_id: UUID, **kwargs: Any) -> Iterator[Any]:
        for stored in self.recorder.select_events(originator_id, **kwargs):
            snapshot, sealed = self.checked(stored)
            if sealed:
                yield snapshot
            else:
                log.warning("ignored snapshot %s v%d: its seal does not match its content",
                            originator_id, stored.originator_version)

    def checked(self, stored: StoredEvent) -> tuple[Any, bool]:
        """A stored snapshot decoded, and whether its seal (over its bytes, or, stored by an
        earlier release, over its state) matches it."""
        sealed = self.mapper.sealed(stored)
        snapshot = self.mapper.to_domain_event(stored)
        if sealed is None:
            sealed = snapshot_is_sealed(snapshot, self.mapper.key)
        return snapshot, sealed

    def latest_checked(self, originator_id: UUID) -> tuple[Any, bool] | None:
        """The latest stored snapshot of one aggregate and whether it is sealed (the audit)."""
        stored = next(iter(self.recorder.select_events(originator_id, desc=True, limit=1)),
                      None)
        return None if stored is None else self.checked(stored)

    def versions(self, originator_id: UUID) -> list[int]:
        """The versions of every stored snapshot of one aggregate, without reading them."""
        recorder: Any = self.recorder  # both SQL recorders name their table
        sql = _Sql(recorder)
        table = sql.table(recorder.events_table_name)
        rows = sql.run(f"SELECT originator_version FROM {table} WHERE originator_id = ?",
                       (sql.key(originator_id),))
        return sorted(int(version) for (version,) in rows)
