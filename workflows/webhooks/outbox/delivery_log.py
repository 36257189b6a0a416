"""The delivery log the API shows, and what the API does to it: redeliver, recover, count."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.errors import ValidationFailed
from workflows.webhooks.outbox.records import PENDING, STATUSES, epoch, moment
from workflows.webhooks.outbox.tables import OutboxTables


def _iso(seconds: float | None) -> str | None:
    when = moment(seconds)
    return None if when is None else when.isoformat()


class DeliveryLog:
    """A subscription's messages with their attempts; sending them again."""

    def __init__(self, tables: OutboxTables) -> None:
        self.tables = tables

    def deliveries(self, subscription_id: str, *, status: str | None = None, limit: int = 100,
                   after: str | None = None) -> list[dict[str, Any]]:
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
        with self.tables.read() as cursor:
            if after is not None:
                row = self.tables.execute(cursor, "SELECT position, idx FROM {webhook_messages} "
                                                  "WHERE id = ? AND subscription_id = ?",
                                                  (after, subscription_id)).fetchone()
                if row is None:
                    raise ValidationFailed([("after", f"no message {after} of this webhook")])
                where.append("(position > ? OR (position = ? AND idx > ?))")
                params += [row["position"], row["position"], row["idx"]]
            if status is not None:
                where.append("status = ?")
                params.append(status)
            messages = self.tables.execute(
                cursor,
                "SELECT id, type, contract_id, sequence, status, created_at, "
                "next_attempt_at FROM {webhook_messages} WHERE "
                + " AND ".join(where)
                + " ORDER BY position, idx LIMIT ?",
                [*params, limit],
            ).fetchall()
            attempts = self._attempts_of(cursor, [row["id"] for row in messages])
        return [
            {
                "id": row["id"],
                "type": row["type"],
                "contract_id": row["contract_id"],
                "sequence": int(row["sequence"]),
                "status": row["status"],
                "created_at": _iso(row["created_at"]),
                "next_attempt_at": _iso(row["next_attempt_at"])
                if row["status"] == PENDING
                else None,
                "attempts": attempts.get(row["id"], []),
            }
            for row in messages
        ]

    def _attempts_of(self, cursor: Any, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        if not ids:
            return found
        marks = ", ".join("?" for _ in ids)
        for row in self.tables.execute(
            cursor, "SELECT message_id, attempt, at, status_code, duration_ms, error, response "
                    "FROM {webhook_attempts} WHERE message_id IN (" + marks + ") "
                    "ORDER BY message_id, attempt", ids).fetchall():
            found.setdefault(row["message_id"], []).append(
                {
                    "attempt": int(row["attempt"]),
                    "at": _iso(row["at"]),
                    "status_code": row["status_code"],
                    "duration_ms": float(row["duration_ms"]),
                    "error": row["error"],
                    "response": row["response"],
                }
            )
        return found

    def redeliver(self, subscription_id: str, message_id: str, now: datetime) -> bool:
        """Send a message again, due now, with its id and its attempt log.

        A ``failed`` or ``delivered`` message becomes ``pending`` with a fresh
        retry schedule; a pending one stays as it is.  ``False`` when the
        subscription has no such message.
        """
        with self.tables.write() as cursor:
            changed = self.tables.execute(
                cursor, "UPDATE {webhook_messages} SET status = 'pending', next_attempt_at = ?, "
                        "round_attempts = 0, finished_at = NULL WHERE id = ? "
                        "AND subscription_id = ? AND status <> 'pending'",
                        (epoch(now), message_id, subscription_id)).rowcount
            if changed:
                return True
            row = self.tables.execute(
                cursor,
                "SELECT 1 AS found FROM {webhook_messages} WHERE id = ? AND subscription_id = ?",
                (message_id, subscription_id),
            ).fetchone()
        return row is not None

    def recover(self, subscription_id: str, since: datetime, now: datetime) -> int:
        """Every ``failed`` message of the subscription created at or after ``since`` (its
        event's time) is sent again; answers how many."""
        with self.tables.write() as cursor:
            changed = self.tables.execute(
                cursor, "UPDATE {webhook_messages} SET status = 'pending', next_attempt_at = ?, "
                        "round_attempts = 0, finished_at = NULL WHERE subscription_id = ? "
                        "AND status = 'failed' AND created_at >= ?",
                        (epoch(now), subscription_id, epoch(since))).rowcount
        return int(changed)

    def counts(self, subscription_id: str | None = None) -> dict[str, int]:
        """How many messages are in each status (all subscriptions, or one)."""
        where, params = (
            ("WHERE subscription_id = ? ", [subscription_id]) if subscription_id else ("", [])
        )
        with self.tables.read() as cursor:
            rows = self.tables.execute(
                cursor,
                "SELECT status, COUNT(*) AS n FROM {webhook_messages} " + where + "GROUP BY status",
                params,
            ).fetchall()
        return {status: 0 for status in STATUSES} | {row["status"]: int(row["n"]) for row in rows}
