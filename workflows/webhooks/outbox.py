"""The webhook outbox: messages, lanes, attempts and the dispatcher's position, in the event store.

(Longer than our usual 400 lines, on purpose: every SQL statement on these
tables is here, so that the ones that must agree with each other — the
dispatcher's compare-and-set, the leases and their fence, the attempt
numbering, the sweeper's due lanes — are read and changed together.)

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

Times are UTC epoch seconds (floats) in the tables; the methods take and give
``datetime`` values.

Sequences are allocated by ``write_dispatch`` in the same transaction that
moves the dispatcher's position (a compare-and-set on the old position), so a
batch is written once or not at all and a lane's ``sequence`` has no gaps.
Tests may write messages without the dispatcher with ``append``.

Used by: ``workflows.webhooks.dispatch`` (``position``, ``write_dispatch``),
``workflows.webhooks.delivery`` (leases, ``lane_messages``,
``record_attempt``…), the sweeper (``due_lanes``) and the API
(``deliveries``, ``redeliver``, ``recover``).

Long because the outbox's tables, dispatcher log, leases, attempts and delivery log
still share one class; splitting it by job is issue 12.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid5

from domain.errors import ValidationFailed
from domain.webhooks import Message, message_body
from workflows.application import Threadneedle
from workflows.store import schema_lock

MESSAGE_NAMESPACE = UUID("8d6a3f0e-2c41-5b7e-9f13-6c0a4e2b7d51")
DISPATCHER = "webhooks"
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
STATUSES = (PENDING, DELIVERED, FAILED)
ENDPOINT_DISABLED = "endpoint disabled"

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
TABLE_NAMES = ("webhook_dispatch", "webhook_lanes", "webhook_messages",
               "webhook_attempts", "webhook_endpoints", "webhook_secret_keys")


def message_id(subscription_id: str, position: int, index: int) -> str:
    """The ``webhook-id``: the same (subscription, event position, index in the event) → same id."""
    return "msg_" + uuid5(MESSAGE_NAMESPACE, f"{subscription_id}:{position}:{index}").hex


def epoch(moment: datetime) -> float:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def moment(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _iso(seconds: float | None) -> str | None:
    when = moment(seconds)
    return None if when is None else when.isoformat()


@dataclass(frozen=True)
class Entry:
    """One message for one subscription, before it has a ``sequence``."""

    subscription_id: str
    message: Message
    position: int
    """The notification id of the event it comes from."""
    index: int
    """Its place among the messages of that event (all subscriptions count alike)."""
    timestamp: datetime
    """The event's time: the body's ``timestamp`` and the message's ``created_at``."""
    status: str = PENDING

    @property
    def contract_id(self) -> str:
        return str(self.message.data["contract_id"])

    @property
    def id(self) -> str:
        return message_id(self.subscription_id, self.position, self.index)


@dataclass(frozen=True)
class Lane:
    subscription_id: str
    contract_id: str


@dataclass(frozen=True)
class Lease:
    """A lane held by one delivery run until ``until`` (epoch seconds)."""

    lane: Lane
    token: str
    until: float
    failing_since: float | None
    """The endpoint's failure run when the lease was taken (saves a read per attempt)."""


@dataclass(frozen=True)
class Stored:
    """A pending message as the delivery needs it."""

    id: str
    sequence: int
    body: bytes
    attempts: int
    round_attempts: int
    next_attempt_at: float


@dataclass(frozen=True)
class Attempt:
    """What one attempt did, and what the message becomes."""

    message_id: str
    attempt: int
    at: float
    status_code: int | None
    duration_ms: float
    error: str | None
    response: str
    status: str
    next_attempt_at: float | None
    round_attempts: int
    reason: str | None = None
    """What the attempt meant (``retries.Verdict.reason``): the message's ``last_error``."""


@dataclass(frozen=True)
class Record:
    """Attempts of one lane run to record, and what else that record does."""

    attempts: Sequence[Attempt]
    lease: Lease | None = None
    renew_seconds: float = 0.0
    """Extend the lease to the last attempt's time plus this (0: leave it)."""
    endpoint_failing: bool = True
    """Whether the endpoint may have a failure run to end (``False`` skips that write)."""


class Outbox:
    """The outbox tables of one application's event store (thread-safe; one per process)."""

    _created: set[str] = set()  # noqa: RUF012  # stores whose tables exist, per process
    _create_lock = threading.Lock()

    def __init__(self, app: Threadneedle) -> None:
        self.app = app
        self.datastore: Any = getattr(app.recorder, "datastore")  # noqa: B009  # both recorders have one
        self.postgres = app.settings.uses_postgres
        schema = (app.settings.event_store_schema or "public") if self.postgres else ""
        self.names = {name: (f'"{schema}"."{name}"' if self.postgres else name)
                      for name in TABLE_NAMES}
        self._key = f"{app.settings.event_store}|{schema}"
        self.create_tables()

    # --- plumbing ---------------------------------------------------------------

    def create_tables(self) -> None:
        """Create the tables once per store and process (PostgreSQL: under the schema lock)."""
        with self._create_lock:
            if self._key in self._created:
                return
            statements = [s.format(blob="BYTEA" if self.postgres else "BLOB", **self.names)
                          for s in TABLES]
            with schema_lock(self.app.settings.event_store) if self.postgres \
                    else nullcontext(), self._write() as cursor:
                for statement in statements:
                    cursor.execute(statement)
            self._created.add(self._key)

    def _sql(self, statement: str) -> str:
        statement = statement.format(**self.names)
        return statement.replace("?", "%s") if self.postgres else statement

    @contextmanager
    def _write(self) -> Iterator[Any]:
        """A transaction that commits; its first statement should write (SQLite takes the
        write lock then, waiting its turn, instead of failing to upgrade a read)."""
        with self.datastore.transaction(commit=True) as cursor:
            yield getattr(cursor, "sqlite_cursor", cursor)  # the sqlite3 cursor has rowcount

    @contextmanager
    def _read(self) -> Iterator[Any]:
        with self.datastore.transaction(commit=False) as cursor:
            yield getattr(cursor, "sqlite_cursor", cursor)

    def _execute(self, cursor: Any, statement: str, params: Sequence[Any] = ()) -> Any:
        cursor.execute(self._sql(statement), tuple(params))
        return cursor

    # --- the dispatcher ------------------------------------------------------------

    def position(self, name: str = DISPATCHER) -> int:
        """How far the dispatcher has read the notification log (0 before it starts)."""
        with self._read() as cursor:
            row = self._execute(cursor, "SELECT position FROM {webhook_dispatch} WHERE name = ?",
                                (name,)).fetchone()
        return int(row["position"]) if row else 0

    def write_dispatch(
        self, entries: Sequence[Entry], *, old_position: int, new_position: int, now: datetime,
        name: str = DISPATCHER,
    ) -> list[Lane] | None:
        """Write a batch's messages and move the position from ``old_position``, atomically.

        Answers the lanes that received a pending message, or ``None`` when the
        position was no longer ``old_position`` (another dispatcher wrote this
        batch): then nothing is written.
        """
        try:
            with self._write() as cursor:
                if old_position == 0:
                    self._execute(cursor, "INSERT INTO {webhook_dispatch} (name, position) "
                                          "VALUES (?, 0) ON CONFLICT (name) DO NOTHING", (name,))
                moved = self._execute(
                    cursor, "UPDATE {webhook_dispatch} SET position = ? WHERE name = ? "
                            "AND position = ?", (new_position, name, old_position)).rowcount
                if moved != 1:
                    raise _Moved  # rolls the transaction back
                return self._insert(cursor, entries, now)
        except _Moved:
            return None

    def append(self, entries: Sequence[Entry], now: datetime) -> list[Lane]:
        """Write messages without moving any position (tests, tools): sequences as usual."""
        with self._write() as cursor:
            # A write first: SQLite then waits for the write lock instead of refusing to
            # upgrade the read of the lanes' sequences when another process wrote meanwhile.
            self._execute(cursor, "UPDATE {webhook_dispatch} SET position = position "
                                  "WHERE name = ?", (DISPATCHER,))
            return self._insert(cursor, entries, now)

    def _insert(self, cursor: Any, entries: Sequence[Entry], now: datetime) -> list[Lane]:
        if not entries:
            return []
        lanes = list(dict.fromkeys(Lane(e.subscription_id, e.contract_id) for e in entries))
        last = self._last_sequences(cursor, lanes)
        rows, pending = [], set()
        created = epoch(now)
        for entry in entries:
            lane = Lane(entry.subscription_id, entry.contract_id)
            last[lane] += 1
            body = message_body(entry.message, sequence=last[lane], timestamp=entry.timestamp)
            rows.append((
                entry.id, entry.subscription_id, entry.contract_id, last[lane], entry.position,
                entry.index, entry.message.type, body, entry.status,
                created if entry.status == PENDING else None, epoch(entry.timestamp),
                None if entry.status == PENDING else created,
                None if entry.status == PENDING else ENDPOINT_DISABLED,
            ))
            if entry.status == PENDING:
                pending.add(lane)
        cursor.executemany(self._sql(
            "INSERT INTO {webhook_messages} (id, subscription_id, contract_id, sequence, "
            "position, idx, type, body, status, next_attempt_at, created_at, finished_at, "
            "last_error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"), rows)
        cursor.executemany(self._sql(
            "INSERT INTO {webhook_lanes} (subscription_id, contract_id, last_sequence) "
            "VALUES (?, ?, ?) ON CONFLICT (subscription_id, contract_id) "
            "DO UPDATE SET last_sequence = excluded.last_sequence"),
            [(lane.subscription_id, lane.contract_id, last[lane]) for lane in lanes])
        return [lane for lane in lanes if lane in pending]

    def _last_sequences(self, cursor: Any, lanes: Sequence[Lane]) -> dict[Lane, int]:
        last = dict.fromkeys(lanes, 0)
        wanted = set(lanes)
        subscriptions = sorted({lane.subscription_id for lane in lanes})
        for start in range(0, len(subscriptions), 500):
            chunk = subscriptions[start:start + 500]
            marks = ", ".join("?" for _ in chunk)
            for row in self._execute(
                cursor, "SELECT subscription_id, contract_id, last_sequence FROM "
                        "{webhook_lanes} WHERE subscription_id IN (" + marks + ")", chunk,
            ).fetchall():
                lane = Lane(row["subscription_id"], row["contract_id"])
                if lane in wanted:
                    last[lane] = int(row["last_sequence"])
        return last

    # --- leases ---------------------------------------------------------------------

    def lease(self, lane: Lane, now: datetime, *, seconds: float, cap: int) -> Lease | None:
        """Take the lane for ``seconds`` unless it is held, or its subscription already
        holds ``cap`` live leases (a slow endpoint holds at most ``cap`` workers)."""
        at = epoch(now)
        token = secrets.token_hex(8)
        with self._write() as cursor:
            # First a write: it takes SQLite's write lock and, on PostgreSQL, locks the
            # endpoint's row, so two runs cannot both count below the cap.
            self._execute(cursor, "INSERT INTO {webhook_endpoints} (subscription_id) VALUES (?) "
                                  "ON CONFLICT (subscription_id) DO UPDATE SET "
                                  "failing_since = {webhook_endpoints}.failing_since",
                          (lane.subscription_id,))
            row = self._execute(cursor, "SELECT failing_since FROM {webhook_endpoints} "
                                        "WHERE subscription_id = ?",
                                (lane.subscription_id,)).fetchone()
            held = self._execute(
                cursor, "SELECT COUNT(*) AS n FROM {webhook_lanes} WHERE subscription_id = ? "
                        "AND contract_id <> ? AND leased_until > ?",
                (lane.subscription_id, lane.contract_id, at)).fetchone()
            if int(held["n"]) >= cap:
                return None
            taken = self._execute(
                cursor, "UPDATE {webhook_lanes} SET leased_until = ?, lease_token = ? "
                        "WHERE subscription_id = ? AND contract_id = ? "
                        "AND (leased_until IS NULL OR leased_until <= ?)",
                (at + seconds, token, lane.subscription_id, lane.contract_id, at)).rowcount
        if taken != 1:
            return None
        return Lease(lane, token, at + seconds, row["failing_since"] if row else None)

    def release(self, lease: Lease) -> None:
        with self._write() as cursor:
            self._execute(cursor, "UPDATE {webhook_lanes} SET leased_until = NULL, "
                                  "lease_token = NULL WHERE subscription_id = ? "
                                  "AND contract_id = ? AND lease_token = ?",
                          (lease.lane.subscription_id, lease.lane.contract_id, lease.token))

    def renew(self, lease: Lease, now: datetime, seconds: float) -> Lease | None:
        """Extend a lease still held; ``None`` when it lapsed and another run took the lane."""
        until = epoch(now) + seconds
        with self._write() as cursor:
            kept = self._execute(
                cursor, "UPDATE {webhook_lanes} SET leased_until = ? WHERE subscription_id = ? "
                        "AND contract_id = ? AND lease_token = ?",
                (until, lease.lane.subscription_id, lease.lane.contract_id, lease.token)).rowcount
        return Lease(lease.lane, lease.token, until, lease.failing_since) if kept == 1 else None

    # --- delivery -------------------------------------------------------------------

    def lane_messages(self, lane: Lane, limit: int = 50) -> list[Stored]:
        """The lane's pending messages in ``sequence`` order (the first is the one to send)."""
        with self._read() as cursor:
            rows = self._execute(
                cursor, "SELECT id, sequence, body, attempts, round_attempts, next_attempt_at "
                        "FROM {webhook_messages} WHERE status = 'pending' AND subscription_id = ? "
                        "AND contract_id = ? ORDER BY sequence LIMIT ?",
                (lane.subscription_id, lane.contract_id, limit)).fetchall()
        return [Stored(row["id"], int(row["sequence"]), bytes(row["body"]), int(row["attempts"]),
                       int(row["round_attempts"]), float(row["next_attempt_at"]))
                for row in rows]

    def record_attempt(self, attempt: Attempt, lease: Lease | None = None,
                       *, renew_seconds: float = 0.0, endpoint_failing: bool = True,
                       ) -> float | None:
        """``record_attempts`` for one attempt."""
        return self.record_attempts([attempt], lease, renew_seconds=renew_seconds,
                                    endpoint_failing=endpoint_failing)

    def record_attempts(self, attempts: Sequence[Attempt], lease: Lease | None = None,
                        *, renew_seconds: float = 0.0, endpoint_failing: bool = True,
                        ) -> float | None:
        """Log attempts of one subscription and set their messages' states, in one transaction.

        When the last attempt failed, the endpoint's failure run starts (unless
        one is running) and the answer is when it began; otherwise the run
        ends (``None``; the write is skipped when the caller knows none was
        going, ``endpoint_failing=False``).  With a ``lease`` and
        ``renew_seconds``, the lease is extended to the last attempt's time
        plus ``renew_seconds`` as well.
        """
        return self.record_groups([Record(attempts, lease, renew_seconds, endpoint_failing)])[0]

    def record_groups(self, records: Sequence[Record]) -> list[float | None]:
        """Several ``record_attempts`` (of any lanes) in one transaction: the answers in order.

        Delivery threads of one process share their writes this way (group
        commit), so the database sees one transaction per group of attempts.
        """
        if not records:
            return []
        with self._write() as cursor:
            attempts = [a for record in records for a in record.attempts]
            numbers = self._number(cursor, attempts)
            cursor.executemany(self._sql(
                "INSERT INTO {webhook_attempts} (message_id, attempt, at, status_code, "
                "duration_ms, error, response) VALUES (?, ?, ?, ?, ?, ?, ?)"),
                [(a.message_id, number, a.at, a.status_code, a.duration_ms, a.error,
                  a.response) for a, number in zip(attempts, numbers, strict=True)])
            for fenced, group in ((True, [r for r in records if r.lease is not None]),
                                  (False, [r for r in records if r.lease is None])):
                if group:
                    cursor.executemany(self._sql(_SET_STATE + (_FENCE if fenced else "")), [
                        _state_row(a) + (_fence_row(r.lease) if r.lease is not None else ())
                        for r in group for a in r.attempts])
            return [self._endpoint_after(cursor, record) for record in records]

    def _number(self, cursor: Any, attempts: Sequence[Attempt]) -> list[int]:
        """Each attempt's number in its message's log, counted in the database.

        Not the number the run expected (``Attempt.attempt``): two runs that both
        sent a message (one whose lease had lapsed) both have their attempt
        logged, one after the other, instead of the second one failing on the
        log's primary key.  The counter's row is locked first, in id order, so
        that concurrent groups take their numbers in turn.
        """
        ids = sorted(a.message_id for a in attempts)
        cursor.executemany(self._sql("UPDATE {webhook_messages} SET attempts = attempts + 1 "
                                     "WHERE id = ?"), [(i,) for i in ids])
        marks = ", ".join("?" for _ in set(ids))
        counts = {row["id"]: int(row["attempts"]) for row in self._execute(
            cursor, "SELECT id, attempts FROM {webhook_messages} WHERE id IN (" + marks + ")",
            sorted(set(ids))).fetchall()}
        missing = sorted(set(ids) - set(counts))
        if missing:
            raise ValueError(f"no webhook message {', '.join(missing)}: attempts not recorded")
        first = {i: counts[i] - ids.count(i) for i in set(ids)}
        numbers = []
        for attempt in attempts:
            first[attempt.message_id] += 1
            numbers.append(first[attempt.message_id])
        return numbers

    def _endpoint_after(self, cursor: Any, record: Record) -> float | None:
        """Renew the record's lease if asked; start or end its endpoint's failure run."""
        if not record.attempts:
            return None
        last, lease = record.attempts[-1], record.lease
        if lease is not None and record.renew_seconds:
            self._execute(cursor, "UPDATE {webhook_lanes} SET leased_until = ? WHERE "
                                  "subscription_id = ? AND contract_id = ? AND lease_token = ?",
                          (last.at + record.renew_seconds, lease.lane.subscription_id,
                           lease.lane.contract_id, lease.token))
        subscription_id = self._subscription_of(cursor, last.message_id, lease)
        if record.endpoint_failing and any(a.status == DELIVERED for a in record.attempts):
            self._execute(cursor, "UPDATE {webhook_endpoints} SET failing_since = NULL "
                                  "WHERE subscription_id = ?", (subscription_id,))
        if last.status == DELIVERED:
            return None
        self._execute(cursor, "INSERT INTO {webhook_endpoints} (subscription_id, "
                              "failing_since) VALUES (?, ?) ON CONFLICT (subscription_id) "
                              "DO UPDATE SET failing_since = COALESCE("
                              "{webhook_endpoints}.failing_since, excluded.failing_since)",
                      (subscription_id, last.at))
        row = self._execute(cursor, "SELECT failing_since FROM {webhook_endpoints} "
                                    "WHERE subscription_id = ?", (subscription_id,)).fetchone()
        return float(row["failing_since"])

    def _subscription_of(self, cursor: Any, message_id: str, lease: Lease | None) -> str:
        if lease is not None:
            return lease.lane.subscription_id
        row = self._execute(cursor, "SELECT subscription_id FROM {webhook_messages} "
                                    "WHERE id = ?", (message_id,)).fetchone()
        return str(row["subscription_id"])

    def fail_pending(self, subscription_id: str, reason: str, now: datetime) -> int:
        """An endpoint was disabled: its pending messages become ``failed`` with ``reason``
        (``recover`` sends them again once it is re-enabled); its failure run ends."""
        at = epoch(now)
        with self._write() as cursor:
            failed = self._execute(
                cursor, "UPDATE {webhook_messages} SET status = 'failed', finished_at = ?, "
                        "next_attempt_at = NULL, last_error = ? WHERE subscription_id = ? "
                        "AND status = 'pending'", (at, reason, subscription_id)).rowcount
            self._execute(cursor, "UPDATE {webhook_endpoints} SET failing_since = NULL "
                                  "WHERE subscription_id = ?", (subscription_id,))
        return int(failed)

    def due_lanes(self, now: datetime, limit: int = 1000, cap: int | None = None) -> list[Lane]:
        """Lanes whose first pending message is due and which no live lease holds.

        With ``cap``, a subscription's lanes are listed only up to what its
        cap of leased lanes leaves free (runs for the others would be refused).
        """
        at = epoch(now)
        with self._read() as cursor:
            held: dict[str, int] = {}
            if cap is not None:
                held = {row["subscription_id"]: int(row["n"]) for row in self._execute(
                    cursor, "SELECT subscription_id, COUNT(*) AS n FROM {webhook_lanes} "
                            "WHERE leased_until > ? GROUP BY subscription_id", (at,)).fetchall()}
            rows = self._execute(
                cursor,
                "SELECT m.subscription_id, m.contract_id FROM {webhook_messages} m "
                "JOIN (SELECT subscription_id, contract_id, MIN(sequence) AS head "
                "      FROM {webhook_messages} WHERE status = 'pending' "
                "      GROUP BY subscription_id, contract_id) h "
                "  ON m.subscription_id = h.subscription_id AND m.contract_id = h.contract_id "
                "  AND m.sequence = h.head "
                "JOIN {webhook_lanes} l ON l.subscription_id = m.subscription_id "
                "  AND l.contract_id = m.contract_id "
                "WHERE m.next_attempt_at <= ? AND (l.leased_until IS NULL OR l.leased_until <= ?) "
                "ORDER BY m.next_attempt_at LIMIT ?", (at, at, limit)).fetchall()
        lanes = []
        for row in rows:
            subscription_id = row["subscription_id"]
            if cap is not None:
                if held.get(subscription_id, 0) >= cap:
                    continue
                held[subscription_id] = held.get(subscription_id, 0) + 1
            lanes.append(Lane(subscription_id, row["contract_id"]))
        return lanes

    # --- what the API shows and does ---------------------------------------------------

    def deliveries(
        self, subscription_id: str, *, status: str | None = None, limit: int = 100,
        after: str | None = None,
    ) -> list[dict[str, Any]]:
        """A subscription's messages in the order they were written, with their attempts.

        ``after`` is the ``id`` of the last message of the previous page;
        ``status`` one of ``pending``, ``delivered``, ``failed``.  Times are ISO
        8601 in UTC; ``next_attempt_at`` is ``None`` unless the message is pending.
        Bad ``status``, ``limit`` or ``after`` → ``ValidationFailed``.
        """
        if status is not None and status not in STATUSES:
            raise ValidationFailed([("status", f"one of {', '.join(STATUSES)}")])
        if not 1 <= limit <= 1000:
            raise ValidationFailed([("limit", "between 1 and 1000")])
        where, params = ["subscription_id = ?"], [subscription_id]
        with self._read() as cursor:
            if after is not None:
                row = self._execute(cursor, "SELECT position, idx FROM {webhook_messages} "
                                            "WHERE id = ? AND subscription_id = ?",
                                    (after, subscription_id)).fetchone()
                if row is None:
                    raise ValidationFailed([("after", f"no message {after} of this webhook")])
                where.append("(position > ? OR (position = ? AND idx > ?))")
                params += [row["position"], row["position"], row["idx"]]
            if status is not None:
                where.append("status = ?")
                params.append(status)
            messages = self._execute(
                cursor, "SELECT id, type, contract_id, sequence, status, created_at, "
                        "next_attempt_at FROM {webhook_messages} WHERE " + " AND ".join(where)
                        + " ORDER BY position, idx LIMIT ?", [*params, limit]).fetchall()
            attempts = self._attempts_of(cursor, [row["id"] for row in messages])
        return [{
            "id": row["id"], "type": row["type"], "contract_id": row["contract_id"],
            "sequence": int(row["sequence"]), "status": row["status"],
            "created_at": _iso(row["created_at"]),
            "next_attempt_at": _iso(row["next_attempt_at"]) if row["status"] == PENDING else None,
            "attempts": attempts.get(row["id"], []),
        } for row in messages]

    def _attempts_of(self, cursor: Any, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        if not ids:
            return found
        marks = ", ".join("?" for _ in ids)
        for row in self._execute(
            cursor, "SELECT message_id, attempt, at, status_code, duration_ms, error, response "
                    "FROM {webhook_attempts} WHERE message_id IN (" + marks + ") "
                    "ORDER BY message_id, attempt", ids,
        ).fetchall():
            found.setdefault(row["message_id"], []).append({
                "attempt": int(row["attempt"]), "at": _iso(row["at"]),
                "status_code": row["status_code"], "duration_ms": float(row["duration_ms"]),
                "error": row["error"], "response": row["response"],
            })
        return found

    def redeliver(self, subscription_id: str, message_id: str, now: datetime) -> bool:
        """Send a message again, due now, with its id and its attempt log.

        A ``failed`` or ``delivered`` message becomes ``pending`` with a fresh
        retry schedule; a pending one stays as it is.  ``False`` when the
        subscription has no such message.
        """
        with self._write() as cursor:
            changed = self._execute(
                cursor, "UPDATE {webhook_messages} SET status = 'pending', next_attempt_at = ?, "
                        "round_attempts = 0, finished_at = NULL WHERE id = ? "
                        "AND subscription_id = ? AND status <> 'pending'",
                (epoch(now), message_id, subscription_id)).rowcount
            if changed:
                return True
            row = self._execute(cursor, "SELECT 1 AS found FROM {webhook_messages} WHERE id = ? "
                                        "AND subscription_id = ?",
                                (message_id, subscription_id)).fetchone()
        return row is not None

    def recover(self, subscription_id: str, since: datetime, now: datetime) -> int:
        """Every ``failed`` message of the subscription created at or after ``since`` (its
        event's time) is sent again; answers how many."""
        with self._write() as cursor:
            changed = self._execute(
                cursor, "UPDATE {webhook_messages} SET status = 'pending', next_attempt_at = ?, "
                        "round_attempts = 0, finished_at = NULL WHERE subscription_id = ? "
                        "AND status = 'failed' AND created_at >= ?",
                (epoch(now), subscription_id, epoch(since))).rowcount
        return int(changed)

    def counts(self, subscription_id: str | None = None) -> dict[str, int]:
        """How many messages are in each status (all subscriptions, or one)."""
        where, params = ("WHERE subscription_id = ? ", [subscription_id]) \
            if subscription_id else ("", [])
        with self._read() as cursor:
            rows = self._execute(cursor, "SELECT status, COUNT(*) AS n FROM {webhook_messages} "
                                 + where + "GROUP BY status", params).fetchall()
        return {status: 0 for status in STATUSES} | {row["status"]: int(row["n"]) for row in rows}


_SET_STATE = ("UPDATE {webhook_messages} SET status = ?, round_attempts = ?, "
              "next_attempt_at = ?, finished_at = ?, last_error = ? WHERE id = ?")
_FENCE = (" AND EXISTS (SELECT 1 FROM {webhook_lanes} WHERE subscription_id = ? "
          "AND contract_id = ? AND lease_token = ?)")
"""A run that lost its lane's lease logs its attempt, but no longer sets the message's state:
the run that took the lane over does."""


def _state_row(a: Attempt) -> tuple[Any, ...]:
    return (a.status, a.round_attempts, a.next_attempt_at,
            None if a.status == PENDING else a.at,
            None if a.status == DELIVERED else (a.reason or a.error or f"status {a.status_code}"),
            a.message_id)


def _fence_row(lease: Lease) -> tuple[str, str, str]:
    return (lease.lane.subscription_id, lease.lane.contract_id, lease.token)


class _Moved(Exception):
    """The dispatcher's position moved under this batch: nothing was written."""
