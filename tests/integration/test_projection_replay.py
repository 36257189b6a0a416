"""Live views and replay agree: the live conflict view after each version equals replay there."""

from __future__ import annotations

import random
from collections.abc import Callable
from uuid import UUID

import redis

from bench.workload import open_contracts, random_command
from workflows import directory
from workflows.bootstrap import bootstrap
from workflows.explanations import explained
from workflows.projection_control import contract_views
from workflows.settings import Settings
from workflows.view_store import partition_of


def test_the_live_conflict_view_at_every_version_equals_the_replayed_view(
    make_settings: Callable[..., Settings], client: redis.Redis,
) -> None:
    # given a randomised history of 220 issues, amendments and withdrawals on one contract
    settings = make_settings()
    services = bootstrap(settings)
    try:
        rng = random.Random(2008)
        (handle,) = open_contracts(services.ledger, 1)
        for _ in range(220):
            random_command(services.ledger, handle, rng)
        final = services.ledger.repository.get(UUID(handle.id))
        assert final.version >= 200

        # when the projector is driven one event at a time
        projector = contract_views(services, partition_of(handle.id)).parts[0]
        projector.batch_size = 1
        generation = projector.store.current()
        seen = []
        while projector.project_batch(generation) is not None:
            document = projector.store.read_conflicts(generation, handle.id)
            if document is None:
                continue
            version = document["version"]
            seen.append(version)

            # then after each version the live view equals the view replayed to that version
            # (explanations included, written from the replayed records as the view writes them)
            replayed = services.ledger.repository.get(UUID(handle.id), version=version)
            live = {conflict["id"]: conflict for conflict in document["conflicts"]}
            names = directory.organisation_names(services.ledger)
            assert live == {key: explained(record, names)
                            for key, record in replayed.conflicts.items()}, f"version {version}"

        # and every version of the contract was seen, in order
        assert seen == list(range(1, final.version + 1))
        assert any(c["status"] == "dissolved" for c in final.conflicts.values())
    finally:
        services.close()
