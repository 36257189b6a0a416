"""A rebuild fills a new generation beside the live one and switches atomically."""

from __future__ import annotations

import json
import random
import threading
import time
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
from workflows import explanations
from workflows.bootstrap import bootstrap
from workflows.projection_control import (
    contract_views,
    rebuild_if_texts_changed,
    request_rebuild,
    wake_projections,
)
from workflows.settings import Settings
from workflows.texts_version import texts_fingerprint
from workflows.view_store import partition_of, read_board, read_contract_view, texts_key

from .projection_support import (
    clean_rebuild,
    commanded,
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


def test_a_worker_started_with_new_texts_rebuilds_views_written_with_old_ones(
    make_settings: Callable[..., Settings], client: redis.Redis, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given live views whose explanations an older release wrote (another text, another
    # fingerprint beside them)
    settings = projection_settings(make_settings())
    services = bootstrap(settings)
    ours = texts_fingerprint()  # (remembered before the older texts stand in below)
    try:
        commanded(services.ledger, contracts=6, commands=80, seed=21)
        with monkeypatch.context() as older:
            older.setattr(explanations, "explain", lambda record, names, language: "旧的说明")
            projector = contract_views(services)
            assert projector.run().complete
        every = list(range(len(projector.parts)))
        olds = projector.current(every)
        for part in projector.parts:
            client.set(texts_key(part.name, part.store.current()), "an-older-release")
        assert "旧的说明" in json.dumps(live_views(client), ensure_ascii=False)

        # when a worker of this release starts
        with workers(settings, tmp_path / "worker.log"):
            deadline = time.monotonic() + 60
            while projector.current(every) == olds or not projector.caught_up():
                assert time.monotonic() < deadline, projector.status()
                time.sleep(0.05)

        # then it rebuilt the views with this release's texts, and says which they are
        assert live_views(client) == clean_rebuild(settings)
        assert {part.store.texts_of(part.store.current()) for part in projector.parts} == {ours}
        # and a worker starting again with the same texts rebuilds nothing
        assert rebuild_if_texts_changed(services) is None
        assert not projector.rebuilding(every)
    finally:
        services.close()


def test_views_not_written_yet_need_no_rebuild_for_their_texts(
    make_settings: Callable[..., Settings], client: redis.Redis,
) -> None:
    # given a new deployment: events recorded, no view written yet
    services = bootstrap(projection_settings(make_settings()))
    try:
        commanded(services.ledger, contracts=2, commands=10, seed=22)

        # when a worker starts, then nothing is rebuilt: the live generations it finds
        # (or makes) are this release's, and say so
        assert rebuild_if_texts_changed(services) is None
        projector = contract_views(services)
        assert not projector.rebuilding(list(range(len(projector.parts))))
        assert {part.store.texts_of(part.store.current())
                for part in projector.parts} == {texts_fingerprint()}
    finally:
        services.close()


def test_only_the_partitions_made_with_other_texts_are_rebuilt(
    make_settings: Callable[..., Settings], client: redis.Redis,
) -> None:
    # given views in every partition, one of them made by an older release (no fingerprint)
    services = bootstrap(projection_settings(make_settings()))
    try:
        commanded(services.ledger, contracts=8, commands=40, seed=23)
        projector = contract_views(services)
        assert projector.run().complete
        old = projector.parts[1]
        client.delete(texts_key(old.name, old.store.current()))

        # when a worker starts, then that partition alone is rebuilt
        [fresh] = rebuild_if_texts_changed(services).split(",")
        assert [part.partition for part in projector.parts if part.store.building()] == [1]
        assert old.store.building() == fresh and old.store.texts_of(fresh) == texts_fingerprint()
    finally:
        services.close()
