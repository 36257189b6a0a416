"""The ``needle`` commands, run in-process through typer's runner on a real event store."""

from __future__ import annotations

import itertools
import json
from typing import Any

from typer.testing import CliRunner

from cli.main import app as needle
from workflows import directory
from workflows.identities import contract_id_for
from workflows.ledger import Ledger
from workflows.settings import Settings

from .processes import settings_env
from .tampering import alter_stored_event

YOUTH = "HZ-YOUTH-2008"


def run(settings: Settings, *args: str) -> Any:
    env = settings_env(settings, COLUMNS="240")
    return CliRunner().invoke(needle, list(args), env=env, catch_exceptions=False)


def test_replay_shows_the_whole_timeline_of_a_contract_named_by_its_code(
    demo_settings: Settings,
) -> None:
    # when the youth contract is replayed by its code
    result = run(demo_settings, "replay", YOUTH)

    # then the table lists its eleven events, drafted first, with actors and summaries
    assert result.exit_code == 0, result.output
    assert "海珠区“青年地带”青少年社会工作服务" in result.output
    assert "Drafted" in result.output and "Activated" in result.output
    assert result.output.count("DirectiveIssued") == 7
    assert "全体社工参加职业伦理培训" in result.output
    assert "gz-swa" in result.output
    assert "state at version 11: active, 7 directives (6 active), 2 open conflicts" \
        in result.output


def rows(output: str) -> dict[int, str]:
    """The table's text by version: each row with its wrapped continuation lines."""
    found: dict[int, list[str]] = {}
    current = None
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.split("│")]
        if len(cells) < 3:
            continue
        if cells[1].isdigit():
            current = int(cells[1])
        if current is not None:
            found.setdefault(current, []).append(" ".join(cells[2:]))
    return {version: " ".join(lines) for version, lines in found.items()}


def test_replay_tells_how_conflicts_and_the_top_of_the_ranking_moved(
    demo_settings: Settings,
) -> None:
    # when the youth contract is replayed
    by_version = rows(run(demo_settings, "replay", YOUTH).output)

    # then the ethics training takes the top when issued, and later issues leave it be
    assert "1 training.ethics · gz-swa" in by_version[3]
    assert "unchanged" in by_version[2] and "unchanged" in by_version[9]

    # and the reporting demands open a contradiction (v8), then a duplicate (v9)
    assert "+contradiction reporting.weekly ×2" in by_version[8]
    assert "+duplicate reporting.weekly ×2" in by_version[9]
    assert "(3 open)" in by_version[9]

    # and qichuang merges the duplicate at level 0, with its rationale in Chinese: the
    # contradiction (one episode since issue 10) loses the overridden member, three to two
    assert "~contradiction reporting.weekly ×3 members changed" in by_version[9]
    resolved = by_version[10]
    assert "qichuang" in resolved and "ConflictResolved" in resolved
    assert "✓duplicate reporting.weekly ×2 merged" in resolved
    assert "~contradiction reporting.weekly ×2 members changed" in resolved
    assert "+contradiction" not in resolved and "dissolved" not in resolved
    assert "合并为一份" in resolved.replace(" ", "")

    # and qichuang escalates the remaining contradiction to the Youth League (level 1)
    escalated = by_version[11]
    assert "ConflictEscalated" in escalated
    assert "↑contradiction reporting.weekly ×2 level 0→1" in escalated
    assert "提请团区委协调" in escalated.replace(" ", "")


def test_replay_what_if_ranks_the_whole_past_under_another_profile(
    demo_settings: Settings,
) -> None:
    # when the youth contract's past is re-ranked under client_first (residents first)
    as_is = rows(run(demo_settings, "replay", YOUTH).output)
    result = run(demo_settings, "replay", YOUTH, "--what-if", "client_first")
    what_if = rows(result.output)

    # then the low-income visits (tier 4 under the policy) lead as soon as they are
    # issued, since client_first merges tiers 2-4; the events are the same
    assert result.exit_code == 0, result.output
    assert "top 3 (client_first)" in result.output
    assert "what-if: every step ranked under client_first (the contract's policy is " \
        "contract_first)" in result.output
    assert "1 outreach.low_income_youth_visits" in what_if[4]
    assert "1 training.ethics" in as_is[4]
    assert len(what_if) == len(as_is) == 11

    # and an unknown profile is refused as a usage error
    assert run(demo_settings, "replay", YOUTH, "--what-if", "nobody_first").exit_code == 2


def test_replay_stops_at_a_version_or_a_time_and_accepts_a_uuid(
    demo_settings: Settings,
) -> None:
    contract_id = str(contract_id_for(YOUTH))

    # when replayed to version 3, by the contract's UUID
    to_three = run(demo_settings, "replay", contract_id, "--to-version", "3")

    # then only the first three events are shown
    assert to_three.exit_code == 0, to_three.output
    assert to_three.output.count("DirectiveIssued") == 1
    assert "state at version 3: active, 1 directives (1 active), 0 open conflicts" \
        in to_three.output

    # when replayed as of a time after everything, and before anything
    later = run(demo_settings, "replay", YOUTH, "--as-of", "2999-01-01T00:00:00Z")
    earlier = run(demo_settings, "replay", YOUTH, "--as-of", "2001-01-01")

    # then the first shows the whole history, the second says it did not exist yet
    assert later.exit_code == 0 and "state at version 11" in later.output
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
    assert "verified" in untouched.output and "11 events" in untouched.output

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
    app = Ledger(demo_settings)
    caller = directory.authenticate(app, key.strip())
    app.close()
    assert caller is not None and (caller.org, caller.role.value) == ("datong", "resolver")


def test_keys_create_refuses_an_unknown_organisation(demo_settings: Settings) -> None:
    result = run(demo_settings, "keys", "create", "--org", "nobody", "--role", "admin")
    assert result.exit_code == 1
    assert "unknown organisation" in result.output
