"""The composition root: every part the running system needs, built once from the settings.

``bootstrap(settings)`` makes the ``Services`` of one process: the ledger
(``workflows/ledger.py``), the Redis client and the Celery client that sends
tasks by name (``workflows/messaging.py``) at once; the parts only some
processes use (the contract views a worker projects, the webhook outbox, the
secret vault, the dispatcher, the delivery and its HTTP client) on first use,
once, under a lock.  The API and the workers take their parts from here
(``api/deps.py`` hands a route one part; ``workers/runtime.py`` keeps one
``Services`` per worker process); nothing else builds them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import redis

from workflows import messaging, projection_control, view_store
from workflows.ledger import Ledger
from workflows.settings import Settings
from workflows.webhooks.delivery import Delivery
from workflows.webhooks.dispatch import Dispatcher
from workflows.webhooks.outbox import Outbox
from workflows.webhooks.ssrf import parse_allowed_cidrs
from workflows.webhooks.transport import WebhookClient
from workflows.webhooks.vault import SecretVault, master_key

if TYPE_CHECKING:
    from celery import Celery

    from workflows.projection_control import PartitionedViews

Part = TypeVar("Part")


@dataclass
class Services:
    settings: Settings
    ledger: Ledger
    redis: redis.Redis | None
    _parts: dict[str, Any] = field(default_factory=dict, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def _once(self, name: str, build: Callable[[], Part]) -> Part:
        with self._lock:
            if name not in self._parts:
                self._parts[name] = build()
            part: Part = self._parts[name]
            return part

    @property
    def celery(self) -> Celery:
        """The Celery client tasks are sent through (by name)."""
        return self._once("celery", lambda: messaging.celery_client(self.settings))

    @property
    def contract_views(self) -> PartitionedViews:
        """The contract-views projector of this process (its aggregates stay warm)."""
        return self._once("contract_views", lambda: projection_control.contract_views(self))

    @property
    def outbox(self) -> Outbox:
        """The webhook outbox's parts on the event store's database."""
        return self._once("outbox", lambda: Outbox(self.ledger))

    @property
    def vault(self) -> SecretVault:
        """The webhook signing secrets' vault (``workflows/webhooks/vault.py``)."""
        return self._once("vault", lambda: SecretVault(self.outbox.tables,
                                                       master_key(self.settings)))

    @property
    def webhook_client(self) -> WebhookClient:
        """One HTTP client for every delivery thread: connections kept alive per endpoint."""
        return self._once("webhook_client", lambda: WebhookClient(
            parse_allowed_cidrs(self.settings.webhook_allowed_cidrs),
            timeout=self.settings.webhook_timeout_seconds))

    @property
    def dispatcher(self) -> Dispatcher:
        """The webhook dispatcher of this process (its contract states stay warm)."""
        return self._once("dispatcher", lambda: Dispatcher(self.ledger, self.outbox))

    @property
    def delivery(self) -> Delivery:
        """The webhook delivery of this process, with the one shared ``WebhookClient``."""
        return self._once("delivery", lambda: Delivery.from_settings(
            self.ledger, self.outbox, self.webhook_client, vault=self.vault))

    def close(self) -> None:
        with self._lock:
            client = self._parts.pop("webhook_client", None)
            celery = self._parts.pop("celery", None)
            self._parts.clear()
        if client is not None:
            client.close()
        self.ledger.close()
        if self.redis is not None:
            self.redis.close()
        if celery is not None:
            celery.close()


def bootstrap(settings: Settings | None = None) -> Services:
    settings = settings or Settings()
    view_store.configure_partitions(settings.projection_partitions)  # readers find a partition
    client = redis.Redis.from_url(settings.redis_url) if settings.redis_url else None
    return Services(settings=settings, ledger=Ledger(settings), redis=client)
