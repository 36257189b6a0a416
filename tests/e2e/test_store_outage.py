"""A store outage becomes a 503 promptly (issue 11: it took about 12 s).

PostgreSQL is reached through a TCP proxy in this test; cutting the proxy is
an outage that leaves the shared server alone.  Commands and reads must then
answer 503 ``store_unavailable`` with ``Retry-After`` within a few seconds,
and once the proxy is back the same API serves again.  PostgreSQL only
(``make test-postgres``); the crash of a real server is the drill in
``tests/drills/test_postgres_restart.py``.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from conftest import ADMIN_KEY, POSTGRES_URL, USES_POSTGRES, fresh_store, redis_url_for_tests

from workflows.bootstrap import bootstrap
from workflows.settings import Settings

from .client import Needle, World, directive
from .ledger import assert_problem
from .serving import serve_api

pytestmark = pytest.mark.skipif(not USES_POSTGRES, reason="needs PostgreSQL")

PROMPT_SECONDS = 8.0
"""Generous under a loaded CI machine; the library's ten retries took about 12 s."""


class Proxy:
    """A TCP proxy on loopback that can be cut (every connection closed, none accepted)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.open = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            self.sockets += [client, server]
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        for end in (source, target):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.open = False
        for end in self.sockets:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
        self.sockets.clear()

    def restore(self) -> None:
        self.open = True

    def close(self) -> None:
        self.cut()
        self.listener.close()


@pytest.fixture
def proxied_api(tmp_path: Path) -> Iterator[tuple[str, Proxy]]:
    url = urlsplit(POSTGRES_URL)
    proxy = Proxy((url.hostname or "127.0.0.1", url.port or 5432))
    store = fresh_store(tmp_path)  # the schema is made directly, not through the proxy
    netloc = f"{url.username or 'postgres'}@127.0.0.1:{proxy.port}"
    store["event_store"] = urlunsplit((url.scheme, netloc, url.path, "", ""))
    services = bootstrap(Settings(var_dir=tmp_path / "var", admin_key=ADMIN_KEY,
                                  redis_url=redis_url_for_tests(11), **store))
    try:
        with serve_api(services, name="outage-uvicorn") as base_url:
            yield base_url, proxy
    finally:
        proxy.close()
        services.close()


def test_an_outage_is_a_prompt_503_and_the_api_recovers(
    proxied_api: tuple[str, Proxy],
) -> None:
    base_url, proxy = proxied_api
    world = World.build(Needle(base_url, ADMIN_KEY))
    street = world.as_("street")
    # When the store becomes unreachable
    proxy.cut()
    for send in (lambda: street.issue(world.contract_id),
                 lambda: world.admin.get(f"{world.path}/history")):
        began = time.monotonic()
        response = send()
        took = time.monotonic() - began
        # Then each request answers 503 store_unavailable with Retry-After, promptly
        assert_problem(response, 503, "store_unavailable")
        assert int(response.headers["retry-after"]) >= 1
        assert took < PROMPT_SECONDS, f"the 503 took {took:.1f} s"
    # And when it is back, the same API serves again
    proxy.restore()
    deadline = time.monotonic() + 30
    while (response := street.post(f"{world.path}/directives", json=directive())
           ).status_code != 201:
        assert time.monotonic() < deadline, response.text
        time.sleep(0.5)
