"""Fixtures of the fault drills: servers of their own, API processes stopped whatever happens.

Every drill runs its own Redis (so crashing it disturbs nobody) and, for the
PostgreSQL drill, its own PostgreSQL cluster; the other drills use the run's
kind of store (SQLite in ``make test``, PostgreSQL in ``make test-postgres``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ADMIN_KEY
from pydantic import SecretStr

from workflows.settings import Settings

from .support import ApiProcess, Postgres, RedisServer


@pytest.fixture
def drill_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    cluster = Postgres()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def drill_settings(tmp_path: Path, drill_redis: RedisServer) -> Callable[..., Settings]:
    """Settings on the drill's Redis and a queue of its own; keywords name the store."""

    def make(**fields: Any) -> Settings:
        return Settings(var_dir=tmp_path / "var", admin_key=SecretStr(ADMIN_KEY),
                        redis_url=drill_redis.url, celery_queue=f"drill-{uuid.uuid4().hex[:8]}",
                        **fields)

    return make


@pytest.fixture
def api_process(tmp_path: Path) -> Iterator[Callable[..., ApiProcess]]:
    """Make API processes (not started); every one is stopped when the test ends."""
    made: list[ApiProcess] = []

    def make(settings: Settings, **env: str) -> ApiProcess:
        process = ApiProcess(settings, tmp_path / f"api-{len(made)}.log", **env)
        made.append(process)
        return process

    try:
        yield make
    finally:
        for process in made:
            process.stop()
