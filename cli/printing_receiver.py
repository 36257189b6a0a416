"""The demo's webhook receiver: prints every message it gets, in a line or two, and answers 204.

    python -m cli.printing_receiver --port 8090 [--secret whsec_...]
    python -m cli.printing_receiver --port 8090 --secret-file var/demo-webhook.json

It shows a new user what a subscriber sees: the type, the contract, the
``sequence`` (and a warning when one is skipped, the gap a real receiver would
fill with ``recover``), one line of the data, and whether the Standard Webhooks
signature verifies.  The secret may be given directly or read from a file the
demo loader writes (``{"secret": "whsec_..."}``); the file is read again on
every message, so the receiver can start before the subscription exists.

The standard library's threaded HTTP server is enough for a demo: one line
of output per message, no dependency beyond the signing module the workers
themselves use.
"""

from __future__ import annotations

import argparse
import hmac
import json
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO

from workflows.webhooks.signing import InvalidSecret, signature

TOLERANCE_SECONDS = 5 * 60
"""Standard Webhooks receivers reject timestamps further than this from their clock."""
MAX_BODY_BYTES = 1024 * 1024
LINE_FIELDS = ("summary", "explanation", "title", "reason", "rationale", "subject")


def verify(secret: str | None, headers: Mapping[str, str], body: bytes,
           now: float) -> tuple[bool | None, str]:
    """Whether the message's signature verifies with ``secret``, and why not.

    ``None`` when no secret is known: the receiver cannot tell.  Any one of
    the space-separated ``v1,`` signatures may match (two during a rotation).
    """
    if not secret:
        return None, "no secret given"
    msg_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    offered = headers.get("webhook-signature", "").split()
    if not msg_id or not stamp.isdigit() or not offered:
        return False, "missing webhook-* headers"
    try:
        expected = signature(secret, msg_id, int(stamp), body)
    except (InvalidSecret, ValueError) as error:
        return False, f"bad secret: {error}"
    if not any(hmac.compare_digest(expected, candidate) for candidate in offered):
        return False, "signature does not match"
    if abs(now - int(stamp)) > TOLERANCE_SECONDS:
        return False, f"timestamp {int(now) - int(stamp)} s away from now"
    return True, "signature verified"


def data_line(data: Mapping[str, Any], width: int = 72) -> str:
    """One human line about the record: its summary, explanation or title, else its id."""
    for name in LINE_FIELDS:
        value = data.get(name)
        if isinstance(value, str) and value:
            text = " ".join(value.split())
            return text if len(text) <= width else text[: width - 1] + "…"
    return f"id {data.get('id', '?')}"


@dataclass
class Printer:
    """Formats each message and remembers the last ``sequence`` per contract to spot gaps."""

    secret: Callable[[], str | None]
    out: TextIO = sys.stdout
    clock: Callable[[], float] = time.time
    last_sequence: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def show(self, headers: Mapping[str, str], body: bytes) -> None:
        verified, why = verify(self.secret(), headers, body, self.clock())
        mark = {True: "✓", False: "✗", None: "?"}[verified]
        try:
            payload = json.loads(body)
            data: dict[str, Any] = payload.get("data") or {}
            kind = str(payload.get("type", "?"))
        except (ValueError, AttributeError):
            payload, data, kind = {}, {}, "(not JSON)"
        contract = str(data.get("contract_id", "?"))
        sequence = data.get("sequence")
        with self._lock:
            note = self._gap_note(contract, sequence)
            stamp = time.strftime("%H:%M:%S", time.localtime(self.clock()))
            print(f"{stamp} {mark} {kind:<20} contract {contract[:8]}  #{sequence}"
                  f"  {headers.get('webhook-id', '-')}{note}\n"
                  f"         {data_line(data)}   [{why}]", file=self.out, flush=True)

    def _gap_note(self, contract: str, sequence: object) -> str:
        if not isinstance(sequence, int):
            return ""
        previous = self.last_sequence.get(contract)
        self.last_sequence[contract] = max(sequence, previous or 0)
        if previous is None or sequence == previous + 1:
            return ""
        if sequence <= previous:
            return f"  (again: already saw up to #{previous})"
        missing = f"#{previous + 1}" if sequence == previous + 2 else \
            f"#{previous + 1}–#{sequence - 1}"
        return f"  (gap: {missing} missing)"


def secret_source(secret: str | None, secret_file: Path | None) -> Callable[[], str | None]:
    """Where the secret comes from: the option, else the file (read again on each message)."""

    def read() -> str | None:
        if secret or secret_file is None:
            return secret
        try:
            found = json.loads(secret_file.read_text("utf-8")).get("secret")
        except (OSError, ValueError, AttributeError):
            return None
        return found if isinstance(found, str) else None

    return read


def make_server(host: str, port: int, printer: Printer) -> ThreadingHTTPServer:
    """A threaded HTTP server that hands every POST to ``printer`` and answers 204."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_BODY_BYTES:
                self.send_error(413)
                return
            body = self.rfile.read(length)
            printer.show({k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass  # the printer's line is the log

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--secret", help="the subscription's whsec_ secret")
    parser.add_argument("--secret-file", type=Path,
                        help='a JSON file {"secret": "whsec_..."}, read on every message')
    args = parser.parse_args(argv)
    printer = Printer(secret_source(args.secret, args.secret_file))
    server = make_server(args.host, args.port, printer)
    print(f"printing webhook receiver listening on http://{args.host}:{server.server_port}/",
          flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
