"""One projection batch on a hot contract, timed in-process: where the hot-contract lag of
``bench/projections.py`` comes from, without its worker, its load and their noise.

    .venv/bin/python bench/hot_batch.py [--directives 5000] [--per-batch 8] [--batches 40]
    .venv/bin/python bench/hot_batch.py --profile        # cProfile of the timed batches

A contract grows to ``--directives`` active directives (the hot run's mix: sparse
subjects, light hours) on a temporary SQLite store; a projector catches up with it,
then each of ``--batches`` rounds issues ``--per-batch`` directives through the
application and runs the projector once (one batch: fold, rank, encode, commit to Redis).
Prints the median wall and CPU time of a batch after the first ten.  Compare trees in
alternating runs: the machine is shared.  Uses ``NEEDLE_BENCH_REDIS_URL`` (default
``redis://127.0.0.1:6379/9``, flushed).  Nothing is written to ``docs/``.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from projections import settings_for  # noqa: E402  (bench/, beside this script)
from workload import (  # noqa: E402
    ISSUERS,
    LIGHT_HOURS,
    SPARSE_SUBJECTS,
    issue_in_bulk,
    open_contracts,
    random_fields,
)

from workflows import directives  # noqa: E402
from workflows.bootstrap import bootstrap  # noqa: E402
from workflows.projection_control import PartitionedViews, contract_views  # noqa: E402

WARM = 10
"""Batches not timed: the projector's memos fill in the first ones."""


def timed_batch(views: PartitionedViews) -> None:
    views.run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--directives", type=int, default=5_000)
    parser.add_argument("--per-batch", type=int, default=8)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    os.environ.pop("NEEDLE_EVENT_STORE", None)  # settings_for: a temporary SQLite file
    redis_url = os.environ.get("NEEDLE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
    with tempfile.TemporaryDirectory() as folder:
        services = bootstrap(settings_for(redis_url, Path(folder), projection_partitions=1))
        assert services.redis is not None
        services.redis.flushdb()
        try:
            (handle,) = open_contracts(services.ledger, 1, prefix="HOT")
            rng = random.Random(5)
            while len(handle.active) < args.directives:
                issue_in_bulk(services.ledger, handle, 200, rng, SPARSE_SUBJECTS, LIGHT_HOURS)
            views = contract_views(services)
            views.run()
            walls, cpus, profile = [], [], cProfile.Profile()
            for number in range(args.batches):
                for turn in range(args.per_batch):
                    directives.issue_directive(
                        services.ledger, handle.callers[ISSUERS[turn % len(ISSUERS)]],
                        handle.id, random_fields(rng, SPARSE_SUBJECTS, LIGHT_HOURS))
                profiled = args.profile and number >= WARM
                wall, cpu = time.perf_counter(), time.process_time()
                if profiled:
                    profile.enable()
                timed_batch(views)
                if profiled:
                    profile.disable()
                walls.append(1000 * (time.perf_counter() - wall))
                cpus.append(1000 * (time.process_time() - cpu))
        finally:
            services.redis.flushdb()
            services.close()
    wall, cpu = statistics.median(walls[WARM:]), statistics.median(cpus[WARM:])
    print(f"a batch of {args.per_batch} directives into a contract grown to "
          f"{len(handle.active):,} active directives: median {wall:.1f} ms wall, "
          f"{cpu:.1f} ms CPU ({args.batches - WARM} batches)")
    if args.profile:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()
