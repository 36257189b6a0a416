"""The composition root: everything the running system needs, built from the settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import redis

from workflows.application import Threadneedle
from workflows.messaging import celery_client
from workflows.settings import Settings

if TYPE_CHECKING:
    from celery import Celery


@dataclass
class Services:
    settings: Settings
    app: Threadneedle
    redis: redis.Redis | None
    _celery: Celery | None = field(default=None, repr=False)

    @property
    def celery(self) -> Celery:
        """The Celery app tasks are sent through (by name), built on first use."""
        if self._celery is None:
            self._celery = celery_client(self.settings)
        return self._celery

    def close(self) -> None:
        self.app.close()
        if self.redis is not None:
            self.redis.close()
        if self._celery is not None:
            self._celery.close()


def bootstrap(settings: Settings | None = None) -> Services:
    settings = settings or Settings()
    from workflows.views import configure_partitions  # readers find a contract's partition

    configure_partitions(settings.projection_partitions)
    client = redis.Redis.from_url(settings.redis_url) if settings.redis_url else None
    return Services(settings=settings, app=Threadneedle(settings), redis=client)
