"""Fixtures shared by every layer of tests.

The event store is SQLite in a temporary folder, or PostgreSQL when
``NEEDLE_EVENT_STORE`` is a ``postgresql://`` URL (``make test-postgres``): then
each store gets a schema of its own in that database, so tests never see each
other's events.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from workflows.settings import Settings

ADMIN_KEY = "test-admin-key-0123456789abcdef"
POSTGRES_URL = os.environ.get("NEEDLE_EVENT_STORE", "")
USES_POSTGRES = POSTGRES_URL.startswith(("postgresql://", "postgres://"))
# One Redis server for the whole run (``NEEDLE_TEST_REDIS``); each suite that
# needs a clean slate takes a database of its own on it.  Point it at another
# server to run two suites side by side.
TEST_REDIS = os.environ.get("NEEDLE_TEST_REDIS", "redis://127.0.0.1:6379").rstrip("/")


def redis_url_for_tests(database: int) -> str:
    return f"{TEST_REDIS}/{database}"


TEST_REDIS_URL = redis_url_for_tests(15)


def fresh_store(tmp_path: Path) -> dict[str, Any]:
    """Settings fields for an empty event store of the kind this run uses."""
    if not USES_POSTGRES:
        return {"event_store": str(tmp_path / f"store-{uuid.uuid4().hex[:8]}.sqlite")}
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    return {"event_store": POSTGRES_URL, "event_store_schema": schema}


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Build settings on a fresh, empty event store; keyword arguments override fields."""

    def make(**overrides: Any) -> Settings:
        fields: dict[str, Any] = {
            "var_dir": tmp_path / "var",
            "admin_key": ADMIN_KEY,
            "redis_url": TEST_REDIS_URL,
            **fresh_store(tmp_path),
        }
        fields.update(overrides)
        return Settings(**fields)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Iterator[Settings]:
    yield make_settings()
