"""Safe retries and optimistic concurrency: Idempotency-Key, ETag and If-Match; the past."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from .client import World, directive
from .ledger import assert_problem, ledger_state


def test_a_repeated_idempotent_command_answers_the_same_and_records_nothing(world: World) -> None:
    street = world.as_("street")
    body = json.dumps(directive(summary="每月提交服务报表 monthly report")).encode()
    headers = {"Idempotency-Key": "issue-report-1", "Content-Type": "application/json"}
    # Given a directive issued with an Idempotency-Key
    first = street.post(f"{world.path}/directives", content=body, headers=headers)
    assert first.status_code == 201
    after_first = ledger_state(world)
    # When the client retries with the same key and body (say, after a timeout)
    again = street.post(f"{world.path}/directives", content=body, headers=headers)
    # Then it gets the same status and body, and nothing more is recorded
    assert again.status_code == 201
    assert again.json() == first.json()
    assert ledger_state(world) == after_first
    assert len(street.contract(world.contract_id)["directives"]) == 1


def test_an_idempotency_key_reused_with_another_body_is_422(world: World) -> None:
    street = world.as_("street")
    headers = {"Idempotency-Key": "issue-report-2"}
    street.ok("POST", f"{world.path}/directives", 201, json=directive(value=1), headers=headers)
    before = ledger_state(world)
    # When the same key comes with a different body
    response = street.post(f"{world.path}/directives", json=directive(value=2), headers=headers)
    # Then it is refused and nothing is recorded
    assert_problem(response, 422, "idempotency_key_reused")
    assert ledger_state(world) == before


def test_idempotency_keys_belong_to_their_principal(world: World) -> None:
    # Given the street office used a key
    headers = {"Idempotency-Key": "shared-name"}
    first = world.as_("street").ok("POST", f"{world.path}/directives", 201, json=directive(),
                                   headers=headers)
    # When the provider happens to use the same key for its own directive
    second = world.as_("provider").ok("POST", f"{world.path}/directives", 201, json=directive(),
                                      headers=headers)
    # Then both are recorded, as different directives
    assert first["id"] != second["id"] and second["version"] == first["version"] + 1


def test_idempotent_lifecycle_and_key_creation(world: World) -> None:
    headers = {"Idempotency-Key": "suspend-once"}
    # Given a suspension sent twice with the same key
    first = world.admin.ok("POST", f"{world.path}/suspend", headers=headers)
    second = world.admin.ok("POST", f"{world.path}/suspend", headers=headers)
    # Then the second is the first's answer, not an illegal transition
    assert second == first
    # And a key created twice with one Idempotency-Key is one key, shown only the first time
    key_headers = {"Idempotency-Key": "street-key"}
    spec = {"org": world.street, "role": "stakeholder"}
    made = world.admin.ok("POST", "/v1/keys", 201, json=spec, headers=key_headers)
    repeat = world.admin.ok("POST", "/v1/keys", 201, json=spec, headers=key_headers)
    assert repeat["id"] == made["id"] and made["key"] and repeat["key"] is None


def test_get_returns_an_etag_and_a_stale_if_match_is_412(world: World) -> None:
    street = world.as_("street")
    # Given a client that read the contract and its ETag
    response = street.get(world.path)
    etag = response.headers["etag"]
    assert etag == f'"{response.json()["version"]}"'
    # When it issues a directive based on that version, then it is accepted
    issued = street.ok("POST", f"{world.path}/directives", 201, json=directive(),
                       headers={"If-Match": etag})
    # When another change is sent on the same, now stale, version
    before = ledger_state(world)
    for method, suffix, body in (
        ("POST", "/directives", directive()),
        ("PATCH", f"/directives/{issued['id']}", {"value": "10:00-20:00"}),
        ("DELETE", f"/directives/{issued['id']}", None),
    ):
        stale = street.request(method, world.path + suffix, json=body, headers={"If-Match": etag})
        # Then it is 412 and nothing is recorded
        assert_problem(stale, 412, "version_mismatch")
    assert_problem(world.admin.post(f"{world.path}/suspend", headers={"If-Match": etag}), 412)
    assert_problem(world.admin.put(f"{world.path}/policy", json={}, headers={"If-Match": etag}),
                   412)
    assert ledger_state(world) == before
    # And the current ETag works
    current = street.get(world.path).headers["etag"]
    street.ok("PATCH", f"{world.path}/directives/{issued['id']}", json={"value": "10:00-20:00"},
              headers={"If-Match": current})


def test_version_and_as_of_show_the_past(world: World) -> None:
    street = world.as_("street")
    # Given a directive issued, then amended
    issued = street.ok("POST", f"{world.path}/directives", 201, json=directive(value="09:00"))
    amended = street.ok("PATCH", f"{world.path}/directives/{issued['id']}",
                        json={"value": "10:00"})
    history = street.history(world.contract_id)
    # When the contract is read as of the issuing version
    past = street.contract(world.contract_id, version=issued["version"])
    # Then it shows the directive as first issued, and that version's ETag
    assert past["version"] == issued["version"]
    assert [d["value"] for d in past["directives"]] == ["09:00"]
    # And before the directive existed there were none, and the contract was a draft at v1
    assert street.contract(world.contract_id, version=issued["version"] - 1)["directives"] == []
    assert street.contract(world.contract_id, version=1)["status"] == "draft"
    # When it is read as of the time the directive was issued (and a moment after)
    issued_at = datetime.fromisoformat(history[issued["version"] - 1]["recorded_at"])
    at_issue = street.contract(world.contract_id, as_of=issued_at.isoformat())
    assert at_issue["version"] == issued["version"]
    assert [d["value"] for d in at_issue["directives"]] == ["09:00"]
    # Then the present is unchanged
    now = street.contract(world.contract_id)
    assert now["version"] == amended["version"]
    assert [d["value"] for d in now["directives"]] == ["10:00"]
    # And a time before the contract existed, or a version not yet reached, is 404
    too_early = (datetime.fromisoformat(history[0]["recorded_at"]) - timedelta(days=1))
    assert_problem(street.get(world.path, params={"as_of": too_early.isoformat()}), 404)
    assert_problem(street.get(world.path, params={"version": amended["version"] + 1}), 404)
    # And a past version carries its own ETag
    response = street.get(world.path, params={"version": 1})
    assert response.headers["etag"] == '"1"'
