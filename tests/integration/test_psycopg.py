"""PostgreSQL is reached through psycopg's binary (or C) implementation, never the pure-Python one.

The pure-Python implementation runs every row through Python code and needs a
system libpq (``python:3.11-slim`` has none); ``psycopg[binary]`` bundles libpq
and the C speed-ups (issue 15).
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest
from conftest import USES_POSTGRES

from workflows.ledger import Ledger
from workflows.settings import Settings


def test_psycopg_uses_its_compiled_implementation() -> None:
    assert psycopg.pq.__impl__ in ("binary", "c"), (
        f"psycopg uses its {psycopg.pq.__impl__} implementation: install psycopg[binary]")
    assert psycopg.pq.version() >= 140000  # the libpq it was built with, not an old system one


@pytest.mark.skipif(not USES_POSTGRES, reason="PostgreSQL runs in make test-postgres")
def test_the_event_store_talks_to_postgresql_through_it(
    make_settings: Callable[..., Settings],
) -> None:
    app = Ledger(make_settings())
    try:
        recorder = app.recorder
        with recorder.datastore.get_connection() as connection:  # type: ignore[attr-defined]
            assert type(connection.pgconn).__module__.startswith(
                ("psycopg_binary", "psycopg_c")), type(connection.pgconn)
            assert connection.execute("SELECT 1").fetchone() is not None
    finally:
        app.close()
