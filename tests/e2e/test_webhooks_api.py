"""Webhook subscriptions over real HTTP (SPEC §8, §9 ``/v1/webhooks``).

The session's server allows no private address, so its subscriptions name a
public address literal (nothing is ever sent: no dispatcher runs here); a
second server in this module is started with ``NEEDLE_WEBHOOK_ALLOWED_CIDRS``
allowing ``127.0.0.0/8``, as the demo and the delivery tests run.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import ADMIN_KEY, TEST_REDIS_URL, fresh_store
from pydantic import SecretStr
from standardwebhooks import Webhook

from domain.webhooks import Message
from workflows import subscriptions
from workflows.bootstrap import bootstrap
from workflows.settings import Settings
from workflows.webhooks.outbox import Outbox
from workflows.webhooks.outbox.records import Entry
from workflows.webhooks.signing import sign
from workflows.webhooks.vault import vault_for

from .client import Needle, World
from .conftest import LiveServer
from .ledger import assert_problem, head_position
from .serving import serve_api

PUBLIC_URL = "https://93.184.215.14/hooks/threadneedle"
"""A public address literal: passes the guard without asking a resolver."""
DESCRIPTION = "江南中街街道的冲突提醒 conflicts for the street office"


def subscription(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"url": PUBLIC_URL, "event_types": ["conflict.*", "directive.issued"],
                            "description": DESCRIPTION}
    body.update(fields)
    return body


@pytest.fixture(scope="module")
def loopback_admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Needle]:
    """An admin of a second server whose operator allow-lists 127.0.0.0/8."""
    folder = tmp_path_factory.mktemp("e2e-webhooks")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NEEDLE_WEBHOOK_ALLOWED_CIDRS", "127.0.0.0/8")
        settings = Settings(var_dir=folder / "var", admin_key=SecretStr(ADMIN_KEY),
                            redis_url=TEST_REDIS_URL, **fresh_store(folder))
    assert settings.webhook_allowed_cidrs == "127.0.0.0/8"
    services = bootstrap(settings)
    with serve_api(services, name="e2e-webhooks-uvicorn") as base_url:
        yield Needle(base_url, ADMIN_KEY)
    services.close()


def test_loopback_is_refused_unless_the_operator_allows_it(
    world: World, loopback_admin: Needle
) -> None:
    street = world.as_("street")
    before = head_position(world.admin)
    # When the street office subscribes a loopback URL on a server that allows none
    refused = street.post("/v1/webhooks", json=subscription(url="http://127.0.0.1:8080/hook"))
    # Then it is a 422 naming the url and why, and nothing is recorded
    problem = assert_problem(refused, 422, "validation_failed")
    (error,) = problem["errors"]
    assert error["field"] == "url" and "forbidden_address" in error["message"]
    assert "loopback" in error["message"]
    assert head_position(world.admin) == before
    # And so are private and link-local addresses, and schemes other than http(s)
    for url in ("http://10.1.2.3/hook", "http://169.254.169.254/latest", "http://[::1]/hook",
                "ftp://93.184.215.14/hook", "http://user:pw@93.184.215.14/hook"):
        assert_problem(street.post("/v1/webhooks", json=subscription(url=url)), 422)
    assert head_position(world.admin) == before

    # When the operator allow-lists 127.0.0.0/8, the same URL is accepted
    created = loopback_admin.ok("POST", "/v1/webhooks", 201,
                                json=subscription(url="http://127.0.0.1:8080/hook"))
    assert created["url"] == "http://127.0.0.1:8080/hook" and created["status"] == "active"


def test_a_refusal_does_not_reveal_what_a_name_resolves_to(world: World) -> None:
    street = world.as_("street")
    before = head_position(world.admin)
    # When the street office subscribes a name the server resolves to loopback addresses
    refused = street.post("/v1/webhooks", json=subscription(url="http://localhost:8080/hook"))
    # Then the 422 says the name resolves to an address it may not call, but not which
    problem = assert_problem(refused, 422, "validation_failed")
    (error,) = problem["errors"]
    assert "forbidden_address" in error["message"] and "localhost" in error["message"]
    assert "127.0.0.1" not in refused.text and "::1" not in refused.text
    # And the IPv4 dummy address, which Python 3.11 calls global, is refused too (issue 11)
    dummy = street.post("/v1/webhooks", json=subscription(url="http://192.0.0.8/hook"))
    assert "not public" in assert_problem(dummy, 422, "validation_failed")["errors"][0][
        "message"]
    assert head_position(world.admin) == before


def test_the_secret_is_shown_once(world: World) -> None:
    street = world.as_("street")
    headers = {"Idempotency-Key": f"subscribe-{world.code}"}
    # When the street office subscribes, with an Idempotency-Key
    created = street.ok("POST", "/v1/webhooks", 201, json=subscription(), headers=headers)
    # Then the answer carries a Standard Webhooks secret and the subscription, owned by it
    assert created["secret"].startswith("whsec_")
    assert created["version"] == 1 and created["position"] >= 1
    assert created["owner"] == {"org": world.street, "role": "stakeholder"}
    assert created["description"] == DESCRIPTION and created["contracts"] is None
    # And neither GET nor the list shows the secret again
    shown = street.ok("GET", f"/v1/webhooks/{created['id']}")
    listed = street.ok("GET", "/v1/webhooks")["items"]
    assert "secret" not in shown and created["secret"] not in str(listed)
    assert shown == {key: value for key, value in created.items()
                     if key not in ("secret", "position")}
    assert [item["id"] for item in listed] == [created["id"]]
    # And a repeat with the same key answers the same subscription without its secret
    before = head_position(world.admin)
    repeat = street.ok("POST", "/v1/webhooks", 201, json=subscription(), headers=headers)
    assert repeat["id"] == created["id"] and repeat["secret"] is None
    assert head_position(world.admin) == before


def test_bad_bodies_are_refused_and_change_nothing(world: World) -> None:
    street = world.as_("street")
    created = street.ok("POST", "/v1/webhooks", 201, json=subscription())
    path = f"/v1/webhooks/{created['id']}"
    before = head_position(world.admin)
    refusals = [
        street.post("/v1/webhooks", json=subscription(event_types=["directive.exploded"])),
        street.post("/v1/webhooks", json=subscription(event_types=[])),
        street.post("/v1/webhooks", json=subscription(secret="whsec_mine")),
        street.post("/v1/webhooks", json={"event_types": ["*"]}),
        street.post("/v1/webhooks", json=subscription(contracts=["HZ-YOUTH-2008"])),
        street.post("/v1/webhooks", json=subscription(description="长" * 501)),
        street.post("/v1/webhooks", content=b'{"url": ', headers={"content-type":
                                                                  "application/json"}),
        street.patch(path, json={}),
        street.patch(path, json={"enabled": "yes"}),
        street.patch(path, json={"url": None}),
        street.patch(path, json={"event_types": ["conflict.nope"]}),
        street.patch(path, json={"url": "http://192.168.1.1/hook"}),
        street.patch(path, json={"status": "active"}),
        street.post(f"{path}/rotate-secret", json={"secret": "whsec_mine"}),
        street.post(f"{path}/recover"),
        street.post(f"{path}/recover", params={"since": "yesterday"}),
        street.get(f"{path}/deliveries", params={"status": "lost"}),
    ]
    for response in refusals:
        assert_problem(response, 422)
    unknown_type = refusals[0].json()
    assert unknown_type["errors"][0]["field"] == "event_types"
    assert "directive.exploded" in unknown_type["errors"][0]["message"]
    assert head_position(world.admin) == before
    assert street.ok("GET", path) == {k: v for k, v in created.items()
                                      if k not in ("secret", "position")}


def test_only_the_owner_organisation_or_an_admin_manages_a_subscription(world: World) -> None:
    street, outsider = world.as_("street"), world.as_("outsider")
    created = street.ok("POST", "/v1/webhooks", 201, json=subscription())
    path = f"/v1/webhooks/{created['id']}"
    before = head_position(world.admin)
    # Another organisation's stakeholder key does not learn it exists
    for response in (outsider.get(path), outsider.patch(path, json={"enabled": False}),
                     outsider.delete(path), outsider.post(f"{path}/rotate-secret"),
                     outsider.get(f"{path}/deliveries"),
                     outsider.post(f"{path}/recover", params={"since": "2008-06-01T00:00:00Z"})):
        assert_problem(response, 404, "not_found")
    assert created["id"] not in str(outsider.ok("GET", "/v1/webhooks"))
    # Resolver and supervisor keys manage no webhooks at all
    for who in ("resolver", "supervisor"):
        assert_problem(world.as_(who).get("/v1/webhooks"), 403, "forbidden")
        assert_problem(world.as_(who).post("/v1/webhooks", json=subscription()), 403)
    assert head_position(world.admin) == before
    # Another key of the same organisation, and an admin, do manage it
    colleague = world.admin.as_key(world.admin.new_key(world.street, "stakeholder"))
    assert colleague.ok("GET", path)["id"] == created["id"]
    assert created["id"] in [item["id"] for item in world.admin.ok("GET", "/v1/webhooks")["items"]]
    assert world.admin.ok("PATCH", path, json={"description": "管理员改的"})["version"] == 2


def test_a_stakeholder_may_name_only_contracts_it_may_read(world: World) -> None:
    before = head_position(world.admin)
    # When an outsider's key names the contract it is no stakeholder of
    refused = world.as_("outsider").post(
        "/v1/webhooks", json=subscription(contracts=[world.contract_id]))
    # Then it is a 422 on contracts, as for a contract that does not exist
    problem = assert_problem(refused, 422, "validation_failed")
    assert problem["errors"][0]["field"] == "contracts"
    assert head_position(world.admin) == before
    # And the residents (a non-party stakeholder) may name it
    created = world.as_("residents").ok(
        "POST", "/v1/webhooks", 201, json=subscription(contracts=[world.contract_id.upper()]))
    assert created["contracts"] == [world.contract_id]
    # And the filter is checked again when it changes
    path = f"/v1/webhooks/{created['id']}"
    outsider_contract = world.as_("outsider").patch(path, json={"contracts": None})
    assert_problem(outsider_contract, 404)
    widened = world.as_("residents").ok("PATCH", path, json={"contracts": None})
    assert widened["version"] == 2
    assert world.as_("residents").ok("GET", path)["contracts"] is None


def test_rotating_the_secret_keeps_the_old_one_signing_for_a_day(
    world: World, live_server: LiveServer
) -> None:
    street = world.as_("street")
    created = street.ok("POST", "/v1/webhooks", 201, json=subscription())
    path = f"/v1/webhooks/{created['id']}"
    # When the owner rotates the secret
    rotated = street.ok("POST", f"{path}/rotate-secret")
    # Then the answer shows a new secret, once, and GET says until when the old one signs
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    assert rotated["version"] == 2
    shown = street.ok("GET", path)
    until = datetime.fromisoformat(shown["previous_secret_until"])
    assert timedelta(hours=23, minutes=59) < until - datetime.now(UTC) <= timedelta(hours=24)
    assert rotated["secret"] not in str(shown)
    # And a message signed now verifies with both secrets (Standard Webhooks' own library)
    now = datetime.now(UTC)
    app = live_server.services.ledger
    signing = vault_for(app).signing_secrets(subscriptions.load_subscription(app, created["id"]),
                                             now)
    body = b'{"type":"directive.issued","timestamp":"2008-06-02T09:00:00+08:00","data":{}}'
    headers = sign(signing, "msg_rotation", int(now.timestamp()), body)
    for secret in (rotated["secret"], created["secret"]):
        assert Webhook(secret).verify(body, headers) is not None
    # And after a day only the new one signs
    assert signing[0] == rotated["secret"]
    assert vault_for(app).signing_secrets(subscriptions.load_subscription(app, created["id"]),
                                          until) == [
        rotated["secret"]]


def test_disable_and_re_enable_by_patch(world: World) -> None:
    street = world.as_("street")
    created = street.ok("POST", "/v1/webhooks", 201, json=subscription())
    path = f"/v1/webhooks/{created['id']}"
    # When the owner pauses it
    street.ok("PATCH", path, json={"enabled": False})
    paused = street.ok("GET", path)
    assert (paused["status"], paused["disabled_reason"]) == ("disabled", "by_owner")
    # When it is re-enabled, with a new URL and types at the same time
    changed = street.ok("PATCH", path, json={"enabled": True, "event_types": ["*"],
                                             "url": "https://93.184.215.14/v2"})
    shown = street.ok("GET", path)
    assert (shown["status"], shown["disabled_reason"]) == ("active", None)
    assert shown["event_types"] == ["*"] and shown["url"] == "https://93.184.215.14/v2"
    # And re-enabling an active subscription records nothing
    before = head_position(world.admin)
    again = street.ok("PATCH", path, json={"enabled": True})
    assert again["version"] == changed["version"] == shown["version"]
    assert head_position(world.admin) == before


def test_a_deleted_subscription_is_gone(world: World) -> None:
    street = world.as_("street")
    created = street.ok("POST", "/v1/webhooks", 201, json=subscription())
    path = f"/v1/webhooks/{created['id']}"
    deleted = street.ok("DELETE", path)
    assert deleted["id"] == created["id"] and deleted["version"] == 2
    assert_problem(street.get(path), 404, "not_found")
    assert_problem(street.delete(path), 404, "not_found")
    assert_problem(street.patch(path, json={"enabled": True}), 404)
    assert_problem(street.get(f"{path}/deliveries"), 404)
    assert created["id"] not in str(street.ok("GET", "/v1/webhooks"))
    assert_problem(street.get("/v1/webhooks/not-a-uuid"), 404)


def test_deliveries_redeliver_and_recover(world: World, live_server: LiveServer) -> None:
    street = world.as_("street")
    created = street.ok("POST", "/v1/webhooks", 201, json=subscription())
    path = f"/v1/webhooks/{created['id']}"
    assert street.ok("GET", f"{path}/deliveries") == {"items": [], "next": None}
    # Given three messages the endpoint never took (written as a disabled endpoint's are)
    outbox = Outbox(live_server.services.ledger)
    made = datetime.now(UTC) - timedelta(hours=1)
    entries = [Entry(created["id"], Message("directive.issued", {"contract_id": world.contract_id,
                                                                 "summary": f"第{n}条"}),
                     position=10_000_000 + n, index=0, timestamp=made, status="failed")
               for n in range(3)]
    outbox.dispatch.append(entries, made)
    # When the owner reads the delivery log, a page at a time
    first = street.ok("GET", f"{path}/deliveries", params={"limit": 2})
    rest = street.ok("GET", f"{path}/deliveries", params={"after": first["next"]})
    # Then every message shows its webhook-id, contract, sequence and status
    items = first["items"] + rest["items"]
    assert [item["sequence"] for item in items] == [1, 2, 3] and rest["next"] is None
    assert [item["id"] for item in items] == [entry.id for entry in entries]
    assert {(item["status"], item["contract_id"], item["type"]) for item in items} == \
        {("failed", world.contract_id, "directive.issued")}
    # When it redelivers one, it is pending again with the same id
    redone = street.ok("POST", f"{path}/deliveries/{entries[0].id}/redeliver")
    assert redone == {"id": entries[0].id, "status": "pending"}
    pending = street.ok("GET", f"{path}/deliveries", params={"status": "pending"})["items"]
    assert [item["id"] for item in pending] == [entries[0].id]
    assert_problem(street.post(f"{path}/deliveries/msg_nothing/redeliver"), 404)
    assert_problem(world.as_("outsider").post(
        f"/v1/webhooks/{created['id']}/deliveries/{entries[1].id}/redeliver"), 404)
    # When it recovers everything failed since before they were made, the other two follow
    since = (made - timedelta(minutes=1)).isoformat()
    recovered = street.ok("POST", f"{path}/recover", params={"since": since})
    assert recovered["recovered"] == 2
    assert street.ok("GET", f"{path}/deliveries", params={"status": "failed"})["items"] == []
    assert street.ok("POST", f"{path}/recover", params={"since": since})["recovered"] == 0


def test_redeliver_and_recover_honour_an_idempotency_key(
    world: World, live_server: LiveServer,
) -> None:
    street = world.as_("street")
    created = street.ok("POST", "/v1/webhooks", 201, json=subscription())
    path = f"/v1/webhooks/{created['id']}"
    outbox = Outbox(live_server.services.ledger)
    made = datetime.now(UTC) - timedelta(hours=1)
    entries = [Entry(created["id"], Message("directive.issued", {"contract_id": world.contract_id,
                                                                 "summary": f"重发第{n}条"}),
                     position=20_000_000 + n, index=0, timestamp=made, status="failed")
               for n in range(2)]
    outbox.dispatch.append(entries, made)

    def statuses() -> list[str]:
        return [item["status"] for item in street.ok("GET", f"{path}/deliveries")["items"]]

    def fail_again() -> None:  # as if the endpoint had refused them again meanwhile
        outbox.attempts.fail_pending(created["id"], "endpoint refused again", datetime.now(UTC))

    since = (made - timedelta(minutes=1)).isoformat()
    key = {"Idempotency-Key": f"recover-{world.code}"}
    # Given a recover sent with an Idempotency-Key, and its messages failed again since
    first = street.ok("POST", f"{path}/recover", params={"since": since}, headers=key)
    assert first["recovered"] == 2 and statuses() == ["pending", "pending"]
    fail_again()
    before = head_position(world.admin)
    # When it is repeated with the same key and request
    repeat = street.ok("POST", f"{path}/recover", params={"since": since}, headers=key)
    # Then it answers the first answer, and sends nothing again, records nothing
    assert repeat == first
    assert statuses() == ["failed", "failed"] and head_position(world.admin) == before
    # And the same key with another ``since`` is refused, and changes nothing
    other = (made - timedelta(minutes=2)).isoformat()
    assert_problem(street.post(f"{path}/recover", params={"since": other}, headers=key), 422)
    assert statuses() == ["failed", "failed"] and head_position(world.admin) == before

    # Given a redeliver sent with another key, its message failed again since
    key = {"Idempotency-Key": f"redeliver-{world.code}"}
    message = f"{path}/deliveries/{entries[0].id}/redeliver"
    assert street.ok("POST", message, headers=key) == {"id": entries[0].id, "status": "pending"}
    fail_again()
    before = head_position(world.admin)
    # When it is repeated: the first answer, and the message stays failed
    assert street.ok("POST", message, headers=key) == {"id": entries[0].id, "status": "pending"}
    assert statuses() == ["failed", "failed"] and head_position(world.admin) == before
    # And the key on the other message, or with a body, is refused and changes nothing
    assert_problem(street.post(f"{path}/deliveries/{entries[1].id}/redeliver", headers=key), 422)
    assert_problem(street.post(message, json={}, headers=key), 422)
    assert statuses() == ["failed", "failed"] and head_position(world.admin) == before
