"""A live API over real HTTP: uvicorn in a background thread, on a fresh store.

One server serves the whole session (each test builds its own uniquely named
organisations and contract, so tests do not interfere); tests reach it only
through ``client.Needle``, except the audit test, which alters a stored event
through the server's own ``Services``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import uvicorn
from conftest import ADMIN_KEY, TEST_REDIS_URL, fresh_store

from api.main import create_app
from workflows.bootstrap import Services, bootstrap
from workflows.settings import Settings

from .client import Needle, World


@dataclass
class LiveServer:
    base_url: str
    services: Services


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("e2e")
    settings = Settings(var_dir=folder / "var", admin_key=ADMIN_KEY, redis_url=TEST_REDIS_URL,
                        **fresh_store(folder))
    services = bootstrap(settings)
    port = _free_port()
    config = uvicorn.Config(create_app(services), host="127.0.0.1", port=port,
                            log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="e2e-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the API did not start"
        time.sleep(0.02)
    yield LiveServer(f"http://127.0.0.1:{port}", services)
    server.should_exit = True
    thread.join(timeout=10)
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
