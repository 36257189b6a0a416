"""A contract's conflicts in Redis: one hash field each, written only where a batch changed
them; a whole conflict document an earlier release wrote is still read, and replaced by the
next projector's first write of that contract."""

from __future__ import annotations

import json
import random
from collections.abc import Callable

import redis

from bench.workload import open_contracts, random_command
from workflows.bootstrap import bootstrap
from workflows.projection_control import contract_views
from workflows.settings import Settings
from workflows.view_store import HEAD_FIELD, conflicts_key, read_contract_view

from .projection_support import clean_rebuild, live_views, projection_settings


def test_a_batch_writes_only_the_conflicts_it_changed_and_reads_join_them(
    make_settings: Callable[..., Settings], client: redis.Redis,
) -> None:
    # given a contract with conflicts, projected
    settings = projection_settings(make_settings(), projection_partitions=1)
    services = bootstrap(settings)
    try:
        rng = random.Random(31)
        (handle,) = open_contracts(services.ledger, 1)
        for _ in range(60):
            random_command(services.ledger, handle, rng)
        projector = contract_views(services)
        assert projector.run().complete
        (part,) = projector.parts
        key = conflicts_key(part.store.current(), handle.id)
        fields = client.hgetall(key)
        assert len(fields) > 2 and HEAD_FIELD.encode() in fields

        # when a conflict field no batch touches is altered behind the projector's back
        untouched = next(f for f in fields if f != HEAD_FIELD.encode())
        marked = {**json.loads(fields[untouched]), "marker": "未改"}
        client.hset(key, untouched, json.dumps(marked, ensure_ascii=False))
        random_command(services.ledger, handle, rng)
        assert projector.run().complete

        # then the next batch left it (it writes only what it changed) and moved the head
        assert json.loads(client.hget(key, untouched)) == marked
        head = json.loads(client.hget(key, HEAD_FIELD))
        read = read_contract_view(client, "conflicts", handle.id)
        assert read.value is not None and read.value["version"] == head["version"]
        assert len(read.value["conflicts"]) == len(client.hkeys(key)) - 1
        # in the order they opened, whatever the hash's
        opened = [(c["opened_version"], c["id"]) for c in read.value["conflicts"]]
        assert opened == sorted(opened)
    finally:
        services.close()


def test_a_conflict_document_of_an_earlier_release_is_read_and_replaced(
    make_settings: Callable[..., Settings], client: redis.Redis,
) -> None:
    # given projected views whose conflict hash is replaced by the whole document an
    # earlier release wrote (one JSON string)
    settings = projection_settings(make_settings(), projection_partitions=1)
    services = bootstrap(settings)
    try:
        rng = random.Random(32)
        (handle,) = open_contracts(services.ledger, 1)
        for _ in range(40):
            random_command(services.ledger, handle, rng)
        assert contract_views(services).run().complete
        before = read_contract_view(client, "conflicts", handle.id).value
        assert before is not None and before["conflicts"]
        (part,) = contract_views(services).parts
        key = conflicts_key(part.store.current(), handle.id)
        client.delete(key)
        client.set(key, json.dumps(before, ensure_ascii=False))

        # then readers still read it, the API's and the projector's
        assert read_contract_view(client, "conflicts", handle.id).value == before
        assert part.store.conflicts_head(part.store.current(), handle.id)["version"] == \
            before["version"]

        # and a projector started afresh (an upgraded worker) hashes it at its next write
        random_command(services.ledger, handle, rng)
        fresh = bootstrap(settings)
        try:
            assert contract_views(fresh).run().complete
        finally:
            fresh.close()
        assert client.type(key) == b"hash"
        assert live_views(client, 1) == clean_rebuild(settings)
    finally:
        services.close()
