"""The composition root: everything the running system needs, built from the settings."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from workflows.application import Threadneedle
from workflows.settings import Settings


@dataclass
class Services:
    settings: Settings
    app: Threadneedle
    redis: redis.Redis | None

    def close(self) -> None:
        self.app.close()
        if self.redis is not None:
            self.redis.close()


def bootstrap(settings: Settings | None = None) -> Services:
    settings = settings or Settings()
    client = redis.Redis.from_url(settings.redis_url) if settings.redis_url else None
    return Services(settings=settings, app=Threadneedle(settings), redis=client)
