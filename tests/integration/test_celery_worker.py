"""A real Celery worker process runs the health task; the answer comes back over Redis."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from domain.organisations import OrganisationSpec
from workers.celery_app import create_celery
from workflows import directory
from workflows.identities import BOOTSTRAP_ADMIN
from workflows.ledger import Ledger
from workflows.settings import Settings

from .processes import descendants, settings_env, stop_tree, wait_gone

pytestmark = pytest.mark.stack


def start_worker(settings: Settings, queue: str, log: Path) -> subprocess.Popen[bytes]:
    """``celery -A workers.main worker`` on its own queue, so parallel runs never share work."""
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers.main", "worker",
             "--queues", queue, "--concurrency", "1", "--loglevel", "INFO",
             "--hostname", f"{queue}@%h", "--without-mingle", "--without-gossip"],
            env=settings_env(settings), stdout=output, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )


def test_a_worker_process_answers_the_health_ping_with_the_store_head(
    make_settings: Callable[..., Settings], tmp_path: Path,
) -> None:
    # given a store with a few events, and a worker process on the test Redis
    settings = make_settings()
    app = Ledger(settings)
    for slug in ("haizhu-gov", "qichuang"):
        directory.register_organisation(app, BOOTSTRAP_ADMIN, OrganisationSpec(
            id=slug, name="海珠区", kind="district_government"))
    head = app.head_position()
    app.close()
    queue = f"test-{uuid.uuid4().hex[:12]}"
    worker = start_worker(settings, queue, tmp_path / "worker.log")
    client = create_celery(settings)
    try:
        # when the health task is sent through Redis
        result = client.send_task("threadneedle.ping", queue=queue)
        answer = result.get(timeout=60)

        # then the worker's pool process read the store's head position
        assert answer["head_position"] == head
        assert answer["pid"] in descendants(worker.pid)
    except Exception:
        print((tmp_path / "worker.log").read_text(errors="replace"))
        raise
    finally:
        tree = descendants(worker.pid) | {worker.pid}
        stop_tree(worker)
        client.close()

    # and stopping the worker left no process behind
    assert worker.returncode is not None
    assert wait_gone(tree) == set()


def test_the_celery_app_speaks_json_only_and_acknowledges_late(
    make_settings: Callable[..., Settings],
) -> None:
    # given the app built from settings
    settings = make_settings()
    celery = create_celery(settings)

    # then broker and results are the configured Redis, JSON is the only content type,
    # tasks are acknowledged after they ran, one at a time, and beat pings periodically
    conf = celery.conf
    assert conf.broker_url == settings.redis_url == conf.result_backend
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"
    assert conf.task_acks_late and conf.worker_prefetch_multiplier == 1
    assert conf.task_time_limit and conf.task_soft_time_limit < conf.task_time_limit
    schedule = conf.beat_schedule
    assert {entry["task"] for entry in schedule.values()} == {
        "threadneedle.ping", "threadneedle.project", "threadneedle.refresh_priorities",
        "threadneedle.escalate_lapsed", "threadneedle.webhooks.sweep"}
    # and the webhook sweep runs every NEEDLE_WEBHOOK_SWEEP_SECONDS on the webhooks queue
    [webhooks] = [e for e in schedule.values() if e["task"] == "threadneedle.webhooks.sweep"]
    assert webhooks["schedule"] == settings.webhook_sweep_seconds
    assert webhooks["options"]["queue"] == f"{settings.celery_queue}.webhooks"
    # and the deadline sweep runs every NEEDLE_TIMER_INTERVAL_SECONDS
    [sweep] = [e for e in schedule.values() if e["task"] == "threadneedle.escalate_lapsed"]
    assert sweep["schedule"] == settings.timer_interval_seconds
    celery.loader.import_default_modules()
    assert {"threadneedle.ping", "threadneedle.project", "threadneedle.rebuild",
            "threadneedle.refresh_priorities", "threadneedle.escalate_lapsed",
            "threadneedle.webhooks.dispatch", "threadneedle.webhooks.deliver",
            "threadneedle.webhooks.sweep"} <= set(celery.tasks)
