"""Idempotency keys that survive a restart.

A command sent with ``Idempotency-Key`` saves, in the same transaction as its
own events, a record named by (principal, key) holding the fingerprint of the
request and the id and version it produced.  A repeat finds the record and
answers as the first time; a repeat with another body is refused.  Nothing is
kept only in memory or Redis.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid5

from domain.chain import ChainedAggregate
from domain.organisations import Actor

IDEMPOTENCY_NAMESPACE = UUID("6f1d3a52-8c1e-4f57-9a55-2e0b7c4e9d11")


@dataclass(frozen=True)
class IdempotentRequest:
    """An ``Idempotency-Key`` and the fingerprint of the request that carried it."""

    key: str
    fingerprint: str

    @classmethod
    def of(cls, key: str, method: str, path: str, body: bytes) -> IdempotentRequest:
        digest = hashlib.sha256()
        for part in (method.upper().encode(), path.encode(), body):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
        return cls(key=key, fingerprint=digest.hexdigest())

    def record_id(self, principal_id: str) -> UUID:
        return uuid5(IDEMPOTENCY_NAMESPACE, f"{principal_id}\x00{self.key}")

    def derived_id(self, scope: UUID, principal_id: str) -> UUID:
        """An id for what the command creates, derived from the key (so a retry finds it)."""
        return uuid5(scope, f"{principal_id}\x00{self.key}")


class IdempotencyRecord(ChainedAggregate):
    if TYPE_CHECKING:  # set by the Kept event
        outcome: dict[str, Any]

    class Kept(ChainedAggregate.Created):
        def apply(self, record: IdempotencyRecord) -> None:
            record.outcome = dict(self.data)

    @classmethod
    def keep(
        cls,
        *,
        record_id: UUID,
        fingerprint: str,
        result: dict[str, Any],
        actor: Actor,
        at: datetime,
    ) -> IdempotencyRecord:
        data = {"fingerprint": fingerprint, **result}
        record: IdempotencyRecord = cls._start(
            cls.Kept, id=record_id, actor=actor, at=at, data=data
        )
        return record
