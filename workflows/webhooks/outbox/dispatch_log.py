"""The dispatcher's side of the outbox: its position in the log, and the messages it writes.

Sequences are allocated by ``write_dispatch`` in the same transaction that
moves the dispatcher's position (a compare-and-set on the old position), so a
batch is written once or not at all and a lane's ``sequence`` has no gaps.
Tests and tools may write messages without the dispatcher with ``append``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from domain.webhooks import message_body
from workflows.webhooks.outbox.records import (
    DISPATCHER,
    ENDPOINT_DISABLED,
    PENDING,
    Entry,
    Lane,
    epoch,
)
from workflows.webhooks.outbox.tables import OutboxTables


class DispatchLog:
    """How far the dispatcher has read the notification log, and the messages it wrote."""

    def __init__(self, tables: OutboxTables) -> None:
        self.tables = tables

    def position(self, name: str = DISPATCHER) -> int:
        """How far the dispatcher has read the notification log (0 before it starts)."""
        with self.tables.read() as cursor:
            row = self.tables.execute(
                cursor, "SELECT position FROM {webhook_dispatch} WHERE name = ?", (name,)
            ).fetchone()
        return int(row["position"]) if row else 0

    def write_dispatch(self, entries: Sequence[Entry], *, old_position: int, new_position: int,
                       now: datetime, name: str = DISPATCHER) -> list[Lane] | None:
        """Write a batch's messages and move the position from ``old_position``, atomically.

        Answers the lanes that received a pending message, or ``None`` when the
        position was no longer ``old_position`` (another dispatcher wrote this
        batch): then nothing is written.
        """
        try:
            with self.tables.write() as cursor:
                if old_position == 0:
                    self.tables.execute(cursor, "INSERT INTO {webhook_dispatch} (name, position) "
                                                "VALUES (?, 0) ON CONFLICT (name) DO NOTHING",
                                                (name,))
                moved = self.tables.execute(
                    cursor,
                    "UPDATE {webhook_dispatch} SET position = ? WHERE name = ? AND position = ?",
                    (new_position, name, old_position),
                ).rowcount
                if moved != 1:
                    raise _Moved  # rolls the transaction back
                return self._insert(cursor, entries, now)
        except _Moved:
            return None

    def append(self, entries: Sequence[Entry], now: datetime) -> list[Lane]:
        """Write messages without moving any position (tests, tools): sequences as usual."""
        with self.tables.write() as cursor:
            # A write first: SQLite then waits for the write lock instead of refusing to
            # upgrade the read of the lanes' sequences when another process wrote meanwhile.
            self.tables.execute(
                cursor, "UPDATE {webhook_dispatch} SET position = position WHERE name = ?",
                        (DISPATCHER,))
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
            rows.append(
                (
                    entry.id,
                    entry.subscription_id,
                    entry.contract_id,
                    last[lane],
                    entry.position,
                    entry.index,
                    entry.message.type,
                    body,
                    entry.status,
                    created if entry.status == PENDING else None,
                    epoch(entry.timestamp),
                    None if entry.status == PENDING else created,
                    None if entry.status == PENDING else ENDPOINT_DISABLED,
                )
            )
            if entry.status == PENDING:
                pending.add(lane)
        cursor.executemany(
            self.tables.sql(
                "INSERT INTO {webhook_messages} (id, subscription_id, contract_id, sequence, "
                "position, idx, type, body, status, next_attempt_at, created_at, finished_at, "
                "last_error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            rows,
        )
        cursor.executemany(
            self.tables.sql(
                "INSERT INTO {webhook_lanes} (subscription_id, contract_id, last_sequence) "
                "VALUES (?, ?, ?) ON CONFLICT (subscription_id, contract_id) "
                "DO UPDATE SET last_sequence = excluded.last_sequence"
            ),
            [(lane.subscription_id, lane.contract_id, last[lane]) for lane in lanes],
        )
        return [lane for lane in lanes if lane in pending]

    def _last_sequences(self, cursor: Any, lanes: Sequence[Lane]) -> dict[Lane, int]:
        last = dict.fromkeys(lanes, 0)
        wanted = set(lanes)
        subscriptions = sorted({lane.subscription_id for lane in lanes})
        for start in range(0, len(subscriptions), 500):
            chunk = subscriptions[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            for row in self.tables.execute(
                cursor, "SELECT subscription_id, contract_id, last_sequence FROM "
                        "{webhook_lanes} WHERE subscription_id IN (" + marks + ")",
                        chunk).fetchall():
                lane = Lane(row["subscription_id"], row["contract_id"])
                if lane in wanted:
                    last[lane] = int(row["last_sequence"])
        return last


class _Moved(Exception):
    """The dispatcher's position moved under this batch: nothing was written."""
