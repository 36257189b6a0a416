"""Projection faults with a real Redis and real Celery worker processes.

Each test ends by comparing every view key of the live generation with the
views a fresh projector writes from the whole log into a fresh generation.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from bench.workload import (
    LIGHT_HOURS,
    SPARSE_SUBJECTS,
    issue_in_bulk,
    open_contracts,
    random_command,
)
from workflows.bootstrap import Services, bootstrap
from workflows.projection_control import contract_views, wake_projections
from workflows.settings import Settings

from .projection_support import (
    clean_rebuild,
    commanded,
    kill_tree,
    live_views,
    projection_settings,
    send_project,
    wait_caught_up,
    workers,
)

pytestmark = pytest.mark.stack


def bulk_history(services: Services, contracts: int, rounds: int, per_round: int) -> None:
    rng = random.Random(7)
    handles = open_contracts(services.ledger, contracts)
    for _ in range(rounds):
        for handle in handles:
            issue_in_bulk(services.ledger, handle, per_round, rng, SPARSE_SUBJECTS, LIGHT_HOURS)


def test_a_worker_killed_mid_batch_leaves_views_a_new_worker_completes_to_a_clean_rebuild(
    make_settings: Callable[..., Settings], client: redis.Redis, tmp_path: Path,
) -> None:
    # given a log of over a thousand contract events, projected in small batches
    settings = projection_settings(make_settings(), projection_batch_size=5)
    services = bootstrap(settings)
    try:
        bulk_history(services, contracts=12, rounds=2, per_round=50)
        head = services.ledger.head_position()
        projector = contract_views(services)  # (positions: the lowest of the partitions')
        log = tmp_path / "worker.log"

        # when a worker is killed with SIGKILL twice while it is half way through the log
        kills = []
        for _ in range(2):
            with workers(settings, log) as (worker,):
                # (nudged like beat would, since the killed worker's lease must lapse first)
                deadline = time.monotonic() + 60
                start = projector.position()
                nudged = 0.0
                while projector.position() <= start and time.monotonic() < deadline:
                    if time.monotonic() - nudged > 0.5:
                        send_project(services)
                        nudged = time.monotonic()
                    time.sleep(0.01)
                time.sleep(random.uniform(0.01, 0.08))
                kill_tree(worker)
                kills.append(projector.position())
        assert all(0 < position < head for position in kills), (kills, head)

        # and a new worker takes over once the dead one's lease lapses
        with workers(settings, log):
            wait_caught_up(services, timeout=90)

        # then the views equal a clean rebuild
        assert live_views(client) == clean_rebuild(settings)
    finally:
        services.close()


def test_redis_emptied_mid_stream_ends_with_views_equal_to_a_clean_rebuild(
    make_settings: Callable[..., Settings], client: redis.Redis, tmp_path: Path,
) -> None:
    # given a worker projecting while commands arrive, each followed by a wake
    settings = projection_settings(make_settings())
    services = bootstrap(settings)
    try:
        rng = random.Random(11)
        handles = open_contracts(services.ledger, 4)
        with workers(settings, tmp_path / "worker.log"):
            for step in range(160):
                random_command(services.ledger, rng.choice(handles), rng)
                wake_projections(services)
                # when Redis is emptied half way through
                if step == 80:
                    wait_caught_up(services, timeout=30)
                    client.flushdb()

            # then the views come back, rebuilt from the log
            wait_caught_up(services, timeout=60)
            assert live_views(client) == clean_rebuild(settings)
    finally:
        services.close()


def test_duplicate_deliveries_and_two_workers_at_once_apply_nothing_twice(
    make_settings: Callable[..., Settings], client: redis.Redis, tmp_path: Path,
) -> None:
    # given two worker processes of two pool processes each on one queue
    settings = projection_settings(make_settings(), projection_batch_size=25)
    services = bootstrap(settings)
    try:
        rng = random.Random(5)
        handles = open_contracts(services.ledger, 6)
        with workers(settings, tmp_path / "worker.log", count=2, concurrency=2):
            # when commands arrive while the same task is delivered many times over
            for step in range(120):
                random_command(services.ledger, rng.choice(handles), rng)
                if step % 10 == 0:
                    for _ in range(4):
                        services.celery.send_task(
                            "threadneedle.project", queue=settings.celery_queue,
                            task_id="the-same-task-id")
                    wake_projections(services)
            wait_caught_up(services, timeout=60)

            # then the views equal a clean rebuild
            assert live_views(client) == clean_rebuild(settings)
    finally:
        services.close()


def test_two_projectors_racing_without_the_lease_commit_each_batch_once(
    make_settings: Callable[..., Settings], client: redis.Redis,
) -> None:
    # given a history and two projectors that ignore the lease (a lapsed lease, a stuck worker)
    settings = projection_settings(make_settings(), projection_batch_size=7)
    services = bootstrap(settings)
    try:
        commanded(services.ledger, contracts=3, commands=90, seed=3)
        first, second = contract_views(services), contract_views(services)
        generations = [part.store.current() for part in first.parts]

        # when both catch the same generation up at the same time, batch against batch
        errors: list[BaseException] = []

        def drive(projector: object) -> None:
            try:
                for part, generation in zip(projector.parts, generations, strict=True):  # type: ignore[attr-defined]
                    part.catch_up(generation)
            except BaseException as error:  # pragma: no cover - reported below
                errors.append(error)

        threads = [threading.Thread(target=drive, args=(p,)) for p in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        # then nothing was applied twice: the views equal a clean rebuild
        assert errors == []
        assert first.position() == services.ledger.head_position()
        assert live_views(client) == clean_rebuild(settings)
    finally:
        services.close()
