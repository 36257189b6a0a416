"""The directive fast path answers as the documented route does (``api/directive_fast_path``).

Each request is sent to the live server (fast path first) and to a second
server on the same services whose app has no fast path: the status, content
type, problem document and the headers that matter must agree.  Requests that
record something are compared by shape (the second records its own event).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import ADMIN_KEY

from api.main import create_app

from .client import Needle, World, directive
from .conftest import LiveServer
from .serving import serve_app


@pytest.fixture(scope="module")
def plain_route(live_server: LiveServer) -> Iterator[str]:
    """The same API without the fast path: the documented route answers everything."""
    app = create_app(live_server.services, fast_path=False)
    with serve_app(app, "e2e-plain-route") as base_url:
        yield base_url


def both(live_server: LiveServer, plain_route: str, method: str, path: str,
         **kwargs: Any) -> tuple[httpx.Response, httpx.Response]:
    fast = httpx.request(method, live_server.base_url + path, timeout=30, **kwargs)
    plain = httpx.request(method, plain_route + path, timeout=30, **kwargs)
    return fast, plain


def assert_same_refusal(fast: httpx.Response, plain: httpx.Response, case: str = "") -> None:
    assert fast.status_code == plain.status_code >= 400, (case, fast.text, plain.text)
    assert fast.headers["content-type"] == plain.headers["content-type"], case
    assert fast.json() == plain.json(), case
    for header in ("www-authenticate", "retry-after", "allow"):
        assert fast.headers.get(header) == plain.headers.get(header), (case, header)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_refusals_of_the_request_are_the_routes_own(
        live_server: LiveServer, plain_route: str, world: World) -> None:
    path = f"{world.path}/directives"
    key = world.keys["street"]
    good = directive()
    cases: list[tuple[str, dict[str, Any]]] = [
        ("no key", {"json": good}),
        ("unknown key", {"json": good, "headers": bearer("not-a-key-" + uuid.uuid4().hex)}),
        ("non-ASCII key", {"json": good, "headers": {"Authorization": "Bearer ключ".encode()}}),
        ("basic auth", {"json": good, "headers": {"Authorization": "Basic eDp5"}}),
        ("not JSON", {"content": b"{nope", "headers": {
            **bearer(key), "Content-Type": "application/json"}}),
        ("empty body", {"content": b"", "headers": {
            **bearer(key), "Content-Type": "application/json"}}),
        ("a list", {"json": [good], "headers": bearer(key)}),
        ("a field wrong", {"json": {**good, "vulnerability": 7}, "headers": bearer(key)}),
        ("a field missing", {"json": {k: v for k, v in good.items() if k != "summary"},
                             "headers": bearer(key)}),
        ("an unknown field", {"json": {**good, "colour": "red"}, "headers": bearer(key)}),
        ("text/plain", {"content": b"{}", "headers": {**bearer(key),
                                                      "Content-Type": "text/plain"}}),
        ("bad Idempotency-Key", {"json": good, "headers": {
            **bearer(key), "Idempotency-Key": "with space"}}),
        ("long Idempotency-Key", {"json": good, "headers": {
            **bearer(key), "Idempotency-Key": "k" * 256}}),
        ("bad If-Match", {"json": good, "headers": {**bearer(key), "If-Match": "five"}}),
        ("long If-Match", {"json": good, "headers": {
            **bearer(key), "If-Match": "W/" + '"1",' * 30}}),
    ]
    for name, kwargs in cases:
        fast, plain = both(live_server, plain_route, "POST", path, **kwargs)
        assert_same_refusal(fast, plain, name)
    # a contract id over its length, and an unknown contract
    for contract in ("x" * 65, str(uuid.uuid4()), "not-a-uuid"):
        fast, plain = both(live_server, plain_route, "POST", f"/v1/contracts/{contract}/directives",
                           json=good, headers=bearer(key))
        assert_same_refusal(fast, plain)


def test_refusals_of_the_command_are_the_routes_own(
        live_server: LiveServer, plain_route: str, world: World) -> None:
    path = f"{world.path}/directives"
    good = directive()
    # an organisation with nothing to do with the contract; a resolver; a stale If-Match
    for who, headers in (("outsider", {}), ("resolver", {}), ("street", {"If-Match": '"1"'})):
        fast, plain = both(live_server, plain_route, "POST", path, json=good,
                           headers={**bearer(world.keys[who]), **headers})
        assert_same_refusal(fast, plain)
    # an Idempotency-Key used again with another body
    headers = {**bearer(world.keys["street"]), "Idempotency-Key": uuid.uuid4().hex}
    Needle(live_server.base_url, None).ok("POST", path, 201, json=good, headers=headers)
    fast, plain = both(live_server, plain_route, "POST", path,
                       json={**good, "summary": "另一条 another"}, headers=headers)
    assert_same_refusal(fast, plain)


def test_a_directive_recorded_answers_alike(
        live_server: LiveServer, plain_route: str, world: World) -> None:
    path = f"{world.path}/directives"
    version = world.version()
    headers = {**bearer(world.keys["street"]), "If-Match": f'"{version}"',
               "Idempotency-Key": uuid.uuid4().hex}
    fast = httpx.post(live_server.base_url + path, json=directive(), headers=headers)
    assert fast.status_code == 201, fast.text
    assert fast.headers["content-type"] == "application/json"
    assert set(fast.json()) == {"id", "version", "position"}
    assert fast.json()["version"] == version + 1
    # the same key and body again, through either: the first answer, recorded once
    again = httpx.post(plain_route + path, json=directive(), headers=headers)
    repeat = httpx.post(live_server.base_url + path, json=directive(), headers=headers)
    assert again.status_code == repeat.status_code == 201
    assert again.json() == repeat.json() == fast.json()
    assert world.version() == version + 1
    # and the metrics name the documented route
    metrics = Needle(live_server.base_url, ADMIN_KEY).get("/metrics").text
    assert 'needle_commands_total{command="issue_directive",outcome="accepted"}' in metrics


def test_a_wake_that_fails_does_not_fail_the_directive_it_follows(
        live_server: LiveServer, plain_route: str, world: World,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # given waking the projections fails with an error nobody expected
    def broken_wake(services: object) -> None:
        raise RuntimeError("唤醒失败: the broker is restarting")

    monkeypatch.setattr("api.deps.wake_projections", broken_wake)
    path = f"{world.path}/directives"
    version = world.version()
    headers = bearer(world.keys["street"])

    # when a directive is issued through the fast path and through the documented route
    fast = httpx.post(live_server.base_url + path, json=directive(), headers=headers)
    plain = httpx.post(plain_route + path, json=directive(), headers=headers)

    # then both were recorded and answered as recorded, not as failures
    assert fast.status_code == plain.status_code == 201, (fast.text, plain.text)
    assert world.version() == version + 2
