"""A live API over real HTTP: uvicorn in a background thread, on a fresh store.

One server serves the whole session (each test builds its own uniquely named
organisations and contract, so tests do not interfere); tests reach it only
through ``client.Needle``, except the audit test, which alters a stored event
through the server's own ``Services``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from conftest import ADMIN_KEY, TEST_REDIS_URL, fresh_store

from workflows.bootstrap import Services, bootstrap
from workflows.settings import Settings

from .client import Needle, World
from .serving import serve_api


@dataclass
class LiveServer:
    base_url: str
    services: Services


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("e2e")
    settings = Settings(var_dir=folder / "var", admin_key=ADMIN_KEY, redis_url=TEST_REDIS_URL,
                        **fresh_store(folder))
    services = bootstrap(settings)
    with serve_api(services) as base_url:
        yield LiveServer(base_url, services)
    services.close()


@pytest.fixture
def anonymous(live_server: LiveServer) -> Needle:
    return Needle(live_server.base_url, None)


@pytest.fixture
def admin(live_server: LiveServer) -> Needle:
    return Needle(live_server.base_url, ADMIN_KEY)


@pytest.fixture
def world(admin: Needle) -> World:
    """An active contract with party, non-party, resolver, supervisor and outsider keys."""
    return World.build(admin)
