"""Drill: Redis crashes (losing everything in it) and comes back while clients issue commands.

Redis holds only the views and the broker, without persistence, so a SIGKILL and a
restart on the same port leave it empty: every view, the projection's position,
any queued task.  Clients keep issuing directives through a real uvicorn process
the whole time, and a real Celery worker and beat (safety net every second) keep
projecting.  It proves that commands are still acknowledged while Redis is down
(the event store is the truth), that live views answer 503 with ``Retry-After``
meanwhile, and that once Redis is back the same worker rebuilds the views from
the log by itself: every acknowledged directive is in them, and they equal both a
clean rebuild and the views replayed from the store.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from conftest import ADMIN_KEY, fresh_store
from e2e.client import Needle, World
from e2e.serving import start_celery
from integration.processes import stop_tree
from integration.projection_support import clean_rebuild, live_views

from workflows.settings import Settings
from workflows.view_store import read_position

from .support import ApiProcess, Burst, RedisServer, wait_until

pytestmark = pytest.mark.stack

PROJECTION_ENV = {"NEEDLE_PROJECTION_INTERVAL_SECONDS": "1",
                  "NEEDLE_PROJECTION_LOCK_SECONDS": "2"}


@contextmanager
def worker_and_beat(settings: Settings, folder: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A Celery worker and beat on the settings' queue; yields the worker."""
    worker = start_celery(settings, folder / "worker.log", "worker", "--concurrency", "1",
                          "--hostname", f"drill-{uuid.uuid4().hex[:8]}@%h",
                          "--without-mingle", "--without-gossip", **PROJECTION_ENV)
    beat = start_celery(settings, folder / "beat.log", "beat",
                        "--schedule", str(folder / "beat-schedule"), **PROJECTION_ENV)
    try:
        yield worker
    except BaseException:
        print((folder / "worker.log").read_text(errors="replace")[-4000:])
        raise
    finally:
        stop_tree(beat, grace=5)
        stop_tree(worker, grace=5)


def test_a_redis_crash_loses_no_view_and_the_worker_rebuilds_them_by_itself(
    tmp_path: Path, drill_redis: RedisServer, drill_settings: Callable[..., Settings],
    api_process: Callable[..., ApiProcess],
) -> None:
    # given the API, a worker and beat, and clients issuing directives
    settings = drill_settings(**fresh_store(tmp_path))
    api = api_process(settings, **PROJECTION_ENV)
    api.start()
    admin = Needle(api.base_url, ADMIN_KEY)
    world = World.build(admin)
    views = f"{world.path}/conflicts"
    with worker_and_beat(settings, tmp_path) as worker:
        burst = Burst(api.base_url, world.contract_id,
                      [world.keys["street"], world.keys["provider"]], clients=4).start()
        try:
            burst.wait_for_acks(20, 60, "before the crash")
            position = max(ack["position"] for ack in burst.acked.values())
            before = admin.get(views, params={"min_position": position, "wait": 30})
            assert before.status_code == 200, before.text

            # when Redis crashes: commands are still acknowledged, live views answer 503
            drill_redis.crash()
            burst.wait_for_acks(10, 30, f"while Redis is down\n{api.log_tail()}")
            unavailable = admin.get(views)

            # and comes back empty
            drill_redis.start()
            burst.wait_for_acks(10, 30, "after Redis is back")
        finally:
            burst.stop()
        assert {answer.status for answer in burst.answers} == {201}, api.log_tail()
        assert unavailable.status_code == 503, unavailable.text
        assert unavailable.headers["content-type"].startswith("application/problem+json")
        assert unavailable.headers["retry-after"]

        # then the same worker, reconnected, rebuilds the views from the log by itself
        position = max(ack["position"] for ack in burst.acked.values())
        live = admin.get(views, params={"min_position": position, "wait": 30})
        assert live.status_code == 200, (live.text, api.log_tail())
        assert worker.poll() is None
        client = redis.Redis.from_url(drill_redis.url)
        wait_until(lambda: read_position(client) >= position, 30,
                   "the projection reaches the head")
        rebuilt = clean_rebuild(settings)
        assert live_views(client) == rebuilt
        client.close()

    # and every acknowledged directive is in the live views, which equal a replay
    version = world.version()
    replayed = admin.ok("GET", views, params={"version": version})
    assert live.json()["conflicts"] == replayed["conflicts"]
    priorities = admin.ok("GET", f"{world.path}/priorities")
    assert {p["directive_id"] for p in priorities["priorities"]} == \
        {ack["id"] for ack in burst.acked.values()}
    replayed_priorities = admin.ok("GET", f"{world.path}/priorities", params={"version": version})
    assert priorities["priorities"] == replayed_priorities["priorities"]
