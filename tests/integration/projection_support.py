"""Helpers for the projection tests: a clean Redis, real workers, and clean-rebuild comparisons."""

from __future__ import annotations

import random
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import redis

from bench.workload import ContractHandle, open_contracts, random_command
from workflows.bootstrap import Services, bootstrap
from workflows.ledger import Ledger
from workflows.projection_control import contract_views
from workflows.settings import Settings
from workflows.view_store import ViewStore, partition_names

from .processes import descendants, settings_env, stop_tree, wait_gone


def projection_settings(settings: Settings, **fields: Any) -> Settings:
    """The test's settings on a queue of its own, so parallel runs never share tasks."""
    return settings.model_copy(update={
        "celery_queue": f"test-{uuid.uuid4().hex[:12]}", "projection_lock_seconds": 2.0,
        **fields,
    })


def commanded(ledger: Ledger, contracts: int, commands: int,
              seed: int) -> list[ContractHandle]:
    """``contracts`` new contracts and ``commands`` random commands spread over them (the
    same history for the same seed); the contracts' handles."""
    rng = random.Random(seed)
    handles = open_contracts(ledger, contracts)
    for _ in range(commands):
        random_command(ledger, rng.choice(handles), rng)
    return handles


def worker_env(settings: Settings) -> dict[str, str]:
    return settings_env(
        settings,
        NEEDLE_CELERY_QUEUE=settings.celery_queue,
        NEEDLE_PROJECTION_BATCH_SIZE=str(settings.projection_batch_size),
        NEEDLE_PROJECTION_LOCK_SECONDS=str(settings.projection_lock_seconds),
    )


def start_worker(settings: Settings, log: Path, concurrency: int = 1) -> subprocess.Popen[bytes]:
    """``celery -A workers.main worker`` consuming the settings' queue."""
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers.main", "worker",
             "--concurrency", str(concurrency), "--loglevel", "INFO",
             "--hostname", f"{uuid.uuid4().hex[:8]}@%h", "--without-mingle",
             "--without-gossip"],
            env=worker_env(settings), stdout=output, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )


@contextmanager
def workers(settings: Settings, log: Path, count: int = 1,
            concurrency: int = 1) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Worker processes, stopped (with every child) when the block ends, whatever happened."""
    started = [start_worker(settings, log, concurrency) for _ in range(count)]
    trees: set[int] = set()
    try:
        yield started
    except BaseException:
        print(log.read_text(errors="replace")[-6000:])
        raise
    finally:
        for process in started:
            trees |= descendants(process.pid) | {process.pid}
            stop_tree(process)
        assert wait_gone(trees) == set()


def kill_tree(process: subprocess.Popen[bytes]) -> None:
    """``kill -9`` the worker and its pool processes at once."""
    import os
    import signal

    for pid in descendants(process.pid) | {process.pid}:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait()


def send_project(services: Services) -> None:
    services.celery.send_task("threadneedle.project", queue=services.settings.celery_queue)


def wait_caught_up(services: Services, timeout: float = 60.0, nudge_every: float = 1.0) -> None:
    """Wait until the live views reach the head with no rebuild open, sending ``project``
    now and then as beat would."""
    projector = contract_views(services)
    deadline = time.monotonic() + timeout
    nudged = 0.0
    while time.monotonic() < deadline:
        if projector.caught_up():
            return
        if time.monotonic() - nudged > nudge_every:
            send_project(services)
            nudged = time.monotonic()
        time.sleep(0.05)
    raise AssertionError(f"views not caught up within {timeout}s: "
                         f"{contract_views(services).status()}")


def live_views(client: redis.Redis, partitions: int | None = None) -> dict[str, Any]:
    """Every partition's live views, by partition."""
    dumped = {}
    for name in partition_names(partitions):
        store = ViewStore(client, name)
        dumped[name] = store.dump(store.current())
    return dumped


def clean_rebuild(settings: Settings) -> dict[str, Any]:
    """The views a fresh projector writes into a fresh generation from the whole log."""
    services = bootstrap(settings)
    try:
        projector = contract_views(services)
        generations, _ = projector.catch_up_fresh()
        dumped = projector.dump(generations)
        projector.drop(generations)
        return dumped
    finally:
        services.close()
