"""The attempt log: every attempt recorded, its message's state set, the endpoint's failure run.

Attempts are numbered by the database (``record_groups``), so none is lost to
a duplicate number; delivery threads of one process write their attempts
together (``workflows.webhooks.delivery.GroupRecorder``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from workflows.webhooks.outbox.records import DELIVERED, PENDING, Attempt, Lease, Record, epoch
from workflows.webhooks.outbox.tables import OutboxTables


class AttemptLog:
    """Records attempts and what they make of their messages and endpoints."""

    def __init__(self, tables: OutboxTables) -> None:
        self.tables = tables

    def record_attempt(self, attempt: Attempt, lease: Lease | None = None, *,
                       renew_seconds: float = 0.0, endpoint_failing: bool = True) -> float | None:
        """``record_attempts`` for one attempt."""
        return self.record_attempts(
            [attempt], lease, renew_seconds=renew_seconds, endpoint_failing=endpoint_failing
        )

    def record_attempts(self, attempts: Sequence[Attempt], lease: Lease | None = None, *,
                        renew_seconds: float = 0.0, endpoint_failing: bool = True) -> float | None:
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
        with self.tables.write() as cursor:
            attempts = [a for record in records for a in record.attempts]
            numbers = self._number(cursor, attempts)
            cursor.executemany(
                self.tables.sql(
                    "INSERT INTO {webhook_attempts} (message_id, attempt, at, status_code, "
                    "duration_ms, error, response) VALUES (?, ?, ?, ?, ?, ?, ?)"
                ),
                [
                    (a.message_id, number, a.at, a.status_code, a.duration_ms, a.error, a.response)
                    for a, number in zip(attempts, numbers, strict=True)
                ],
            )
            for fenced, group in (
                (True, [r for r in records if r.lease is not None]),
                (False, [r for r in records if r.lease is None]),
            ):
                if group:
                    cursor.executemany(
                        self.tables.sql(_SET_STATE + (_FENCE if fenced else "")),
                        [
                            _state_row(a) + (_fence_row(r.lease) if r.lease is not None else ())
                            for r in group
                            for a in r.attempts
                        ],
                    )
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
        cursor.executemany(
            self.tables.sql("UPDATE {webhook_messages} SET attempts = attempts + 1 WHERE id = ?"),
            [(i,) for i in ids],
        )
        marks = ", ".join("?" for _ in set(ids))
        counts = {
            row["id"]: int(row["attempts"])
            for row in self.tables.execute(
                cursor, "SELECT id, attempts FROM {webhook_messages} WHERE id IN (" + marks + ")",
                        sorted(set(ids))).fetchall()
        }
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
            self.tables.execute(
                cursor,
                "UPDATE {webhook_lanes} SET leased_until = ? WHERE "
                "subscription_id = ? AND contract_id = ? AND lease_token = ?",
                (
                    last.at + record.renew_seconds,
                    lease.lane.subscription_id,
                    lease.lane.contract_id,
                    lease.token,
                ),
            )
        subscription_id = self._subscription_of(cursor, last.message_id, lease)
        if record.endpoint_failing and any(a.status == DELIVERED for a in record.attempts):
            self.tables.execute(
                cursor,
                "UPDATE {webhook_endpoints} SET failing_since = NULL WHERE subscription_id = ?",
                (subscription_id,),
            )
        if last.status == DELIVERED:
            return None
        self.tables.execute(cursor, "INSERT INTO {webhook_endpoints} (subscription_id, "
                                    "failing_since) VALUES (?, ?) ON CONFLICT (subscription_id) "
                                    "DO UPDATE SET failing_since = COALESCE("
                                    "{webhook_endpoints}.failing_since, excluded.failing_since)",
                                    (subscription_id, last.at))
        row = self.tables.execute(
            cursor, "SELECT failing_since FROM {webhook_endpoints} WHERE subscription_id = ?",
                    (subscription_id,)).fetchone()
        return float(row["failing_since"])

    def _subscription_of(self, cursor: Any, message_id: str, lease: Lease | None) -> str:
        if lease is not None:
            return lease.lane.subscription_id
        row = self.tables.execute(
            cursor, "SELECT subscription_id FROM {webhook_messages} WHERE id = ?", (message_id,)
        ).fetchone()
        return str(row["subscription_id"])

    def fail_pending(self, subscription_id: str, reason: str, now: datetime) -> int:
        """An endpoint was disabled: its pending messages become ``failed`` with ``reason``
        (``recover`` sends them again once it is re-enabled); its failure run ends."""
        at = epoch(now)
        with self.tables.write() as cursor:
            failed = self.tables.execute(
                cursor, "UPDATE {webhook_messages} SET status = 'failed', finished_at = ?, "
                        "next_attempt_at = NULL, last_error = ? WHERE subscription_id = ? "
                        "AND status = 'pending'", (at, reason, subscription_id)).rowcount
            self.tables.execute(
                cursor,
                "UPDATE {webhook_endpoints} SET failing_since = NULL WHERE subscription_id = ?",
                (subscription_id,),
            )
        return int(failed)


_SET_STATE = (
    "UPDATE {webhook_messages} SET status = ?, round_attempts = ?, "
    "next_attempt_at = ?, finished_at = ?, last_error = ? WHERE id = ?"
)
_FENCE = (
    " AND EXISTS (SELECT 1 FROM {webhook_lanes} WHERE subscription_id = ? "
    "AND contract_id = ? AND lease_token = ?)"
)
"""A run that lost its lane's lease logs its attempt, but no longer sets the message's state:
the run that took the lane over does."""


def _state_row(a: Attempt) -> tuple[Any, ...]:
    return (
        a.status,
        a.round_attempts,
        a.next_attempt_at,
        None if a.status == PENDING else a.at,
        None if a.status == DELIVERED else (a.reason or a.error or f"status {a.status_code}"),
        a.message_id,
    )


def _fence_row(lease: Lease) -> tuple[str, str, str]:
    return (lease.lane.subscription_id, lease.lane.contract_id, lease.token)
