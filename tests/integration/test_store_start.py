"""Several processes start on one empty event store at once (a worker pool, the API)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from workflows.ledger import Ledger
from workflows.settings import Settings


def test_applications_started_together_on_an_empty_store_all_come_up(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    failures: list[BaseException] = []
    started = threading.Barrier(6)

    def start() -> None:
        started.wait()
        try:
            Ledger(settings).close()
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
