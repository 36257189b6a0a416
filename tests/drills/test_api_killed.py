"""Drill: the API process is killed with SIGKILL in the middle of a burst of commands.

Six clients keep issuing directives through a real uvicorn process; it is killed
with ``kill -9`` (no shutdown: requests in flight are cut off, answers lost) and
started again on the same port and store.  Each client repeats a command that got
no answer with the same ``Idempotency-Key`` until it is acknowledged, as a careful
client does.  It proves that every acknowledged command is in the store, that
none is recorded twice (a command whose commit landed but whose answer was lost
is answered from its idempotency record, saved in the same transaction), that
answers given before the kill still hold, and that the hash chain is intact.
Runs on the run's store: SQLite in ``make test``, PostgreSQL in ``make test-postgres``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ADMIN_KEY, fresh_store
from e2e.client import Needle, World

from workflows.settings import Settings

from .support import ApiProcess, Burst, check_ledger, wait_until

pytestmark = pytest.mark.stack


def test_an_api_killed_mid_burst_keeps_every_acknowledged_command_and_records_none_twice(
    tmp_path: Path, drill_settings: Callable[..., Settings],
    api_process: Callable[..., ApiProcess],
) -> None:
    # given the API as a process of its own, and clients issuing directives through it
    api = api_process(drill_settings(**fresh_store(tmp_path)))
    api.start()
    admin = Needle(api.base_url, ADMIN_KEY)
    world = World.build(admin)
    events_before = world.version()
    burst = Burst(api.base_url, world.contract_id,
                  [world.keys["street"], world.keys["provider"]]).start()
    try:
        burst.wait_for_acks(30, 60, "before the kill")

        # when the API is killed with SIGKILL mid-burst, and started again
        acked_before_kill = dict(burst.acked)
        api.kill()
        killed_at = time.monotonic()
        wait_until(lambda: bool(burst.answered(None, killed_at)), 10,
                   "clients find the API gone")
        api.start()
        burst.wait_for_acks(30, 60, f"after the restart\n{api.log_tail()}")
    finally:
        burst.stop()

    # then clients saw only acknowledgements or no answer at all (never a 5xx)
    assert {answer.status for answer in burst.answers} <= {200, 201, None}, api.log_tail()
    cut_off = {answer.key for answer in burst.answered(None)}
    assert cut_off, "no command was cut off by the kill"

    # and every answer given before the kill still holds
    for key, ack in acked_before_kill.items():
        assert burst.acked[key] == ack

    # and the store holds each command exactly once, on an intact chain
    check_ledger(admin, world.contract_id, burst, events_before)

    # and repeating a command that was cut off records nothing more
    key = sorted(cut_off)[0]
    client = admin.as_key(burst.senders[key])
    version = world.version()
    again = client.post(f"{world.path}/directives", json=burst.bodies[key],
                        headers={"Idempotency-Key": key})
    assert again.status_code in (200, 201), again.text
    assert again.json()["id"] == burst.acked[key]["id"]
    assert again.json()["version"] == burst.acked[key]["version"]
    assert world.version() == version
    print(f"{len(cut_off)} commands cut off by the kill; {burst.acks()} commands in all")
