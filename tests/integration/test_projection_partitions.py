"""The contracts projection in partitions: where each contract's views live, one Redis Cluster
slot per partition, and a board merged across partitions in due order."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
import redis
from redis.crc import key_slot

from bench.workload import open_contracts, random_command
from workflows import view_store
from workflows.bootstrap import bootstrap
from workflows.projection_control import contract_views, wake_projections
from workflows.settings import Settings

from .projection_support import commanded, projection_settings

pytestmark = pytest.mark.stack


def test_partitions_keep_their_own_contracts_in_one_slot_each_and_the_board_merges(
    make_settings: Callable[..., Settings], client: redis.Redis,
) -> None:
    # given contracts spread over four partitions, projected
    settings = projection_settings(make_settings(), projection_partitions=4)
    services = bootstrap(settings)
    try:
        handles = commanded(services.ledger, contracts=12, commands=150, seed=15)
        projector = contract_views(services)
        assert projector.run().complete and projector.caught_up()

        # then each contract's views are in its own partition and no other
        homes = {view_store.partition_of(handle.id) for handle in handles}
        assert len(homes) > 1  # the contracts really are spread
        for handle in handles:
            home = view_store.partition_of(handle.id)
            assert view_store.partition_of(handle.id.upper()) == home  # any spelling of the id
            for part in projector.parts:
                key = view_store.conflicts_key(part.store.current(), handle.id)
                assert bool(client.exists(key)) == (part.partition == home), part.name
            read = view_store.read_contract_view(client, "conflicts", handle.id)
            assert read.value is not None and read.value["contract_id"] == handle.id
            assert read.position == projector.parts[home].store.position(
                projector.parts[home].store.current())

        # and every key of a partition (views included) hashes to that partition's one slot
        for part in projector.parts:
            keys = [key.decode() for key in client.scan_iter(f"*{{{part.name}}}*", count=1000)]
            assert len(keys) > 3
            assert {key_slot(key.encode()) for key in keys} == {
                key_slot(view_store.current_key(part.name).encode())}

        # and the board is every partition's open conflicts, earliest due first, pageable
        board = view_store.read_board(client).value
        expected = []
        for part in projector.parts:
            items = client.hgetall(view_store.board_items_key(part.store.current()))
            expected += [view_store.json.loads(value) for value in items.values()]
        assert sorted(board, key=view_store._due_order) == board
        assert sorted(map(_member, board)) == sorted(map(_member, expected))
        assert len({UUID(item["contract_id"]) for item in board}) > 1
        assert view_store.read_board(client, 2, 5).value == board[2:6]
        assert view_store.read_board(client).position == projector.position()
    finally:
        services.close()


def test_a_stream_of_commits_to_one_partition_does_not_hold_another_back(
    make_settings: Callable[..., Settings], client: redis.Redis,
) -> None:
    # given a busy contract in one partition and a quiet one in another, projected
    settings = projection_settings(make_settings(), projection_partitions=2)
    services = bootstrap(settings)
    try:
        rng = random.Random(4)
        handles = open_contracts(services.ledger, 8)
        busy = next(h for h in handles if view_store.partition_of(h.id, 2) == 0)
        quiet = next(h for h in handles if view_store.partition_of(h.id, 2) == 1)
        projector = contract_views(services)
        assert projector.run().complete
        busy_part, quiet_part = projector.parts
        serve_busy = busy_part.run_pass
        seen: dict[str, int] = {}

        def busy_pass(deadline: float | None) -> tuple[int, bool, bool]:
            # each pass of the busy partition meets a new commit to it (a steady stream),
            # and during its second pass the quiet contract gets one commit
            answer = serve_busy(deadline)
            passes = seen["busy passes"] = seen.get("busy passes", 0) + 1
            if passes < 6:
                random_command(services.ledger, busy, rng)
                wake_projections(services)
            if passes == 2:
                seen["quiet commit"] = random_command(services.ledger, quiet, rng)
                wake_projections(services)
            if passes == 5:  # the stream has not paused yet
                seen["quiet seen"] = quiet_part.store.position(quiet_part.store.current())
            return answer

        busy_part.run_pass = busy_pass  # type: ignore[method-assign]

        # when one run serves both partitions, starting with the busy one
        report = projector.run(partition=0)

        # then the quiet partition's commit was visible before the stream paused
        assert report.complete and seen["busy passes"] >= 5
        assert seen["quiet seen"] >= seen["quiet commit"]
        assert projector.caught_up()
    finally:
        services.close()


def _member(item: dict[str, object]) -> str:
    return f"{item['contract_id']}:{item['id']}"


def test_the_partitions_of_a_round_read_the_head_and_the_log_once(
    make_settings: Callable[..., Settings], client: redis.Redis,
) -> None:
    # given four partitions projected, and then one commit that wakes them all
    settings = projection_settings(make_settings(), projection_partitions=4)
    services = bootstrap(settings)
    try:
        rng = random.Random(8)
        (handle,) = open_contracts(services.ledger, 1)
        projector = contract_views(services)
        assert projector.run().complete
        random_command(services.ledger, handle, rng)
        wake_projections(services)
        ledger = services.ledger
        counts = {"heads": 0, "reads": 0, "passes": 0}
        head_position, select = ledger.head_position, ledger.recorder.select_notifications

        def counted(name: str, call: Callable[..., Any]) -> Callable[..., Any]:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                counts[name] += 1
                return call(*args, **kwargs)
            return wrapper

        ledger.head_position = counted("heads", head_position)  # type: ignore[method-assign]
        ledger.recorder.select_notifications = counted(  # type: ignore[method-assign]
            "reads", select)
        for part in projector.parts:
            part.run_pass = counted("passes", part.run_pass)  # type: ignore[method-assign]

        # when one run serves them
        report = projector.run()

        # then every partition reached the commit, and each round of passes over the
        # partitions read the head once and the log's batch once, not once per partition
        rounds, head_reads, log_reads = counts["passes"] // 4, counts["heads"], counts["reads"]
        assert report.complete and projector.caught_up()
        assert counts["passes"] == 4 * rounds and rounds >= 1
        assert head_reads == rounds and log_reads <= rounds
    finally:
        services.close()


def test_a_rebuild_of_the_partitions_one_process_leases_reads_each_batch_of_the_log_once(
    make_settings: Callable[..., Settings], client: redis.Redis,
) -> None:
    # given a log of several batches over four partitions, projected, and a rebuild of
    # every partition opened (as ``POST /v1/admin/projections/contracts/rebuild`` does)
    settings = projection_settings(make_settings(), projection_partitions=4)
    services = bootstrap(settings)
    try:
        commanded(services.ledger, contracts=8, commands=120, seed=9)
        projector = contract_views(services)
        for part in projector.parts:  # batches of 20 events: a rebuild pass reads four of them
            part.batch_size, part.bulk_batch_size = 20, 20
        assert projector.run().complete
        live = projector.dump()
        every = list(range(4))
        generations = projector.start_rebuild(every)
        reads: list[tuple[int, int, int]] = []
        select = services.ledger.recorder.select_notifications

        def counted(*, start: int, limit: int, stop: int, **kwargs: Any) -> Any:
            reads.append((start, limit, stop))
            return select(start=start, limit=limit, stop=stop, **kwargs)

        services.ledger.recorder.select_notifications = counted  # type: ignore[method-assign]

        # when one run serves them all, as one worker holding every partition's lease does
        report = projector.run()

        # then every partition switched to its rebuild, which shows what the live views
        # showed, and no batch of the log was read twice: the partitions' passes, each
        # over up to four batches, took the batches the first of them read
        assert report.complete and projector.current(every) == generations
        assert projector.dump() == live
        head = services.ledger.head_position()
        assert len(reads) == len(set(reads)) and len(reads) >= head // 20
    finally:
        services.close()
