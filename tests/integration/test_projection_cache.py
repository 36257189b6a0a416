"""A projector whose contract cache is smaller than the contracts it serves.

Evicting a contract also drops what the projector's memos kept of its conflicts
(explanations, conflict JSON, board items); the views must stay what a clean
rebuild writes, whichever contracts come back into the cache later.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
import redis

from bench.workload import open_contracts, random_command
from workflows.bootstrap import bootstrap
from workflows.projection_control import contract_views
from workflows.settings import Settings

from .projection_support import clean_rebuild, live_views, projection_settings

pytestmark = pytest.mark.stack


def test_a_projector_evicting_contracts_between_batches_writes_what_a_rebuild_writes(
    make_settings: Callable[..., Settings], client: redis.Redis,
) -> None:
    # given six contracts in one partition and a projector that caches one contract
    settings = projection_settings(make_settings(), projection_partitions=1)
    services = bootstrap(settings)
    try:
        rng = random.Random(23)
        handles = open_contracts(services.ledger, 6)
        projector = contract_views(services)
        (part,) = projector.parts
        part.cache_size = 1

        # when commands on all of them are projected round after round
        for _ in range(8):
            for _ in range(25):
                random_command(services.ledger, rng.choice(handles), rng)
            assert projector.run().complete

        # then the views equal a clean rebuild's
        assert projector.caught_up()
        assert live_views(client, 1) == clean_rebuild(settings)
    finally:
        services.close()
