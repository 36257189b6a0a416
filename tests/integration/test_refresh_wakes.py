"""A wake left to the priority refresh is projected by it (``workers.tasks.refresh_priorities``).

A projection pass that finds a partition's lease held leaves the partition, and its wake
flag, to the holder.  The refresh, which a worker sends itself as it starts, holds each
lease in turn, so it must look at the wake flags once it has let go: a scale-out drill
showed views stuck behind the log, with every wake flag set and no task left to serve it,
after a worker started in a burst of commits.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from bench.workload import random_command
from workflows import messaging
from workflows.bootstrap import bootstrap
from workflows.projection_control import contract_views
from workflows.settings import Settings

from .projection_support import clean_rebuild, commanded, live_views, projection_settings, workers

pytestmark = pytest.mark.stack


def test_a_worker_starting_with_woken_partitions_projects_them(
    make_settings: Callable[..., Settings], client: redis.Redis, tmp_path: Path,
) -> None:
    # given live views at today's reference date, then commits whose wakes were left to a
    # holder of the leases (every partition's flag set, no project task sent)
    settings = projection_settings(make_settings())
    services = bootstrap(settings)
    try:
        handles = commanded(services.ledger, contracts=4, commands=30, seed=31)
        projector = contract_views(services)
        assert projector.run().complete
        rng = random.Random(32)
        for _ in range(30):
            random_command(services.ledger, rng.choice(handles), rng)
        for part in projector.parts:
            client.set(messaging.wake_key(part.name), 1)
        assert not projector.caught_up()

        # when a worker starts (it sends itself the refresh, which finds nothing stale)
        with workers(settings, tmp_path / "worker.log"):
            deadline = time.monotonic() + 30
            while not projector.caught_up():
                assert time.monotonic() < deadline, projector.status()
                time.sleep(0.05)

        # then the woken partitions were projected, and equal a clean rebuild
        assert live_views(client) == clean_rebuild(settings)
    finally:
        services.close()
