"""Tampering a hash chain alone let through (issue 11), caught by anchors and sealed snapshots.

Someone with write access to the database, but not the server's chain key,
rewrites a history and recomputes its hashes, deletes a contract's last events,
or alters a snapshot.  Each used to audit ``verified: true``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from conftest import ADMIN_KEY, TEST_REDIS_URL, fresh_store
from integration.processes import settings_env
from integration.tampering import (
    alter_latest_snapshot,
    delete_anchor,
    delete_last_events,
    forget_anchoring,
    rewrite_history,
)
from pydantic import SecretStr
from typer.testing import CliRunner

from cli.main import app as needle
from domain.chain import verify_chain
from workflows.bootstrap import Services, bootstrap
from workflows.ledger import Ledger
from workflows.settings import Settings

from .client import Needle, World, directive
from .serving import serve_api

SNAPSHOT_EVERY = 4


@dataclass
class Served:
    base_url: str
    services: Services

    @property
    def settings(self) -> Settings:
        return self.services.settings


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A server that snapshots contracts every few events."""
    folder = tmp_path_factory.mktemp("tampering")
    settings = Settings(var_dir=folder / "var", admin_key=ADMIN_KEY, redis_url=TEST_REDIS_URL,
                        snapshot_interval=SNAPSHOT_EVERY, **fresh_store(folder))
    services = bootstrap(settings)
    with serve_api(services, name="tampering-uvicorn") as base_url:
        yield Served(base_url, services)
    services.close()


@pytest.fixture
def world(served: Served) -> World:
    return World.build(Needle(served.base_url, ADMIN_KEY))


def issue(world: World, *hours: int) -> list[int]:
    street = world.as_("street")
    return [street.ok("POST", f"{world.path}/directives", 201,
                      json=directive(value=f"{hour}:00", summary=f"开放到{hour}点"))["version"]
            for hour in hours]


def audit(world: World) -> dict[str, Any]:
    return world.as_("supervisor").ok("GET", f"{world.path}/audit")


def fresh_load(settings: Settings, contract_id: str) -> Any:
    """The contract as a process that has not cached it loads it (snapshot, then events)."""
    app = Ledger(settings)
    try:
        return app.repository.get(UUID(contract_id))
    finally:
        app.close()


def test_a_history_rewritten_with_its_hashes_recomputed_fails_the_audit(
    world: World, served: Served
) -> None:
    versions = issue(world, 8, 9, 10)
    assert audit(world)["verified"] is True
    # When an intruder changes the second directive's value and recomputes every hash after it
    rewrite_history(served.settings, UUID(world.contract_id), versions[1],
                    lambda data: data.update(value="7:00"))
    app = Ledger(served.settings)
    try:  # (the chain itself links up again: that is what made the attack work)
        assert verify_chain(app.events.get(UUID(world.contract_id))).verified
    finally:
        app.close()
    # Then the audit fails: the head is not the one the application anchored
    broken = audit(world)
    assert broken["verified"] is False
    assert "rewritten" in broken["reason"]


def test_deleting_a_contracts_last_events_fails_the_audit(world: World, served: Served) -> None:
    issue(world, 8, 9)
    before = audit(world)
    assert before["verified"] is True
    # When the last two events are deleted from the events table
    delete_last_events(served.settings, UUID(world.contract_id), 2)
    # Then the audit names the first missing version
    broken = audit(world)
    assert broken["verified"] is False
    assert broken["events"] == before["events"] - 2
    assert broken["first_broken_version"] == before["events"] - 1
    assert "missing" in broken["reason"]


def test_an_altered_snapshot_fails_the_audit_and_is_not_served(
    world: World, served: Served
) -> None:
    issue(world, *range(8, 8 + SNAPSHOT_EVERY + 1))
    contract_id = UUID(world.contract_id)
    assert audit(world)["verified"] is True

    # When the snapshot's copy of a directive's summary is changed
    def forge(state: dict[str, Any]) -> None:
        for record in state["directives"]:  # listed, each with its id (domain/contract.py)
            record["summary"] = "街道同意关闭青少年地带 forged"

    version = alter_latest_snapshot(served.settings, contract_id, forge)
    # Then the audit says which snapshot was altered
    broken = audit(world)
    assert broken["verified"] is False
    assert broken["first_broken_version"] == version
    assert "snapshot" in broken["reason"]
    # And a process loading the contract ignores it and replays the events instead
    loaded = fresh_load(served.settings, world.contract_id)
    summaries = {record["summary"] for record in loaded.directives.values()}
    assert "街道同意关闭青少年地带 forged" not in summaries
    assert "开放到8点" in summaries


def test_data_recorded_before_anchoring_still_loads_and_verifies(
    world: World, served: Served
) -> None:
    issue(world, *range(8, 8 + SNAPSHOT_EVERY + 1))
    contract_id = UUID(world.contract_id)
    # Given a store as it was before anchors and snapshot seals existed
    forget_anchoring(served.settings)
    # When an upgraded application opens it, it adopts what is there
    app = Ledger(served.settings)
    try:
        snapshot = next(iter(app.snapshots.get(contract_id, desc=True, limit=1)))  # type: ignore[union-attr]
        assert snapshot.originator_version >= SNAPSHOT_EVERY  # sealed, so it is used
        assert app.repository.get(contract_id).version == world.version()
    finally:
        app.close()
    # Then the contract verifies, and goes on verifying as it changes
    assert audit(world)["verified"] is True
    issue(world, 20)
    assert audit(world)["verified"] is True


def test_a_deleted_anchor_fails_the_audit(world: World, served: Served) -> None:
    issue(world, 8)
    delete_anchor(served.settings, UUID(world.contract_id))
    broken = audit(world)
    assert broken["verified"] is False
    assert "anchor" in broken["reason"]


def test_needle_verify_all_checks_every_contract_and_names_the_broken_one(
    tmp_path: Path,
) -> None:
    settings = Settings(var_dir=tmp_path / "var", admin_key=ADMIN_KEY, redis_url=TEST_REDIS_URL,
                        **fresh_store(tmp_path))
    services = bootstrap(settings)
    with serve_api(services, name="verify-all-uvicorn") as base_url:
        worlds = [World.build(Needle(base_url, ADMIN_KEY)) for _ in range(3)]
        for world in worlds:
            issue(world, 8, 9)
    services.close()
    # Given an untouched store, every contract and the directory verify
    untouched = needle_cli(settings, "verify", "--all")
    assert untouched.exit_code == 0, untouched.output
    assert "3 contracts and the directory" in untouched.output
    # When one contract loses its last event
    delete_last_events(settings, UUID(worlds[1].contract_id), 1)
    # Then --all fails, naming that contract (by its code) and only it
    broken = needle_cli(settings, "verify", "--all")
    assert broken.exit_code == 1
    assert worlds[1].code in broken.output
    assert worlds[0].code not in broken.output and worlds[2].code not in broken.output
    assert "1 of 4 failed" in broken.output
    # And naming both a contract and --all, or neither, is a usage error
    assert needle_cli(settings, "verify").exit_code == 2


def needle_cli(settings: Settings, *args: str) -> Any:
    env = settings_env(settings, COLUMNS="200")
    return CliRunner().invoke(needle, list(args), env=env, catch_exceptions=False)


def test_a_process_with_another_chain_key_refuses_to_open_the_store(served: Served) -> None:
    # (as a CLI run without NEEDLE_CHAIN_KEY would generate a key of its own)
    other = served.settings.model_copy(update={"chain_key": SecretStr("另一把钥匙-" + "k" * 40)})
    with pytest.raises(RuntimeError, match="another chain key"):
        Ledger(other)
