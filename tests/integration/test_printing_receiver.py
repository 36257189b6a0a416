"""The demo's printing receiver: a real server in a thread, real signed POSTs to it."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from workflows.webhooks.printing_receiver import Printer, make_server, secret_source
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
