"""The contract-views projection: event store → conflict, priority and board views in Redis.

The log is the truth and tasks are only hints.  ``ContractViews.catch_up``
reads the notification log after the projection's stored position in
batches, brings each touched contract's aggregate to the last version in the
batch (the aggregate folds its own conflicts, so replay and the live view
agree by construction), and commits the new views and the new position in
one atomic, position-guarded step (``ViewStore.commit``).  A repeated,
concurrent or killed run therefore leaves exactly what a clean rebuild would.
One consumer runs at a time, under a Redis lock; a second one simply leaves.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from eventsourcing.utils import get_topic

from domain.chain import ChainedAggregate
from domain.contract import ServiceContract
from domain.priorities import priority_view
from workflows import views
from workflows.application import Threadneedle
from workflows.views import ViewStore

SHANGHAI = ZoneInfo("Asia/Shanghai")
NAME = "contracts"


def contract_topics() -> list[str]:
    """The topics of every event of a service contract (the log is filtered by them)."""
    classes = [
        value for value in vars(ServiceContract).values()
        if isinstance(value, type) and issubclass(value, ChainedAggregate.Event)
    ]
    return sorted({get_topic(cls) for cls in classes})


def today_in_shanghai(now: datetime) -> date:
    return now.astimezone(SHANGHAI).date()


def contract_conflicts(contract: ServiceContract) -> dict[str, dict[str, Any]]:
    """The conflict view the aggregate folds as it applies its events."""
    return dict(getattr(contract, "conflicts", {}))


def conflict_document(contract: ServiceContract, position: int) -> dict[str, Any]:
    return {
        "contract_id": str(contract.id),
        "position": position,
        "version": contract.version,
        "conflicts": list(contract_conflicts(contract).values()),
    }


def priority_document(
    contract: ServiceContract, reference_date: date, position: int
) -> dict[str, Any]:
    view = priority_view(contract.terms, contract.active_directives(), reference_date)
    return {"contract_id": str(contract.id), "position": position,
            "version": contract.version, **view}


def board_item(contract: ServiceContract, conflict: dict[str, Any]) -> dict[str, Any]:
    return {**conflict, "contract_id": str(contract.id), "contract_code": contract.code}


def due_epoch(conflict: dict[str, Any]) -> float:
    return datetime.fromisoformat(conflict["due"]).timestamp()


@dataclass
class ContractViews:
    """Keeps the per-contract conflict and priority views and the open-conflict board."""

    app: Threadneedle
    store: ViewStore
    clock: Callable[[], datetime]
    batch_size: int = 1000
    cache_size: int = 2000
    lock_seconds: float = 60.0

    def __post_init__(self) -> None:
        self.topics = contract_topics()
        self._aggregates: OrderedDict[UUID, ServiceContract] = OrderedDict()

    # --- running ------------------------------------------------------------

    def run(self) -> int:
        """Catch the live view (and a rebuild, if one is open) up with the log."""
        processed = 0
        with self._lock() as held:
            if not held:
                return 0
            while True:
                self.store.client.delete(views.wake_key(NAME))
                processed += self.catch_up(self.store.current())
                building = self.store.building()
                if building:
                    processed += self.catch_up(building)
                    if self.store.position(building) >= self.app.head_position():
                        self.store.switch(building)
                if not self.store.client.exists(views.wake_key(NAME)):
                    return processed

    def catch_up(self, generation: str, *, max_batches: int | None = None) -> int:
        """Project batches until the generation's position reaches the head of the log."""
        processed, batches = 0, 0
        while max_batches is None or batches < max_batches:
            done = self.project_batch(generation)
            if done is None:
                return processed
            processed += done
            batches += 1
        return processed

    def project_batch(self, generation: str) -> int | None:
        """Project the next batch; ``None`` when there was nothing to do."""
        position = self.store.position(generation)
        head = self.app.head_position()
        if head <= position:
            return None
        notifications = self.app.recorder.select_notifications(
            start=position + 1, limit=self.batch_size, stop=head, topics=self.topics,
        )
        new_position = notifications[-1].id if len(notifications) == self.batch_size else head
        last_versions: dict[UUID, int] = {}
        for notification in notifications:
            last_versions[notification.originator_id] = notification.originator_version
        reference = today_in_shanghai(self.clock())
        ops: list[list[Any]] = []
        for contract_id, version in last_versions.items():
            contract = self.contract_at(contract_id, version)
            ops.extend(self.view_ops(generation, contract, reference, new_position))
        self.store.commit(generation, position, new_position, ops)
        return len(notifications)

    def refresh(self) -> int:
        """Recompute every priority view against today's date (urgency changes daily)."""
        with self._lock() as held:
            if not held:
                return 0
            generation = self.store.current()
            position = self.store.position(generation)
            reference = today_in_shanghai(self.clock())
            ops: list[list[Any]] = []
            members = self.store.client.smembers(views.contracts_key(generation))
            for raw in members:
                contract_id = raw.decode() if isinstance(raw, bytes) else raw
                current = self.store.read_json(views.conflicts_key(generation, contract_id))
                if current is None:
                    continue
                contract = self.contract_at(UUID(contract_id), current["version"])
                document = priority_document(contract, reference, position)
                ops.append(["set", views.priorities_key(generation, contract_id),
                            _json(document)])
            self.store.commit(generation, position, position, ops)
            return len(ops)

    # --- views ------------------------------------------------------------------

    def view_ops(
        self, generation: str, contract: ServiceContract, reference: date, position: int
    ) -> Iterator[list[Any]]:
        contract_id = str(contract.id)
        yield ["set", views.conflicts_key(generation, contract_id),
               _json(conflict_document(contract, position))]
        yield ["set", views.priorities_key(generation, contract_id),
               _json(priority_document(contract, reference, position))]
        yield ["sadd", views.contracts_key(generation), contract_id]
        for conflict in contract_conflicts(contract).values():
            member = f"{contract_id}:{conflict['id']}"
            if conflict["status"] == "open":
                yield ["zadd", views.board_key(generation), due_epoch(conflict), member]
                yield ["hset", views.board_items_key(generation), member,
                       _json(board_item(contract, conflict))]
            else:
                yield ["zrem", views.board_key(generation), member]
                yield ["hdel", views.board_items_key(generation), member]

    def contract_at(self, contract_id: UUID, version: int) -> ServiceContract:
        """The contract at ``version``: fast-forwarded from memory, else loaded (snapshots)."""
        cached = self._aggregates.get(contract_id)
        if cached is not None and cached.version <= version:
            if cached.version < version:
                for event in self.app.repository.event_store.get(
                    contract_id, gt=cached.version, lte=version
                ):
                    event.mutate(cached)
            contract = cached
        else:
            loaded = self.app.repository.get(contract_id, version=version)
            assert isinstance(loaded, ServiceContract)
            contract = loaded
        self._aggregates[contract_id] = contract
        self._aggregates.move_to_end(contract_id)
        while len(self._aggregates) > self.cache_size:
            self._aggregates.popitem(last=False)
        return contract

    # --- one consumer at a time ---------------------------------------------------

    @contextmanager
    def _lock(self) -> Iterator[bool]:
        client, key, token = self.store.client, views.lock_key(NAME), secrets.token_hex(8)
        held = bool(client.set(key, token, nx=True, px=int(self.lock_seconds * 1000)))
        try:
            yield held
        finally:
            if held:
                client.eval(_RELEASE, 1, key, token)

    def status(self) -> dict[str, Any]:
        generation = self.store.current()
        position = self.store.position(generation)
        head = self.app.head_position()
        updated = self.store.updated_at(generation)
        lag_events = max(0, head - position)
        lag_seconds = 0.0 if lag_events == 0 or updated is None else \
            max(0.0, time.time() - updated)
        building = self.store.building()
        return {
            "name": NAME,
            "position": position,
            "head": head,
            "lag_events": lag_events,
            "lag_seconds": round(lag_seconds, 3),
            "status": "rebuilding" if building else ("live" if lag_events == 0 else "catching_up"),
            "generation": generation,
        }


_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _json(document: Any) -> str:
    import json

    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))
