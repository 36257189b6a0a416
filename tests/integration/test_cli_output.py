"""How the ``needle`` commands print: narrow terminals and pipes, time zones, ``--json``."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from rich.cells import cell_len
from typer.testing import CliRunner

from cli.main import app as needle
from workflows import directory
from workflows.ledger import Ledger
from workflows.settings import Settings

from .processes import settings_env

YOUTH = "HZ-YOUTH-2008"


def run(settings: Settings, *args: str, columns: int = 240) -> Any:
    env = settings_env(settings, COLUMNS=str(columns))
    return CliRunner().invoke(needle, list(args), env=env, catch_exceptions=False)


def test_replay_at_80_columns_is_a_list_whose_lines_fit_and_keep_their_text(
    demo_settings: Settings,
) -> None:
    # when the youth contract is replayed on an 80-column terminal (what a pipe gets)
    result = run(demo_settings, "replay", YOUTH, columns=80)

    # then it is not a table (no column rules) and every line fits in 80 cells
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert not any("│" in line for line in lines)
    assert all(cell_len(line) <= 80 for line in lines)
    # and no line is a sliver of a folded column: each says something
    assert all(len(line.strip()) > 2 for line in lines if line.strip())
    # and each event has its heading line, with the rationale readable once unfolded
    history = json.loads(run(demo_settings, "replay", YOUTH, "--json").stdout)
    headings = [line for line in lines if line.startswith("v")]
    assert [h.split()[0] for h in headings] == [f"v{s['version']}" for s in history["steps"]]
    text = "".join(line.strip() for line in lines)
    assert "合并为一份，按海幢街模板报送并抄送赤岗街道办" in text
    assert "state at version" in result.stdout


def test_replay_shows_times_in_shanghai_unless_asked_for_utc(demo_settings: Settings) -> None:
    # given the first event's time, as data (UTC)
    history = json.loads(run(demo_settings, "replay", YOUTH, "--json").stdout)
    first = datetime.fromisoformat(history["steps"][0]["recorded_at"])
    utc_text = first.strftime("%Y-%m-%d %H:%M:%S")
    shanghai_text = (first + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M:%S")

    # then the table says Asia/Shanghai by default and UTC with --utc, both layouts
    for columns in (240, 80):
        local = run(demo_settings, "replay", YOUTH, columns=columns).stdout
        utc = run(demo_settings, "replay", YOUTH, "--utc", columns=columns).stdout
        assert shanghai_text in local and "Asia/Shanghai" in local
        assert utc_text in utc and "UTC" in utc
        assert utc_text not in local


def test_replay_json_is_the_timeline_as_data(demo_settings: Settings) -> None:
    result = run(demo_settings, "replay", YOUTH, "--json", "--what-if", "client_first")
    assert result.exit_code == 0, result.output
    story = json.loads(result.stdout)
    assert story["code"] == YOUTH and story["profile"] == "client_first" and story["what_if"]
    assert story["title"] == "海珠区“青年地带”青少年社会工作服务"
    assert [s["version"] for s in story["steps"]] == list(range(1, story["version"] + 1))
    issued = [s for s in story["steps"] if s["type"].endswith("DirectiveIssued")]
    assert any("全体社工参加职业伦理培训" in s["summary"] for s in issued)


def test_replay_refuses_an_unknown_layout(demo_settings: Settings) -> None:
    assert run(demo_settings, "replay", YOUTH, "--layout", "sideways").exit_code == 2


def test_keys_create_json_prints_a_working_key(demo_settings: Settings) -> None:
    result = run(demo_settings, "keys", "create", "--org", "gz-swa", "--role", "supervisor",
                 "--json")
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    assert created["org"] == "gz-swa" and created["role"] == "supervisor"
    app = Ledger(demo_settings)
    try:
        caller = directory.authenticate(app, created["key"])
    finally:
        app.close()
    assert caller is not None and caller.org == "gz-swa"


def test_projections_status_json_lists_each_projection(demo_settings: Settings) -> None:
    result = run(demo_settings, "projections", "status", "--json")
    assert result.exit_code == 0, result.output
    items = json.loads(result.stdout)
    assert [item["name"] for item in items] == ["contracts", *items[0]["partitions"]]
    assert items[0]["partitions"] == [f"contracts.p{i}" for i in range(4)]
    assert {"position", "head", "lag_events", "status"} <= items[0].keys()


def test_export_keeps_stdout_to_json_lines_with_its_progress_bar(
    demo_settings: Settings,
) -> None:
    result = run(demo_settings, "export", YOUTH)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["version"] for r in records] == list(range(1, len(records) + 1))
    assert "export" in result.stderr
