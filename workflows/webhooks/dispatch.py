"""The webhook dispatcher: contract events in the log → outbox messages (SPEC §8, issue 5).

``Dispatcher.run`` reads the notification log after the outbox's stored
position, in batches.  For each contract event that an enabled subscription
might receive it rebuilds the contract before and after the event — from the
states it keeps in memory (``before`` a copy, ``after`` the event applied),
loading the contract at ``version - 1`` from the repository only on a miss —
asks ``domain.webhooks.messages_for`` for the event's messages and gives each
one to every subscription whose filter receives it and which existed before
the event (its creation is earlier in the log).  A batch's messages, their
lane sequences and the new position are written in one transaction
(``DispatchLog.write_dispatch``), so a dispatch that runs twice, or on two
processes at once, writes every message once: the loser's compare-and-set
fails and it writes nothing.

A disabled subscription's messages are written as ``failed`` ("endpoint
disabled"), with their sequences, so that nothing is lost: once the endpoint
is re-enabled, ``recover?since=`` sends them.  Deleted subscriptions are given
nothing.  Redis is not used here: the position and the messages live in the event store's database.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification

from domain.contract import ServiceContract
from domain.webhooks import Message, SubscriptionFilter, messages_for
from workflows import directory, subscriptions
from workflows.explanations import explained
from workflows.ledger import Ledger, utc_now
from workflows.projections import contract_topics
from workflows.store import position_of
from workflows.webhooks.outbox import Outbox
from workflows.webhooks.outbox.records import FAILED, PENDING, Entry, Lane


@dataclass(frozen=True)
class Subscriber:
    """What the dispatcher needs of a subscription."""

    id: str
    filter: SubscriptionFilter
    since: int
    """The log position of its creation: it receives only later events."""
    enabled: bool = True
    """A disabled subscription's messages are written as failed, to be recovered."""


@dataclass(frozen=True)
class DispatchReport:
    processed: int
    """Notifications read."""
    written: int
    """Messages written to the outbox."""
    lanes: list[Lane]
    """Lanes that received a pending message (deliveries to start)."""
    complete: bool
    """False when the time budget ran out with events left to read."""


@dataclass
class Dispatcher:
    """Turns the log into outbox rows; one per process (it keeps contract states warm)."""

    app: Ledger
    outbox: Outbox
    batch_size: int = 1000
    cache_size: int = 1000
    clock: Callable[[], datetime] = utc_now
    topics: list[str] = field(default_factory=contract_topics)

    def __post_init__(self) -> None:
        self._states: OrderedDict[UUID, ServiceContract] = OrderedDict()
        self._created: dict[str, int] = {}
        self._lock = threading.Lock()

    def run(self, budget_seconds: float | None = None,
            woken: Callable[[], bool] | None = None) -> DispatchReport:
        """Dispatch batches until the log's head (or the budget) is reached.

        ``woken`` takes the wake flag and says whether it was set; it is called
        before the first pass and whenever the head is reached, so a commit
        that woke the dispatcher during a pass is read by another pass.  A
        second thread of this process finds the dispatcher busy and leaves at
        once (the running one sees its wake flag).
        """
        if not self._lock.acquire(blocking=False):
            return DispatchReport(0, 0, [], complete=True)
        try:
            deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
            processed, written, lanes = 0, 0, dict[Lane, None]()
            if woken is not None:
                woken()
            while True:
                batch = self.dispatch_batch()
                if batch is None:
                    if woken is not None and woken():
                        continue
                    return DispatchReport(processed, written, list(lanes), complete=True)
                processed += batch.processed
                written += batch.written
                lanes.update(dict.fromkeys(batch.lanes))
                if deadline is not None and time.monotonic() > deadline:
                    return DispatchReport(processed, written, list(lanes), complete=False)
        finally:
            self._lock.release()

    def dispatch_batch(self) -> DispatchReport | None:
        """One batch after the stored position; ``None`` when the log has nothing new."""
        position = self.outbox.dispatch.position()
        head = self.app.head_position()
        if head <= position:
            return None
        notifications = self.app.recorder.select_notifications(
            start=position + 1, limit=self.batch_size, stop=head, topics=self.topics,
        )
        new_position = notifications[-1].id if len(notifications) == self.batch_size else head
        subscribers = self.subscribers()
        entries: list[Entry] = []
        names: dict[str, str] = {}  # organisations' names, read once per batch if needed
        if subscribers:
            for notification in notifications:
                entries.extend(self.entries_for(notification, subscribers, names))
        lanes = self.outbox.dispatch.write_dispatch(entries, old_position=position,
                                           new_position=new_position, now=self.clock())
        if lanes is None:  # another dispatcher wrote this batch: carry on after it
            return DispatchReport(0, 0, [], complete=True)
        return DispatchReport(len(notifications), len(entries), lanes, complete=True)

    def subscribers(self) -> list[Subscriber]:
        """The subscriptions not deleted, with the log position of their creation."""
        found = []
        for subscription in subscriptions.listed_subscriptions(self.app):
            key = str(subscription.id)
            if key not in self._created:
                self._created[key] = position_of(self.app.recorder, subscription.id, 1)
            found.append(Subscriber(key, subscription.filter(), self._created[key],
                                    enabled=subscription.enabled))
        return found

    def entries_for(self, notification: Notification, subscribers: list[Subscriber],
                    names: dict[str, str]) -> list[Entry]:
        """The outbox rows one contract event gives (none when nobody may be told).

        ``names`` is filled with the organisations' names the first time a conflict
        message needs them, and shared by the rest of the batch."""
        contract_id = str(notification.originator_id)
        candidates = [s for s in subscribers if s.since < notification.id and (
            s.filter.contracts is None or contract_id in s.filter.contracts)]
        if not candidates:
            return []
        event: Any = self.app.mapper.to_domain_event(notification)
        before, after = self._advance(notification, event)
        entries: list[Entry] = []
        for index, message in enumerate(messages_for(event, before, after)):
            if message.type.startswith("conflict."):  # explained as the views explain it
                if not names:
                    names.update(directory.organisation_names(self.app))
                message = Message(message.type, explained(message.data, names))
            entries.extend(
                Entry(subscriber.id, message, notification.id, index, event.timestamp,
                      status=PENDING if subscriber.enabled else FAILED)
                for subscriber in candidates if subscriber.filter.receives(message.type, after)
            )
        return entries

    def _advance(
        self, notification: Notification, event: Any,
    ) -> tuple[ServiceContract | None, ServiceContract]:
        """The contract before the event (a copy) and after it (the kept state, advanced)."""
        contract_id = UUID(str(notification.originator_id))
        version = notification.originator_version
        state = self._states.pop(contract_id, None)
        if state is None or state.version != version - 1:
            state = None if version == 1 else self._load(contract_id, version - 1)
        before = copy.deepcopy(state) if state is not None else None
        mutated = event.mutate(state)
        after = mutated if mutated is not None else state
        assert isinstance(after, ServiceContract)
        self._states[contract_id] = after
        while len(self._states) > self.cache_size:
            self._states.popitem(last=False)
        return before, after

    def _load(self, contract_id: UUID, version: int) -> ServiceContract:
        loaded: Any = self.app.repository.get(contract_id, version=version)
        assert isinstance(loaded, ServiceContract)
        return loaded
