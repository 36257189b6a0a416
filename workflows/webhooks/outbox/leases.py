"""Lanes and their leases: who delivers a lane now, what it sends next, which lanes are due.

A lane is one (subscription, contract) pair; one in-flight message per lane
keeps the order.  A delivery run takes the lane's lease (a token and a time)
and every state change it makes is fenced by that token (``attempts``).
"""

from __future__ import annotations

import secrets
from datetime import datetime

from workflows.webhooks.outbox.records import Lane, Lease, Stored, epoch
from workflows.webhooks.outbox.tables import OutboxTables


class LaneLeases:
    """Take, renew and release lanes; list a lane's pending messages and the due lanes."""

    def __init__(self, tables: OutboxTables) -> None:
        self.tables = tables

    def lease(self, lane: Lane, now: datetime, *, seconds: float, cap: int) -> Lease | None:
        """Take the lane for ``seconds`` unless it is held, or its subscription already
        holds ``cap`` live leases (a slow endpoint holds at most ``cap`` workers)."""
        at = epoch(now)
        token = secrets.token_hex(8)
        with self.tables.write() as cursor:
            # First a write: it takes SQLite's write lock and, on PostgreSQL, locks the
            # endpoint's row, so two runs cannot both count below the cap.
            self.tables.execute(
                cursor, "INSERT INTO {webhook_endpoints} (subscription_id) VALUES (?) "
                        "ON CONFLICT (subscription_id) DO UPDATE SET "
                        "failing_since = {webhook_endpoints}.failing_since",
                        (lane.subscription_id,))
            row = self.tables.execute(
                cursor, "SELECT failing_since FROM {webhook_endpoints} WHERE subscription_id = ?",
                        (lane.subscription_id,)).fetchone()
            held = self.tables.execute(
                cursor, "SELECT COUNT(*) AS n FROM {webhook_lanes} WHERE subscription_id = ? "
                        "AND contract_id <> ? AND leased_until > ?",
                        (lane.subscription_id, lane.contract_id, at)).fetchone()
            if int(held["n"]) >= cap:
                return None
            taken = self.tables.execute(
                cursor, "UPDATE {webhook_lanes} SET leased_until = ?, lease_token = ? "
                        "WHERE subscription_id = ? AND contract_id = ? "
                        "AND (leased_until IS NULL OR leased_until <= ?)",
                        (at + seconds, token, lane.subscription_id, lane.contract_id, at)).rowcount
        if taken != 1:
            return None
        return Lease(lane, token, at + seconds, row["failing_since"] if row else None)

    def release(self, lease: Lease) -> None:
        with self.tables.write() as cursor:
            self.tables.execute(
                cursor, "UPDATE {webhook_lanes} SET leased_until = NULL, "
                        "lease_token = NULL WHERE subscription_id = ? "
                        "AND contract_id = ? AND lease_token = ?",
                        (lease.lane.subscription_id, lease.lane.contract_id, lease.token))

    def renew(self, lease: Lease, now: datetime, seconds: float) -> Lease | None:
        """Extend a lease still held; ``None`` when it lapsed and another run took the lane."""
        until = epoch(now) + seconds
        with self.tables.write() as cursor:
            kept = self.tables.execute(
                cursor,
                "UPDATE {webhook_lanes} SET leased_until = ? WHERE subscription_id = ? "
                "AND contract_id = ? AND lease_token = ?",
                (until, lease.lane.subscription_id, lease.lane.contract_id, lease.token),
            ).rowcount
        return Lease(lease.lane, lease.token, until, lease.failing_since) if kept == 1 else None

    def lane_messages(self, lane: Lane, limit: int = 50) -> list[Stored]:
        """The lane's pending messages in ``sequence`` order (the first is the one to send)."""
        with self.tables.read() as cursor:
            rows = self.tables.execute(
                cursor, "SELECT id, sequence, body, attempts, round_attempts, next_attempt_at "
                        "FROM {webhook_messages} WHERE status = 'pending' AND subscription_id = ? "
                        "AND contract_id = ? ORDER BY sequence LIMIT ?",
                        (lane.subscription_id, lane.contract_id, limit)).fetchall()
        return [
            Stored(
                row["id"],
                int(row["sequence"]),
                bytes(row["body"]),
                int(row["attempts"]),
                int(row["round_attempts"]),
                float(row["next_attempt_at"]),
            )
            for row in rows
        ]

    def due_lanes(self, now: datetime, limit: int = 1000, cap: int | None = None) -> list[Lane]:
        """Lanes whose first pending message is due and which no live lease holds.

        With ``cap``, a subscription's lanes are listed only up to what its
        cap of leased lanes leaves free (runs for the others would be refused).
        """
        at = epoch(now)
        with self.tables.read() as cursor:
            held: dict[str, int] = {}
            if cap is not None:
                held = {
                    row["subscription_id"]: int(row["n"])
                    for row in self.tables.execute(
                        cursor, "SELECT subscription_id, COUNT(*) AS n FROM {webhook_lanes} "
                                "WHERE leased_until > ? GROUP BY subscription_id", (at,)).fetchall()
                }
            rows = self.tables.execute(
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
                "ORDER BY m.next_attempt_at LIMIT ?",
                (at, at, limit),
            ).fetchall()
        lanes = []
        for row in rows:
            subscription_id = row["subscription_id"]
            if cap is not None:
                if held.get(subscription_id, 0) >= cap:
                    continue
                held[subscription_id] = held.get(subscription_id, 0) + 1
            lanes.append(Lane(subscription_id, row["contract_id"]))
        return lanes
