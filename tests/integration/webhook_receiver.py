"""A real local webhook receiver: an HTTP server in a thread that records what it gets.

Each request is answered by the next scripted ``Answer`` (the last one repeats),
so a test can make a receiver that fails twice and then succeeds, answers 410,
throttles with ``Retry-After``, redirects, is too slow to answer, or trickles
its answer one byte at a time.  It counts the requests it is answering at
once per ``webhook-id`` (``most_at_once``).  It can
also listen on IPv6 (``bind="::1"``), speak TLS with a given server context
(recording the SNI name each handshake asked for), and keep connections alive.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Answer:
    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0
    """Seconds to wait before answering (a slow or dead receiver)."""
    trickle: float = 0.0
    """Seconds between the answer's bytes, status line and headers included (a receiver
    that keeps every read alive but never finishes); 0: written at once."""


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    """Header names in lower case."""
    body: bytes


class Receiver:
    """The receiver a test talks to: its port, the requests it received, and its script."""

    def __init__(self, answers: list[Answer], *, bind: str = "127.0.0.1",
                 tls: ssl.SSLContext | None = None, keep_alive: bool = False) -> None:
        self.answers = answers or [Answer()]
        self.received: list[Received] = []
        self.server_names: list[str | None] = []
        """The SNI name of each TLS handshake."""
        self.most_at_once: dict[str, int] = {}
        """Per ``webhook-id``: the most requests carrying it that were being answered at once."""
        self._in_flight: dict[str, int] = {}
        self._lock = threading.Lock()
        self._keep_alive = keep_alive
        server_class = _IPv6Server if ":" in bind else ThreadingHTTPServer
        self._server = server_class((bind, 0), self._handler())
        self._server.daemon_threads = True
        self._scheme = "http"
        if tls is not None:
            tls.sni_callback = lambda _socket, name, _context: self.server_names.append(name)
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
            self._scheme = "https"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"{self._scheme}://{host}:{self.port}{path}"

    def _next_answer(self, request: Received) -> Answer:
        with self._lock:
            self.received.append(request)
            return self.answers[min(len(self.received), len(self.answers)) - 1]

    def _arrived(self, message_id: str, change: int) -> None:
        with self._lock:
            now = self._in_flight[message_id] = self._in_flight.get(message_id, 0) + change
            self.most_at_once[message_id] = max(self.most_at_once.get(message_id, 0), now)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if receiver._keep_alive else "HTTP/1.0"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                request = Received(
                    self.command, self.path,
                    {name.lower(): value for name, value in self.headers.items()},
                    self.rfile.read(length),
                )
                answer = receiver._next_answer(request)
                message_id = request.headers.get("webhook-id", "")
                receiver._arrived(message_id, +1)
                try:
                    time.sleep(answer.delay)
                    if answer.trickle:
                        self._trickle(answer)
                        return
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender gave up waiting (a timeout test)
                finally:
                    receiver._arrived(message_id, -1)

            def _trickle(self, answer: Answer) -> None:
                """The whole answer one byte at a time, until it ends or the sender hangs up."""
                head = [f"HTTP/1.1 {answer.status} Trickling", *(
                    f"{name}: {value}" for name, value in answer.headers.items()),
                    f"content-length: {len(answer.body)}", "", ""]
                self.close_connection = True
                for byte in "\r\n".join(head).encode() + answer.body:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(answer.trickle)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler

    @contextmanager
    def running(self) -> Iterator[Receiver]:
        thread = threading.Thread(target=self._server.serve_forever, kwargs={
            "poll_interval": 0.05}, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join(timeout=5)


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6
