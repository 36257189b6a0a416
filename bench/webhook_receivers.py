"""Cheap local webhook receivers for the benchmark: many ports, one asyncio process.

    python bench/webhook_receivers.py --ports 0 0 0 --delays 0 0 10 --ready FILE

Each port answers every POST with 204 after its delay (a 10 s delay is the
"slow endpoint" of the isolation bar).  The answer is written by a bare
``asyncio.Protocol`` with keep-alive: on a 2-CPU machine the receivers must
cost far less than the senders they measure.  ``GET /stats`` answers
``{"requests": n, "ids": distinct webhook-ids, "first": t, "last": t}`` (epoch
seconds) so that the benchmark can see what arrived without touching the
outbox.  The ports actually bound are written to ``--ready`` as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

NO_CONTENT = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"


@dataclass
class Stats:
    requests: int = 0
    ids: set[bytes] = field(default_factory=set)
    first: float = 0.0
    last: float = 0.0

    def record(self, msg_id: bytes) -> None:
        now = time.time()
        self.requests += 1
        self.ids.add(msg_id)
        self.first = self.first or now
        self.last = now

    def as_json(self) -> bytes:
        return json.dumps({"requests": self.requests, "ids": len(self.ids),
                           "first": self.first, "last": self.last}).encode()


class Receiver(asyncio.Protocol):
    """HTTP/1.1 just enough for one client's keep-alive POSTs: headers, a body, 204."""

    def __init__(self, stats: Stats, delay: float) -> None:
        self.stats, self.delay = stats, delay
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end].decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in
                       (line.partition(":") for line in head[1:])}
            length = int(headers.get("content-length", "0"))
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length:]
            if head[0].startswith("GET /stats"):
                body = self.stats.as_json()
                self._write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                            b"content-length: %d\r\n\r\n%s" % (len(body), body))
                continue
            self.stats.record(headers.get("webhook-id", "").encode())
            if self.delay:
                asyncio.get_running_loop().call_later(self.delay, self._write, NO_CONTENT)
            else:
                self._write(NO_CONTENT)

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


async def serve(ports: list[int], delays: list[float], ready: Path | None) -> None:
    loop = asyncio.get_running_loop()
    servers, bound = [], []
    for port, delay in zip(ports, delays, strict=True):
        stats = Stats()
        server = await loop.create_server(functools.partial(Receiver, stats, delay),
                                          "127.0.0.1", port, backlog=1024)
        servers.append(server)
        bound.append(server.sockets[0].getsockname()[1])
    if ready is not None:
        temporary = ready.with_suffix(".tmp")
        temporary.write_text(json.dumps(bound))
        temporary.replace(ready)
    await asyncio.gather(*(server.serve_forever() for server in servers))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ports", type=int, nargs="+", required=True)
    parser.add_argument("--delays", type=float, nargs="+")
    parser.add_argument("--ready", type=Path)
    args = parser.parse_args()
    delays = args.delays or [0.0] * len(args.ports)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.ports, delays, args.ready))


if __name__ == "__main__":
    main()
