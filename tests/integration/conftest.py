"""Fixtures the integration tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from conftest import TEST_REDIS_URL


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    """The test Redis database, emptied before and after the test."""
    connection = redis.Redis.from_url(TEST_REDIS_URL)
    connection.flushdb()
    yield connection
    connection.flushdb()
    connection.close()
