"""The outbox's values: messages before and after they are stored, lanes, leases, attempts.

Times are UTC epoch seconds (floats) in the tables; ``epoch`` and ``moment``
convert to and from the ``datetime`` values the parts take and give.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID, uuid5

from domain.webhooks import Message
from workflows.messaging import WEBHOOKS

MESSAGE_NAMESPACE = UUID("8d6a3f0e-2c41-5b7e-9f13-6c0a4e2b7d51")
DISPATCHER = WEBHOOKS
"""The dispatcher's name in ``webhook_dispatch`` (its position in the log)."""
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
STATUSES = (PENDING, DELIVERED, FAILED)
ENDPOINT_DISABLED = "endpoint disabled"


def message_id(subscription_id: str, position: int, index: int) -> str:
    """The ``webhook-id``: the same (subscription, event position, index in the event) → same id."""
    return "msg_" + uuid5(MESSAGE_NAMESPACE, f"{subscription_id}:{position}:{index}").hex


def epoch(moment: datetime) -> float:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def moment(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


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
