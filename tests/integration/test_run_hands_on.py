"""A projection run that stops with work left hands on to a fresh task, whatever the wake
flags say (``workflows.projection_control.hand_on``).

A commit that lands while a run holds a partition sets the partition's wake flag and sends
a task; another worker taking that task finds the lease held and leaves the partition to
the holder.  When the holder then stops for its time budget, the flag is still set, so a
wake (``SET NX``) sends nothing: before, the views waited behind the log until the flag
expired and a later commit came, or beat's periodic run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis

from workers import runtime, tasks
from workflows import messaging
from workflows.bootstrap import bootstrap
from workflows.projection_control import contract_views
from workflows.projections import ContractViews
from workflows.settings import Settings

from .projection_support import commanded, projection_settings

pytestmark = pytest.mark.stack


def test_a_run_out_of_time_hands_on_though_a_commit_left_its_flag_set(
    make_settings: Callable[..., Settings], client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a log the views are far behind (batches of 20 events), served by this process
    settings = projection_settings(make_settings(), projection_batch_size=20)
    services = bootstrap(settings)
    try:
        commanded(services.ledger, contracts=4, commands=80, seed=41)
        monkeypatch.setattr(runtime, "_services", services)
        monkeypatch.setattr(tasks, "RUN_BUDGET_SECONDS", 0.0)  # out of time after one round
        # and, during every pass, a commit whose task another worker took and left here
        real_pass = ContractViews.run_pass

        def pass_with_a_commit(self: ContractViews, deadline: Any) -> Any:
            answer = real_pass(self, deadline)
            client.set(messaging.wake_key(self.name), 1)
            return answer

        monkeypatch.setattr(ContractViews, "run_pass", pass_with_a_commit)
        assert client.llen(settings.celery_queue) == 0

        # when a project task runs out of its time budget
        processed = tasks.project.run(0)

        # then it did some of the work, and sent the task that goes on with the rest
        assert processed > 0 and not contract_views(services).caught_up()
        assert client.llen(settings.celery_queue) == 1
    finally:
        services.close()
