"""A rebuild fills a new generation beside the live one and switches atomically."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from conftest import TEST_REDIS_URL

from bench.workload import (
    LIGHT_HOURS,
    SPARSE_SUBJECTS,
    issue_in_bulk,
    open_contracts,
    random_command,
)
from workflows.bootstrap import bootstrap
from workflows.projection_control import contract_views, request_rebuild, wake_projections
from workflows.settings import Settings
from workflows.view_store import partition_of, read_board, read_contract_view

from .projection_support import (
    clean_rebuild,
    live_views,
    projection_settings,
    wait_caught_up,
    workers,
)

pytestmark = pytest.mark.stack


def test_a_rebuild_switches_atomically_while_reads_keep_answering(
    make_settings: Callable[..., Settings], client: redis.Redis, tmp_path: Path,
) -> None:
    # given live views of a few thousand events, rebuilt by a worker in small batches
    settings = projection_settings(make_settings(), projection_batch_size=20)
    services = bootstrap(settings)
    try:
        rng = random.Random(9)
        handles = open_contracts(services.ledger, 10)
        for _ in range(2):
            for handle in handles:
                issue_in_bulk(services.ledger, handle, 60, rng, SPARSE_SUBJECTS, LIGHT_HOURS)
        projector = contract_views(services)
        projector.run()
        every = list(range(len(projector.parts)))
        olds = projector.current(every)
        part = projector.parts[partition_of(handles[0].id)]  # the read contract's partition
        old = part.store.current()

        # and a reader that keeps reading a contract's view and the board
        reads: list[tuple[str | None, int, bool, bool]] = []
        stop = threading.Event()

        def keep_reading() -> None:
            reader = redis.Redis.from_url(TEST_REDIS_URL)
            while not stop.is_set():
                view = read_contract_view(reader, "conflicts", handles[0].id)
                board = read_board(reader)
                reads.append((view.generation, view.position, view.value is not None,
                              view.generation in (board.generation or "").split(",")
                              or board.value != []))
            reader.close()

        thread = threading.Thread(target=keep_reading)
        thread.start()
        try:
            with workers(settings, tmp_path / "worker.log"):
                # when a rebuild is asked for while commands keep arriving
                fresh = request_rebuild(services, "contracts")
                assert projector.status()["status"] == "rebuilding"
                assert len(fresh.split(",")) == len(projector.parts)
                for _ in range(30):
                    random_command(services.ledger, rng.choice(handles), rng)
                    wake_projections(services)
                wait_caught_up(services, timeout=60)
        finally:
            stop.set()
            thread.join()

        # then the live generation is the rebuilt one and the old one is gone
        # (in every partition)
        assert projector.current(every) == fresh
        assert set(fresh.split(",")).isdisjoint(olds.split(","))
        for stale in olds.split(","):
            assert all(not p.store.exists(stale) and p.store.dump(stale) == {}
                       for p in projector.parts)
        store = part.store
        assert store.current() in fresh.split(",") and store.current() != old

        # and every read answered a whole view, and positions never went backwards
        assert reads and all(found for _, _, found, _ in reads)
        positions = [position for _, position, _, _ in reads]
        assert positions == sorted(positions)
        assert {generation for generation, *_ in reads} >= {old}

        # and the views equal a clean rebuild
        assert live_views(client) == clean_rebuild(settings)
    finally:
        services.close()
