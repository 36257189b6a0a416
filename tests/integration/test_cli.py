"""The ``needle`` commands, run in-process through typer's runner on a real event store."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app as needle
from workflows.application import Threadneedle, contract_id_for
from workflows.demo import load_demo
from workflows.settings import Settings

from .processes import settings_env
from .tampering import alter_stored_event

YOUTH = "HZ-YOUTH-2008"


@pytest.fixture
def demo_settings(make_settings: Callable[..., Settings]) -> Settings:
    """A store holding the Guangzhou demo."""
    settings = make_settings()
    app = Threadneedle(settings)
    load_demo(app, settings.var_dir)
    app.close()
    return settings


def run(settings: Settings, *args: str) -> Any:
    env = settings_env(settings, COLUMNS="240")
    return CliRunner().invoke(needle, list(args), env=env, catch_exceptions=False)


def test_replay_shows_the_whole_timeline_of_a_contract_named_by_its_code(
    demo_settings: Settings,
) -> None:
    # when the youth contract is replayed by its code
    result = run(demo_settings, "replay", YOUTH)

    # then the table lists its nine events, drafted first, with actors and summaries
    assert result.exit_code == 0, result.output
    assert "海珠区“青年地带”青少年社会工作服务" in result.output
    assert "Drafted" in result.output and "Activated" in result.output
    assert result.output.count("DirectiveIssued") == 7
    assert "全体社工参加职业伦理培训" in result.output
    assert "gz-swa" in result.output
    assert "state at version 9: active, 7 directives (7 active)" in result.output


def test_replay_stops_at_a_version_or_a_time_and_accepts_a_uuid(
    demo_settings: Settings,
) -> None:
    contract_id = str(contract_id_for(YOUTH))

    # when replayed to version 3, by the contract's UUID
    to_three = run(demo_settings, "replay", contract_id, "--to-version", "3")

    # then only the first three events are shown
    assert to_three.exit_code == 0, to_three.output
    assert to_three.output.count("DirectiveIssued") == 1
    assert "state at version 3: active, 1 directives (1 active)" in to_three.output

    # when replayed as of a time after everything, and before anything
    later = run(demo_settings, "replay", YOUTH, "--as-of", "2999-01-01T00:00:00Z")
    earlier = run(demo_settings, "replay", YOUTH, "--as-of", "2001-01-01")

    # then the first shows the whole history, the second says it did not exist yet
    assert later.exit_code == 0 and "state at version 9" in later.output
    assert earlier.exit_code == 1
    assert "did not exist yet" in earlier.output


def test_replay_refuses_an_unknown_contract_and_both_bounds_at_once(
    demo_settings: Settings,
) -> None:
    unknown = run(demo_settings, "replay", "NO-SUCH-CONTRACT")
    both = run(demo_settings, "replay", YOUTH, "--to-version", "2", "--as-of", "2999-01-01")

    assert unknown.exit_code == 1 and "no contract" in unknown.output
    assert both.exit_code == 2


def test_export_writes_the_history_as_json_lines(demo_settings: Settings) -> None:
    # when the elderly-centre contract is exported
    result = run(demo_settings, "export", "HZ-JNZ-ELDER-2012")

    # then each line is one event, in order, chained, with Chinese text intact
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["version"] for r in records] == [1, 2, 3, 4]
    assert [r["type"] for r in records][:2] == [
        "ServiceContract.Drafted", "ServiceContract.Activated"]
    for before, after in itertools.pairwise(records):
        assert after["prev_hash"] == before["hash"]
    assert records[0]["data"]["title"] == "江南中街社区综合服务中心长者服务"
    assert "120位长者及家属联名请求工作日延长开放至20:00" in result.stdout


def test_verify_passes_on_an_untouched_chain_and_fails_on_an_altered_event(
    demo_settings: Settings,
) -> None:
    # given an untouched history, verify succeeds
    untouched = run(demo_settings, "verify", YOUTH)
    assert untouched.exit_code == 0, untouched.output
    assert "verified" in untouched.output and "9 events" in untouched.output

    # when someone with database access quietly changes the hours of one directive
    def fewer_hours(state: dict[str, Any]) -> None:
        state["data"]["hours_per_week"] = 1

    alter_stored_event(demo_settings, contract_id_for(YOUTH), 4, fewer_hours)

    # then verify fails, naming the altered version, with a non-zero exit
    broken = run(demo_settings, "verify", YOUTH)
    assert broken.exit_code == 1
    assert "chain broken at version 4" in broken.output
    assert "does not match its recorded hash" in broken.output

    # and the other contracts still verify
    assert run(demo_settings, "verify", "LW-PILOT-2008").exit_code == 0


def test_keys_create_prints_a_working_key_once(demo_settings: Settings) -> None:
    # when an operator creates a resolver key for the Liwan provider
    result = run(demo_settings, "keys", "create", "--org", "datong", "--role", "resolver")

    # then the printed key authenticates as that organisation and role
    assert result.exit_code == 0, result.output
    key = next(line for line in result.output.splitlines() if line.startswith("ndl_"))
    app = Threadneedle(demo_settings)
    caller = app.authenticate(key.strip())
    app.close()
    assert caller is not None and (caller.org, caller.role.value) == ("datong", "resolver")


def test_keys_create_refuses_an_unknown_organisation(demo_settings: Settings) -> None:
    result = run(demo_settings, "keys", "create", "--org", "nobody", "--role", "admin")
    assert result.exit_code == 1
    assert "unknown organisation" in result.output
