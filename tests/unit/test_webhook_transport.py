"""A URL the SSRF guard refuses is an attempt's error, decided before any connection.

What reaches the network (pinning to the checked address, Host, TLS names,
pools, cookies) is tested against real local receivers in
``tests/integration/test_webhook_transport.py``.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from workflows.webhooks.transport import WebhookClient, post_message


def resolve(host: str, port: int) -> Iterable[str]:
    return {"intranet.example": ["192.168.0.7"]}[host]


@pytest.mark.parametrize(("url", "why"), [
    ("http://169.254.169.254/latest", "link-local"),
    ("https://intranet.example/in", "private"),
])
def test_post_message_reports_a_refusal_as_the_attempt_s_error(url: str, why: str) -> None:
    with WebhookClient((), resolve) as client:
        result = post_message(client, url, b"{}", {}, clock=iter([10.0, 10.002]).__next__)

    assert result.status_code is None
    assert result.error is not None and result.error.startswith("refused:")
    assert why in result.error
    assert result.duration_ms == pytest.approx(2.0)
