"""A contract's conflicts in Redis: one hash field each, written only where a batch changed
them; a whole conflict document an earlier release wrote is still read, and replaced by the
next projector's first write of that contract."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis

from bench.workload import ContractHandle, open_contracts, random_command
from workflows.bootstrap import Services, bootstrap
from workflows.contracts import read_contract
from workflows.identities import BOOTSTRAP_ADMIN
from workflows.projection_control import contract_views
from workflows.settings import Settings
from workflows.view_store import HEAD_FIELD, conflicts_key, read_contract_view

from .projection_support import clean_rebuild, live_views, projection_settings


@dataclass
class Projected:
    settings: Settings
    services: Services
    handle: ContractHandle
    rng: random.Random

    def key(self) -> str:
        """The contract's conflict hash in the live generation."""
        (part,) = self.services.contract_views.parts
        return conflicts_key(part.store.current(), self.handle.id)


@contextmanager
def projected_contract(make_settings: Callable[..., Settings], seed: int,
                       commands: int) -> Iterator[Projected]:
    """One contract after ``commands`` random commands, projected by the services' projector
    (one partition)."""
    settings = projection_settings(make_settings(), projection_partitions=1)
    services = bootstrap(settings)
    try:
        rng = random.Random(seed)
        (handle,) = open_contracts(services.ledger, 1)
        for _ in range(commands):
            random_command(services.ledger, handle, rng)
        assert services.contract_views.run().complete
        yield Projected(settings, services, handle, rng)
    finally:
        services.close()


def test_a_batch_writes_only_the_conflicts_it_changed_and_reads_join_them(
    make_settings: Callable[..., Settings], client: redis.Redis,
) -> None:
    # given a contract with conflicts, projected
    with projected_contract(make_settings, seed=31, commands=60) as given:
        key = given.key()
        fields = client.hgetall(key)
        assert len(fields) > 2 and HEAD_FIELD.encode() in fields

        # when a command comes, and a conflict it leaves as it was is altered behind the
        # projector's back (which conflict a command touches depends on its random ids)
        ledger = given.services.ledger
        before = read_contract(ledger, BOOTSTRAP_ADMIN, given.handle.id).conflicts
        random_command(ledger, given.handle, given.rng)
        after = read_contract(ledger, BOOTSTRAP_ADMIN, given.handle.id).conflicts
        untouched = next(f for f in fields if f != HEAD_FIELD.encode()
                         and before.get(f.decode()) == after.get(f.decode()))
        marked = {**json.loads(fields[untouched]), "marker": "未改"}
        client.hset(key, untouched, json.dumps(marked, ensure_ascii=False))
        assert given.services.contract_views.run().complete

        # then the next batch left it (it writes only what it changed) and moved the head
        assert json.loads(client.hget(key, untouched)) == marked
        head = json.loads(client.hget(key, HEAD_FIELD))
        read = read_contract_view(client, "conflicts", given.handle.id)
        assert read.value is not None and read.value["version"] == head["version"]
        assert len(read.value["conflicts"]) == len(client.hkeys(key)) - 1
        # in the order they opened, whatever the hash's
        opened = [(c["opened_version"], c["id"]) for c in read.value["conflicts"]]
        assert opened == sorted(opened)


def test_a_conflict_document_of_an_earlier_release_is_read_and_replaced(
    make_settings: Callable[..., Settings], client: redis.Redis,
) -> None:
    # given projected views whose conflict hash is replaced by the whole document an
    # earlier release wrote (one JSON string)
    with projected_contract(make_settings, seed=32, commands=40) as given:
        before = read_contract_view(client, "conflicts", given.handle.id).value
        assert before is not None and before["conflicts"]
        key = given.key()
        client.delete(key)
        client.set(key, json.dumps(before, ensure_ascii=False))

        # then readers still read it, the API's and the projector's
        assert read_contract_view(client, "conflicts", given.handle.id).value == before
        (part,) = given.services.contract_views.parts
        assert part.store.conflicts_head(part.store.current(), given.handle.id)["version"] \
            == before["version"]

        # and a projector started afresh (an upgraded worker) hashes it at its next write
        random_command(given.services.ledger, given.handle, given.rng)
        fresh = bootstrap(given.settings)
        try:
            assert contract_views(fresh).run().complete
        finally:
            fresh.close()
        assert client.type(key) == b"hash"
        assert live_views(client, 1) == clean_rebuild(given.settings)
