"""The hash chain: verified when untouched, broken when one stored event is altered."""

from __future__ import annotations

import json
from uuid import UUID

from .client import World, directive
from .conftest import LiveServer
from .ledger import assert_problem


def alter_stored_event(live_server: LiveServer, contract_id: str, version: int,
                       old: bytes, new: bytes) -> None:
    """Edit one event's stored JSON directly in the database, as an intruder would."""
    recorder = live_server.services.ledger.recorder
    datastore, table = recorder.datastore, recorder.events_table_name
    if hasattr(datastore, "schema"):  # PostgreSQL
        qualified = f'"{datastore.schema or "public"}"."{table}"'
        select = f"SELECT state FROM {qualified} WHERE originator_id = %s AND originator_version = %s"  # noqa: E501
        update = f"UPDATE {qualified} SET state = %s WHERE originator_id = %s AND originator_version = %s"  # noqa: E501
        key: object = UUID(contract_id)
    else:
        select = f"SELECT state FROM {table} WHERE originator_id = ? AND originator_version = ?"
        update = f"UPDATE {table} SET state = ? WHERE originator_id = ? AND originator_version = ?"
        key = UUID(contract_id).hex
    with datastore.transaction(commit=True) as cursor:
        cursor.execute(select, (key, version))
        row = cursor.fetchone()
        state = bytes(row["state"] if isinstance(row, dict) else row[0])
        assert old in state, state
        cursor.execute(update, (state.replace(old, new), key, version))


def test_audit_verifies_an_untouched_chain_and_names_the_altered_event(
    world: World, live_server: LiveServer
) -> None:
    street, supervisor = world.as_("street"), world.as_("supervisor")
    # Given a contract with a few directives
    issued = [street.ok("POST", f"{world.path}/directives", 201,
                        json=directive(value=f"{hour}:00"))["version"] for hour in (8, 9, 10)]
    history = supervisor.history(world.contract_id)
    # When the supervisor audits it
    audit = supervisor.ok("GET", f"{world.path}/audit")
    # Then the chain verifies, over every event, ending at the last event's hash
    assert audit["verified"] is True
    assert audit["events"] == len(history) == issued[-1]
    assert audit["head"] == history[-1]["hash"]
    assert [e["prev_hash"] for e in history[1:]] == [e["hash"] for e in history[:-1]]

    # When someone alters the stored value of the second directive in the database
    alter_stored_event(live_server, world.contract_id, issued[1], b'"9:00"', b'"7:00"')
    # Then the audit fails, and says where
    broken = supervisor.ok("GET", f"{world.path}/audit")
    assert broken["verified"] is False
    assert broken["first_broken_version"] == issued[1]
    assert broken["reason"]
    # And the admin sees the same
    assert world.admin.ok("GET", f"{world.path}/audit")["verified"] is False


def test_export_is_json_lines_of_the_whole_history(world: World) -> None:
    street = world.as_("street")
    street.ok("POST", f"{world.path}/directives", 201,
              json=directive(summary="社区长者饭堂延长营业 the canteen stays open longer"))
    # When the supervisor exports the history
    response = world.as_("supervisor").get(f"{world.path}/export")
    # Then it is JSON Lines, one record per event, equal to the history, Chinese intact
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert lines == world.admin.history(world.contract_id)
    assert lines[-1]["type"] == "ServiceContract.DirectiveIssued"
    assert "社区长者饭堂" in response.text
    assert lines[-1]["actor"]["org"] == world.street


def test_history_pages_and_names_each_event(world: World) -> None:
    street = world.as_("street")
    for hour in range(5):
        street.ok("POST", f"{world.path}/directives", 201, json=directive(value=hour))
    version = world.version()
    # When the history is read two events at a time
    seen, after = [], 0
    while True:
        page = street.ok("GET", f"{world.path}/history",
                         params={"after_version": after, "limit": 2})
        seen += page["events"]
        if page["next_after_version"] is None:
            break
        after = page["next_after_version"]
    # Then every version appears once, in order, with its actor and chain hashes
    assert [e["version"] for e in seen] == list(range(1, version + 1))
    assert seen[0]["type"] == "ServiceContract.Drafted"
    assert seen[1]["type"] == "ServiceContract.Activated"
    assert all({"recorded_at", "actor", "data", "hash", "prev_hash"} <= e.keys() for e in seen)
    assert seen[-1]["actor"]["org"] == world.street and seen[-1]["actor"]["principal"]


def test_audit_and_export_of_an_unknown_contract_are_404(world: World) -> None:
    assert_problem(world.admin.get("/v1/contracts/3f1e9c1a-0000-4000-8000-000000000000/audit"),
                   404)
