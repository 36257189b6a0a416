"""Scale-out: two API processes and two workers on one PostgreSQL, commands on both APIs.

Runs where the store is PostgreSQL (``make test-postgres``): SQLite is one machine's
file, so several processes on one store is PostgreSQL's case.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import redis
from conftest import ADMIN_KEY, USES_POSTGRES, fresh_store
from e2e.client import Needle, World
from e2e.serving import start_celery
from integration.processes import stop_tree
from integration.projection_support import clean_rebuild, live_views, wait_caught_up
from integration.webhook_receiver import Answer, Receiver

from workflows.bootstrap import bootstrap
from workflows.projection_control import contract_views
from workflows.settings import Settings

from .support import ApiProcess, Burst, all_events, check_ledger, wait_until

pytestmark = pytest.mark.skipif(
    not USES_POSTGRES, reason="one PostgreSQL for every process: runs in make test-postgres")

ENV = {"NEEDLE_PROJECTION_PARTITIONS": "4", "NEEDLE_PROJECTION_LOCK_SECONDS": "5",
       "NEEDLE_WEBHOOK_ALLOWED_CIDRS": "127.0.0.0/8"}


@contextmanager
def worker(settings: Settings, log: Path, *arguments: str) -> Iterator[None]:
    process = start_celery(settings, log, "worker", "--without-mingle", "--without-gossip",
                           "--hostname", f"scale-{uuid.uuid4().hex[:6]}@%h",
                           *(arguments or ("--concurrency", "2")), **ENV)
    try:
        yield
    finally:
        stop_tree(process, grace=10)


def test_two_apis_and_two_workers_on_one_postgresql_lose_double_and_reorder_nothing(
    tmp_path: Path, drill_settings: Callable[..., Settings],
    api_process: Callable[..., ApiProcess],
) -> None:
    # given two API processes and two workers (two pool processes each) on one PostgreSQL
    settings = drill_settings(**fresh_store(tmp_path), projection_partitions=4)
    apis = [api_process(settings, **ENV) for _ in range(2)]
    for api in apis:
        api.start()
    admins = [Needle(api.base_url, ADMIN_KEY) for api in apis]
    worlds = [World.build(admins[n % 2]) for n in range(4)]  # contracts over the partitions
    before = {world.contract_id: len(all_events(admins[0], world.contract_id))
              for world in worlds}

    logs = [tmp_path / "worker-0.log", tmp_path / "worker-1.log"]
    services = bootstrap(settings)
    client = redis.Redis.from_url(settings.redis_url or "")
    try:
        with ExitStack() as stack:
            # (and a webhook subscription to every directive, delivered by a webhooks worker)
            receiver = stack.enter_context(Receiver([Answer(204)]).running())
            admins[1].ok("POST", "/v1/webhooks", 201, json={
                "url": receiver.url("/扩容"), "event_types": ["directive.issued"],
                "description": "扩容演练 scale-out drill"})
            for log in logs:
                stack.enter_context(worker(settings, log))
            stack.enter_context(worker(
                settings, tmp_path / "webhooks.log", "--queues",
                f"{settings.celery_queue}.webhooks", "-P", "threads", "--concurrency", "4"))

            # when clients issue directives on every contract through both APIs at once
            bursts = [
                Burst(apis[n % 2].base_url, world.contract_id,
                      [world.keys["street"], world.keys["provider"]], clients=2).start()
                for n, world in enumerate(worlds)
            ]
            for burst in bursts:
                burst.wait_for_acks(12, 120, "on every contract")
            for burst in bursts:
                burst.stop()

            # then every partition's views reach the head of the log, with beat's periodic
            # project task as in service (every NEEDLE_PROJECTION_INTERVAL_SECONDS): a wake
            # can still be left behind when workers start inside a burst (see the note in
            # docs/decisions.md on wakes), and beat is what catches it
            projector = contract_views(services)
            wait_caught_up(services, 60, nudge_every=settings.projection_interval_seconds)

            # and no command is lost, doubled or out of order (versions contiguous, each
            # acknowledgement naming the event that holds it, the hash chain verified)
            for world, burst in zip(worlds, bursts, strict=True):
                check_ledger(admins[1], world.contract_id, burst, before[world.contract_id])
                assert {answer.status for answer in burst.answers} == {201}

            # and the views equal a clean rebuild, and each contract's live conflicts its
            # replay at its version, read through the other API
            assert live_views(client) == clean_rebuild(settings)
            for n, world in enumerate(worlds):
                reader = admins[(n + 1) % 2]
                version = int(reader.contract(world.contract_id)["version"])
                live = reader.ok("GET", f"{world.path}/conflicts",
                                 params={"min_position": projector.position(), "wait": 30})
                replayed = reader.ok("GET", f"{world.path}/conflicts",
                                     params={"version": version})
                assert live["conflicts"] == replayed["conflicts"]

            # and every directive reached the webhook once, in order per contract, no gaps
            issued = {world.contract_id: len(burst.acked)
                      for world, burst in zip(worlds, bursts, strict=True)}

            def delivered() -> dict[str, list[int]]:
                sequences: dict[str, list[int]] = {}
                for request in list(receiver.received):
                    data = json.loads(request.body)["data"]
                    sequences.setdefault(data["contract_id"], []).append(data["sequence"])
                return sequences

            wait_until(lambda: {c: len(s) for c, s in delivered().items()} == issued, 90,
                       f"every directive delivered once: {issued}")
            for sequences in delivered().values():
                assert sequences == list(range(1, len(sequences) + 1))
            ids = [request.headers["webhook-id"] for request in receiver.received]
            assert len(ids) == len(set(ids))

            # and when every partition is rebuilt (a task each), both workers take a share
            for log in logs:
                log.write_bytes(b"")  # (Celery appends; only what follows counts)
            started = admins[0].ok("POST", "/v1/admin/projections/contracts/rebuild", 202)

            def switched() -> bool:
                items = admins[1].ok("GET", "/v1/admin/projections")["items"]
                return bool(items[0]["generation"] == started["generation"])

            wait_until(switched, 90, "every partition rebuilt and switched")
            assert live_views(client) == clean_rebuild(settings)

        # both workers took part: each projected events, or ran a partition's rebuild task
        # (which of two idle workers gets which of the four tasks is the broker's choice,
        # and a partition another worker already caught up has nothing left to project)
        for log in logs:
            text = log.read_text(errors="replace")
            assert '"event": "projected"' in text or "'contracts.p" in text, log
    finally:
        client.close()
        services.close()
