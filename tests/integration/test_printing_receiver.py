"""The demo's printing receiver (a real server in a thread, real signed POSTs to it) and the
demo's subscription of it."""

from __future__ import annotations

import io
import json
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from cli.demo import WEBHOOK_FILE, load_demo, subscribe_demo_receiver
from cli.printing_receiver import Printer, make_server, secret_source
from domain.errors import ValidationFailed
from workflows import subscriptions
from workflows.identities import BOOTSTRAP_ADMIN
from workflows.ledger import Ledger
from workflows.settings import Settings
from workflows.webhooks.signing import secret_from_bytes, sign

SECRET = secret_from_bytes(bytes(range(7, 39)))
CONTRACT = "5c1e0c4e-6f53-5d43-a2b1-0f4b1f7c9e10"


def body(sequence: int, summary: str = "每周按街道模板报送工作数据") -> bytes:
    return json.dumps({"type": "directive.issued", "timestamp": "2008-06-02T01:00:00+00:00",
                       "data": {"contract_id": CONTRACT, "sequence": sequence,
                                "summary": summary}}, ensure_ascii=False).encode()


@pytest.fixture
def printed(tmp_path: Path) -> Iterator[tuple[str, io.StringIO, Path]]:
    """A running receiver reading its secret from a file; its URL, its output and that file."""
    out = io.StringIO()
    secret_file = tmp_path / "demo-webhook.json"
    server = make_server("127.0.0.1", 0, Printer(secret_source(None, secret_file), out=out))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", out, secret_file
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def post(url: str, msg_id: str, content: bytes, secret: str = SECRET) -> int:
    headers = sign([secret], msg_id, int(time.time()), content)
    return httpx.post(url, content=content, headers=headers).status_code


def test_it_answers_204_and_prints_type_contract_sequence_line_and_verdict(
    printed: tuple[str, io.StringIO, Path],
) -> None:
    url, out, secret_file = printed
    # Before the demo wrote the secret, the receiver cannot tell
    assert post(url, "msg_1", body(1)) == 204
    # Once the file holds it, the signature is checked on every message
    secret_file.write_text(json.dumps({"secret": SECRET}))
    assert post(url, "msg_2", body(2)) == 204
    assert post(url, "msg_4", body(4, "海幢街要求开到晚上九点")) == 204
    other = secret_from_bytes(bytes(range(50, 82)))
    assert post(url, "msg_5", body(5), secret=other) == 204

    lines = out.getvalue().splitlines()
    assert len(lines) == 8
    assert "? directive.issued" in lines[0] and "#1" in lines[0] and "5c1e0c4e" in lines[0]
    assert "每周按街道模板报送工作数据" in lines[1] and "no secret given" in lines[1]
    assert "✓" in lines[2] and "msg_2" in lines[2] and "signature verified" in lines[3]
    assert "gap: #3 missing" in lines[4] and "海幢街要求开到晚上九点" in lines[5]
    assert "✗" in lines[6] and "signature does not match" in lines[7]


def test_the_demo_subscribes_the_printing_receiver_once_and_moves_it_with_its_port(
    make_settings: Callable[..., Settings],
) -> None:
    # given the demo's settings, which allow loopback receivers
    settings = make_settings(webhook_allowed_cidrs="127.0.0.0/8")
    app = Ledger(settings)
    try:
        # when the demo loads with the receiver on one port, then again on another
        first = load_demo(app, settings.var_dir, webhook_url="http://127.0.0.1:18801/webhooks")
        second = load_demo(app, settings.var_dir, webhook_url="http://127.0.0.1:18802/webhooks")

        # then one admin subscription for every type follows the receiver, same secret
        assert first.webhook is not None and second.webhook is not None
        assert first.webhook.id == second.webhook.id
        assert first.webhook.secret == second.webhook.secret
        assert first.webhook.secret.startswith("whsec_")
        [listed] = subscriptions.list_subscriptions(app, BOOTSTRAP_ADMIN)
        assert (listed["id"], listed["url"], listed["event_types"], listed["status"]) == (
            first.webhook.id, "http://127.0.0.1:18802/webhooks", ["*"], "active")

        # and the receiver can read the secret from a file only its owner may read
        path = settings.var_dir / WEBHOOK_FILE
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert secret_source(None, path)() == first.webhook.secret

        # when the file is lost, the old subscription (whose secret is gone) is replaced
        path.unlink()
        third = load_demo(app, settings.var_dir, webhook_url="http://127.0.0.1:18802/webhooks")
        assert third.webhook is not None and third.webhook.id != first.webhook.id
        listed = subscriptions.list_subscriptions(app, BOOTSTRAP_ADMIN)
        assert [s["id"] for s in listed] == [third.webhook.id]
    finally:
        app.close()


def test_the_demo_refuses_a_receiver_the_ssrf_guard_does_not_allow(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()  # no allow-listed ranges: loopback is refused
    app = Ledger(settings)
    try:
        with pytest.raises(ValidationFailed):
            subscribe_demo_receiver(app, settings.var_dir, "http://127.0.0.1:18801/webhooks")
        assert subscriptions.list_subscriptions(app, BOOTSTRAP_ADMIN) == []
        assert not (settings.var_dir / WEBHOOK_FILE).exists()
    finally:
        app.close()
