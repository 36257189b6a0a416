"""Drill: PostgreSQL crashes and comes back while clients are issuing directives.

The cluster is the drill's own (``initdb`` in a temporary folder), stopped with
``pg_ctl -m immediate`` — every backend killed mid-transaction, crash recovery on
the next start — while six clients keep sending commands through a real uvicorn
process.  It proves that clients are told 503 ``store_unavailable`` with
``Retry-After`` (a problem document, never a 500), that ``/readyz`` says "not
ready" while the store is down, that the same API process serves again by itself
once PostgreSQL is back, and that after the clients' retries with the same
``Idempotency-Key`` the store holds every command exactly once on an intact hash
chain: nothing half-written.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import httpx
import pytest
from conftest import ADMIN_KEY
from e2e.client import Needle, World

from workflows.settings import Settings

from .support import ApiProcess, Burst, Postgres, check_ledger, wait_until

pytestmark = pytest.mark.stack


def test_a_postgresql_crash_answers_503_with_retry_after_and_loses_or_doubles_nothing(
    postgres: Postgres, drill_settings: Callable[..., Settings],
    api_process: Callable[..., ApiProcess],
) -> None:
    # given the API on a PostgreSQL cluster of the drill's own, and clients issuing directives
    api = api_process(drill_settings(event_store=postgres.url))
    api.start()
    assert api.process is not None
    admin = Needle(api.base_url, ADMIN_KEY)
    world = World.build(admin)
    events_before = world.version()
    burst = Burst(api.base_url, world.contract_id,
                  [world.keys["street"], world.keys["provider"]]).start()
    try:
        burst.wait_for_acks(20, 60, "before the crash")

        # when PostgreSQL crashes under them
        postgres.crash()
        down_at = time.monotonic()
        readiness = httpx.get(f"{api.base_url}/readyz", timeout=30)
        wait_until(lambda: bool(burst.answered(503, down_at)), 30,
                   f"a client told 503 while the store is down\n{api.log_tail()}")

        # and comes back
        postgres.start()
        up_at = time.monotonic()
        burst.wait_for_acks(20, 60, f"after PostgreSQL is back\n{api.log_tail()}")
    finally:
        burst.stop()

    # then every answer was an acknowledgement or a 503 problem with Retry-After
    statuses = Counter(answer.status for answer in burst.answers)
    assert set(statuses) <= {200, 201, 503}, (statuses, api.log_tail())
    refusals = burst.answered(503)
    assert refusals
    for refusal in refusals:
        assert refusal.content_type.startswith("application/problem+json"), refusal
        assert refusal.body["code"] == "store_unavailable", refusal
        assert refusal.body["status"] == 503 and refusal.body["type"].endswith("store_unavailable")
        assert refusal.retry_after is not None and int(refusal.retry_after) >= 1, refusal

    # and /readyz said not ready while the store was down
    assert readiness.status_code == 503, readiness.text
    assert readiness.json()["checks"]["event_store"]["status"] == "failed"
    assert readiness.headers["retry-after"]

    # and the same API process recovered by itself
    assert api.process.poll() is None
    assert httpx.get(f"{api.base_url}/readyz", timeout=30).status_code == 200
    first_after = min(a.at for a in burst.answers if a.status in (200, 201) and a.at > up_at)
    print(f"first acknowledgement {first_after - up_at:.2f} s after PostgreSQL was back; "
          f"{len(refusals)} 503s; {burst.acks()} commands")

    # and after the retries the store holds each command once, on an intact chain
    check_ledger(admin, world.contract_id, burst, events_before)
