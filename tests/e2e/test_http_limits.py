"""Limits at the HTTP layer, against a real server process over real sockets.

The API runs as ``needle up`` runs it (``uvicorn --factory api.main:create_app
--http api.server:GuardedProtocol``), with small limits so the tests are quick:
oversized and too many headers are 431, headers sent slowly are cut off with
408, connections beyond the cap are refused, requests the server cannot parse
are 400 — every one of them a problem document, never ``text/plain`` — and
each key over its rate limit gets 429 with ``Retry-After`` while other keys
go on.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import ADMIN_KEY, redis_url_for_tests
from integration.processes import settings_env

from workflows.settings import Settings

from .serving import free_port

HEADER_TIMEOUT = 1.5
MAX_CONNECTIONS = 12
MAX_HEADER_BYTES = 4096
MAX_HEADERS = 20
RATE_LIMIT = "40/minute"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("http-limits")
    settings = Settings(var_dir=folder / "var", admin_key=ADMIN_KEY,
                        redis_url=redis_url_for_tests(13),
                        event_store=str(folder / "store.sqlite"))
    port = free_port()
    env = settings_env(
        settings, NEEDLE_HEADER_TIMEOUT_SECONDS=str(HEADER_TIMEOUT),
        NEEDLE_MAX_CONNECTIONS=str(MAX_CONNECTIONS), NEEDLE_MAX_HEADER_BYTES=str(MAX_HEADER_BYTES),
        NEEDLE_MAX_HEADERS=str(MAX_HEADERS), NEEDLE_RATE_LIMIT=RATE_LIMIT,
        NEEDLE_RATE_LIMIT_ANONYMOUS="1000/second", NEEDLE_CELERY_QUEUE=f"limits-{port}")
    log = (folder / "api.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app",
         "--host", "127.0.0.1", "--port", str(port), "--http", "api.server:GuardedProtocol"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).parents[2])
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (folder / "api.log").read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the API did not start"
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def address(base: str) -> tuple[str, int]:
    host, port = base.removeprefix("http://").split(":")
    return host, int(port)


def exchange(base: str, raw: bytes, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes on a new connection; the status, headers and body of the answer."""
    with socket.create_connection(address(base), timeout=timeout) as connection:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            connection.sendall(raw)  # the server may refuse before it has read everything
        return read_answer(connection)


def read_answer(connection: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        assert chunk, f"connection closed without an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":")
                                                           for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def assert_problem_answer(answer: tuple[int, dict[str, str], bytes], status: int) -> None:
    got, headers, body = answer
    assert got == status, answer
    assert headers["content-type"] == "application/problem+json", answer
    document = json.loads(body)
    assert document["status"] == status and {"type", "title", "detail"} <= document.keys()


def test_a_huge_header_is_431_without_a_key(server: str) -> None:
    # When /healthz is sent a 16 MB header (no key: the server must refuse before any auth)
    with socket.create_connection(address(server), timeout=20) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        sent = 0
        try:
            while sent < 16 * 1024 * 1024:
                connection.sendall(b"a" * 65536)
                sent += 65536
        except (BrokenPipeError, ConnectionResetError):
            pass
        # Then it is refused with 431 long before all of it is sent
        assert_problem_answer(read_answer(connection), 431)
    assert sent < 16 * 1024 * 1024


def test_headers_over_the_byte_or_count_limit_are_431(server: str) -> None:
    many = b"".join(b"X-H%d: v\r\n" % n for n in range(MAX_HEADERS + 1))
    assert_problem_answer(exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + many
                                   + b"\r\n"), 431)
    long_url = b"GET /healthz?" + b"q" * MAX_HEADER_BYTES + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    assert_problem_answer(exchange(server, long_url), 431)
    # And a request within the limits is served
    fine = b"".join(b"X-H%d: \xe8\xa1\x97\r\n" % n for n in range(MAX_HEADERS - 2))
    status, _, body = exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + fine + b"\r\n")
    assert status == 200 and json.loads(body) == {"status": "ok"}


def test_slow_headers_are_cut_off_with_408(server: str) -> None:
    # When a client sends one header line at a time, slowly (a slowloris)
    with socket.create_connection(address(server), timeout=20) as connection:
        began = time.monotonic()
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            for n in range(40):
                time.sleep(0.4)
                connection.sendall(b"X-Slow-%d: v\r\n" % n)
        # Then the server answered 408 and closed within its header timeout
        assert time.monotonic() - began < HEADER_TIMEOUT + 10
    # And a connection that sends nothing at all is closed too
    with socket.create_connection(address(server), timeout=20) as connection:
        assert_problem_answer(read_answer(connection), 408)


def test_connections_over_the_cap_are_refused(server: str) -> None:
    held: list[socket.socket] = []
    try:
        # When more connections are opened than the cap (each idle, within its header time)
        for _ in range(MAX_CONNECTIONS + 3):
            held.append(socket.create_connection(address(server), timeout=10))
        # Then the ones beyond it are answered 503 with Retry-After and closed
        extra = socket.create_connection(address(server), timeout=10)
        with extra:
            answer = read_answer(extra)
        assert_problem_answer(answer, 503)
        assert answer[1]["retry-after"]
    finally:
        for connection in held:
            connection.close()
    # And once they are gone, new connections are served again
    deadline = time.monotonic() + 10
    while httpx.get(f"{server}/healthz", timeout=5).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_requests_the_server_cannot_parse_are_problem_documents(server: str) -> None:
    for garbage in (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,
                    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
                    b"NOT HTTP AT ALL\r\n\r\n"):
        assert_problem_answer(exchange(server, garbage), 400)


def test_an_upgrade_to_websocket_is_answered_as_http(server: str) -> None:
    status, headers, body = exchange(server, b"GET /v1/contracts HTTP/1.1\r\nHost: x\r\n"
                                     b"Connection: Upgrade\r\nUpgrade: websocket\r\n"
                                     b"Sec-WebSocket-Version: 13\r\n"
                                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
    assert_problem_answer((status, headers, body), 401)


def test_each_key_is_rate_limited_on_its_own(server: str) -> None:
    admin = httpx.Client(base_url=server, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    admin.post("/v1/organizations", json={"id": "limited-street", "name": "江南中街街道办事处",
                                          "kind": "street_office"})
    keys = [admin.post("/v1/keys", json={"org": "limited-street", "role": "stakeholder"}
                       ).json()["key"] for _ in range(2)]
    busy = httpx.Client(base_url=server, headers={"Authorization": f"Bearer {keys[0]}"})
    # When one key sends more requests than its limit allows
    statuses = [busy.get("/v1/contracts").status_code for _ in range(50)]
    # Then the requests over it are 429 problems with Retry-After
    assert statuses.count(200) <= 40 and statuses[-1] == 429, statuses
    refused = busy.get("/v1/contracts")
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # And another key is not affected
    other = httpx.Client(base_url=server, headers={"Authorization": f"Bearer {keys[1]}"})
    assert other.get("/v1/contracts").status_code == 200
