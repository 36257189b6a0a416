"""The command path's baselines, served like the real API (uvicorn, a sync route).

``BENCH_BARE_MODE=parse`` (default): a bare FastAPI endpoint that parses the
same body into the same ``DirectiveFields`` model and answers, recording
nothing — the ceiling of HTTP + validation on this machine.

``BENCH_BARE_MODE=eventsourcing``: the same endpoint, then one plain
``eventsourcing`` save per command (a trivial aggregate per contract, in the
store the ``NEEDLE_*`` environment names) — what one transaction per command
costs without Threadneedle's domain.

    uvicorn --factory bench.bare_api:create_app
"""

from __future__ import annotations

import os
import threading
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError
from fastapi import FastAPI

from domain.directives import DirectiveFields
from workflows.settings import Settings


class Ledger(Aggregate):
    """One contract's directives, as plainly as the library allows."""

    def __init__(self, contract_id: str) -> None:
        self.contract_id = contract_id
        self.count = 0

    @staticmethod
    def create_id(contract_id: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"bench-ledger/{contract_id}")

    @event("Issued")
    def issue(self, directive: dict[str, Any]) -> None:
        self.count += 1


class PlainStore(Application):
    """One ``save`` per command, retried on a version conflict; nothing else."""

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__(env=env)
        self._locks = [threading.Lock() for _ in range(64)]

    def issue(self, contract_id: str, directive: dict[str, Any]) -> tuple[int, int]:
        ledger_id = Ledger.create_id(contract_id)
        with self._locks[hash(ledger_id) % 64]:  # as Threadneedle without group commit
            while True:
                try:
                    ledger: Ledger = self.repository.get(ledger_id)
                except AggregateNotFoundError:
                    ledger = Ledger(contract_id)
                ledger.issue(directive)
                try:
                    recordings = self.save(ledger)
                except IntegrityError:
                    continue
                return ledger.version, recordings[-1].notification.id


def create_app() -> FastAPI:
    mode = os.environ.get("BENCH_BARE_MODE", "parse")
    store = PlainStore(Settings().eventsourcing_env()) if mode == "eventsourcing" else None
    app = FastAPI(title=f"bare ({mode})")

    @app.get("/readyz")
    def ready() -> dict[str, str]:
        return {"status": "ready"}

    @app.post("/v1/contracts/{contract_id}/directives", status_code=201)
    def issue(contract_id: str, fields: DirectiveFields) -> dict[str, Any]:
        if store is None:
            return {"id": contract_id, "version": 0, "position": 0}
        version, position = store.issue(contract_id, fields.model_dump(mode="json"))
        return {"id": contract_id, "version": version, "position": position}

    return app
