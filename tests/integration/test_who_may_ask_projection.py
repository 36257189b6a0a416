"""The live conflict view of SPEC §13's events equals the replay at every version: the demo's
Liwan story (admission list, classification, dispute), a wider list and a correction."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import redis

from cli.demo import load_demo
from domain.resolution import Decision
from domain.terms import Admission
from workflows import contracts, directives, directory, resolution
from workflows.bootstrap import bootstrap
from workflows.explanations import explained
from workflows.identities import BOOTSTRAP_ADMIN, contract_id_for
from workflows.projection_control import contract_views
from workflows.settings import Settings
from workflows.view_store import partition_of


def test_section_13_events_project_as_they_replay(
    make_settings: Callable[..., Settings], client: redis.Redis,
) -> None:
    settings = make_settings()
    services = bootstrap(settings)
    try:
        app = services.ledger
        keys = {(k.org, k.role): k for k in load_demo(app, settings.var_dir).keys}
        liwan = str(contract_id_for("LW-PILOT-2008"))
        directives.change_admission(app, BOOTSTRAP_ADMIN, liwan,
                                    Admission.model_validate({"admission": [
            {"org": "jinhua-street", "task_types": ["casework", "census"]},
            {"org": "liwan-civil-affairs", "task_types": ["*"]}]}))
        contract = contracts.read_contract(app, BOOTSTRAP_ADMIN, liwan)
        disputed = next(c for c in contract.conflicts.values() if c["kind"] == "disputed")
        bureau = directory.authenticate(app, keys[("liwan-civil-affairs", "resolver")].key)
        assert bureau is not None
        resolution.resolve_conflict(app, bureau, liwan, disputed["id"], Decision.model_validate({
            "outcome": "corrected", "corrections": {"people_affected": 58},
            "rationale": "按在册低保家庭核减"}))
        final = app.repository.get(UUID(liwan))

        projector = contract_views(services, partition_of(liwan)).parts[0]
        projector.batch_size = 1
        generation = projector.store.current()
        names = directory.organisation_names(app)
        seen = []
        while projector.project_batch(generation) is not None:
            document = projector.store.read_conflicts(generation, liwan)
            if document is None or document["version"] in seen:
                continue
            version = document["version"]
            seen.append(version)
            replayed = app.repository.get(UUID(liwan), version=version)
            live = {conflict["id"]: conflict for conflict in document["conflicts"]}
            assert live == {key: explained(record, names)
                            for key, record in replayed.conflicts.items()}, f"version {version}"
        assert seen[-1] == final.version
        kinds = {(c["kind"], c["status"]) for c in final.conflicts.values()}
        assert {("not_admitted", "dissolved"), ("disputed", "resolved"),
                ("not_admitted", "open")} <= kinds
    finally:
        services.close()
