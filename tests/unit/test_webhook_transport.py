"""The guarded transport pins each request to the checked address (no network here).

The inner transports are ``httpx.MockTransport``s that record the request the
guarded transport hands them: its URL names the checked address, its Host
header and TLS server name (SNI) the URL's own host.
"""

from __future__ import annotations

from collections.abc import Iterable

import httpx
import pytest

from workflows.webhooks.ssrf import CheckedTarget, ForbiddenAddress, parse_allowed_cidrs
from workflows.webhooks.transport import GuardedTransport, post_message, webhook_client

PUBLIC_V4, PUBLIC_V6 = "93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"
TABLE = {"hooks.haizhu.example": [PUBLIC_V4], "v6.haizhu.example": [PUBLIC_V6],
         "mirror.haizhu.example": [PUBLIC_V4], "intranet.example": ["192.168.0.7"]}


def resolve(host: str, port: int) -> Iterable[str]:
    return TABLE[host]


class Recorder:
    """Makes one mock transport per target and keeps every request they were handed."""

    def __init__(self) -> None:
        self.targets: list[CheckedTarget] = []
        self.requests: list[httpx.Request] = []

    def transport(self, target: CheckedTarget) -> httpx.BaseTransport:
        self.targets.append(target)
        return httpx.MockTransport(self.answer)

    def answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, text="ok")


def client(recorder: Recorder, allowed: str = "") -> httpx.Client:
    transport = GuardedTransport(parse_allowed_cidrs(allowed), resolve,
                                 transport_factory=recorder.transport)
    return httpx.Client(transport=transport, follow_redirects=False, trust_env=False)


def test_an_https_request_goes_to_the_checked_address_with_its_host_and_sni() -> None:
    recorder = Recorder()
    with client(recorder) as http:
        response = http.post("https://hooks.haizhu.example:8443/in?x=1", content=b"{}")

    assert response.status_code == 200
    [sent] = recorder.requests
    assert sent.url == httpx.URL(f"https://{PUBLIC_V4}:8443/in?x=1")
    assert sent.headers["host"] == "hooks.haizhu.example:8443"
    assert sent.extensions["sni_hostname"] == "hooks.haizhu.example"
    assert sent.content == b"{}"


def test_an_ipv6_address_is_pinned_in_brackets() -> None:
    recorder = Recorder()
    with client(recorder) as http:
        http.post("http://v6.haizhu.example/in", content=b"{}")

    [sent] = recorder.requests
    assert sent.url.host == PUBLIC_V6
    assert str(sent.url) == f"http://[{PUBLIC_V6}]/in"
    assert sent.headers["host"] == "v6.haizhu.example"
    assert "sni_hostname" not in sent.extensions


def test_each_host_gets_its_own_pool_even_on_a_shared_address() -> None:
    # Given two names on one address
    recorder = Recorder()
    with client(recorder) as http:
        for _ in range(2):
            http.post("https://hooks.haizhu.example/in", content=b"{}")
            http.post("https://mirror.haizhu.example/in", content=b"{}")

    # Then one inner transport was made for each name, and reused
    assert [target.host for target in recorder.targets] == [
        "hooks.haizhu.example", "mirror.haizhu.example"]
    assert len(recorder.requests) == 4


def test_a_url_refused_by_the_guard_never_reaches_a_transport() -> None:
    recorder = Recorder()
    with client(recorder) as http, pytest.raises(ForbiddenAddress):
        http.post("https://intranet.example/in", content=b"{}")
    assert recorder.requests == []


def test_post_message_reports_a_refusal_as_the_attempt_s_error() -> None:
    recorder = Recorder()
    with client(recorder) as http:
        result = post_message(http, "http://169.254.169.254/latest", b"{}", {},
                              clock=iter([10.0, 10.002]).__next__)

    assert result.status_code is None
    assert result.error is not None and result.error.startswith("refused:")
    assert "link-local" in result.error
    assert result.duration_ms == pytest.approx(2.0)


def test_the_webhook_client_never_sends_back_a_cookie_an_endpoint_set() -> None:
    # Given an endpoint that sets a cookie on every answer
    requests: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(204, headers={"set-cookie": "session=haizhu-1; Path=/"})

    with webhook_client((), resolve, transport_factory=lambda _: httpx.MockTransport(answer)) \
            as http:
        # When two deliveries go to it, and one to another subscription on the same host
        for body in (b'{"n":1}', b'{"n":2}', b'{"n":3}'):
            post_message(http, "https://hooks.haizhu.example/in", body, {})

    # Then none of them carried a cookie, and the client kept none
    assert [request.headers.get("cookie") for request in requests] == [None, None, None]
    assert len(http.cookies.jar) == 0
