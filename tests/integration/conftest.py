"""Fixtures the integration tests share."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis
from conftest import TEST_REDIS_URL

from cli.demo import load_demo
from workflows.ledger import Ledger
from workflows.settings import Settings


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    """The test Redis database, emptied before and after the test."""
    connection = redis.Redis.from_url(TEST_REDIS_URL)
    connection.flushdb()
    yield connection
    connection.flushdb()
    connection.close()


@pytest.fixture
def demo_settings(make_settings: Callable[..., Settings]) -> Settings:
    """A store holding the Guangzhou demo."""
    settings = make_settings()
    app = Ledger(settings)
    load_demo(app, settings.var_dir)
    app.close()
    return settings
