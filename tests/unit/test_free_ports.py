"""The ports ``needle up`` and the tests hand to a server are chosen below the range the
kernel gives outgoing connections, so that no process's next connection takes one between
the probe and the server's bind (a test's API once found its port taken in CI)."""

from __future__ import annotations

import socket

from cli.stack import _first_outgoing_port, free_port


def test_a_free_port_is_free_and_below_the_outgoing_range() -> None:
    first_outgoing = _first_outgoing_port()
    for _ in range(20):
        # When a free port is asked for
        port = free_port()
        # Then it lies below the outgoing range, and a server can bind it
        assert 10_000 <= port < first_outgoing
        with socket.socket() as server:
            server.bind(("127.0.0.1", port))
