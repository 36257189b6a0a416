"""Each role may do what the role table says, and is refused the rest (SPEC §3, §9)."""

from __future__ import annotations

from .client import Needle, World, contract_terms, directive, unique
from .ledger import assert_problem, ledger_state


def test_admin_manages_organisations_keys_and_contracts(admin: Needle) -> None:
    # Given an admin key
    # When it registers an organisation with a Chinese name and lists them
    org = unique("liwan-street")
    created = admin.ok("POST", "/v1/organizations", 201,
                       json={"id": org, "name": "荔湾区逢源街道办事处", "kind": "street_office"})
    listed = admin.ok("GET", "/v1/organizations")["items"]
    # Then the command answered with id, version and position, and the name round-trips
    assert created["id"] == org and created["version"] >= 1 and created["position"] >= 1
    assert {"id": org, "name": "荔湾区逢源街道办事处", "kind": "street_office"} in listed

    # When it drafts, lists, activates, changes the policy of, and reads a contract
    provider = unique("provider")
    admin.register(provider, "启创社工", "provider")
    terms = contract_terms(unique("LW-ELDER").upper(), org, provider)
    drafted = admin.ok("POST", "/v1/contracts", 201, json=terms)
    path = f"/v1/contracts/{drafted['id']}"
    assert drafted["version"] == 1
    assert drafted["id"] in [c["id"] for c in admin.ok("GET", "/v1/contracts")["items"]]
    assert admin.ok("POST", f"{path}/activate")["version"] == 2
    assert admin.ok("PUT", f"{path}/policy", json={"profile": "client_first"})["version"] == 3
    added = admin.ok("POST", f"{path}/stakeholders", 201, json={"org": org, "standing": "party"})
    # Then each change is one more version, and the contract shows all of them
    assert added == {"id": org, "version": 4, "position": added["position"]}
    contract = admin.contract(drafted["id"])
    assert contract["status"] == "active"
    assert contract["policy"]["profile"] == "client_first"
    assert contract["stakeholders"] == [{"org": org, "standing": "party"}]

    # And the lifecycle goes on: suspend, resume, close
    admin.ok("POST", f"{path}/suspend", json={})
    admin.ok("POST", f"{path}/activate")
    admin.ok("POST", f"{path}/close")
    assert admin.contract(drafted["id"])["status"] == "closed"


def test_admin_may_not_issue_directives(world: World) -> None:
    # Given an active contract, when the admin tries to issue a directive
    before = ledger_state(world)
    response = world.admin.issue(world.contract_id)
    # Then it is forbidden: directives come from stakeholders' keys
    assert_problem(response, 403, "forbidden")
    assert ledger_state(world) == before


def test_stakeholder_issues_amends_and_withdraws_its_own_directives(world: World) -> None:
    # Given the street office's stakeholder key
    street = world.as_("street")
    # When it issues a directive
    issued = street.ok("POST", f"{world.path}/directives", 201, json=directive())
    # Then the directive is recorded with the caller's organisation as issuer
    shown = street.contract(world.contract_id)
    (recorded,) = shown["directives"]
    assert recorded["id"] == issued["id"] and recorded["issuer"] == world.street
    assert recorded["status"] == "active"
    # And its effective window is the contract period
    assert recorded["window"] == {"from": "2008-06-01", "to": "2009-05-31"}

    # When it amends and then withdraws it
    amended = street.ok("PATCH", f"{world.path}/directives/{issued['id']}",
                        json={"value": "09:00-22:00"})
    withdrawn = street.ok("DELETE", f"{world.path}/directives/{issued['id']}")
    # Then each is a new version, and the directive ends withdrawn with the new value
    assert amended["version"] == issued["version"] + 1
    assert withdrawn["version"] == issued["version"] + 2
    (final,) = street.contract(world.contract_id)["directives"]
    assert final["value"] == "09:00-22:00" and final["status"] == "withdrawn"
    # And withdrawing it again is a conflict with its state
    assert_problem(street.delete(f"{world.path}/directives/{issued['id']}"), 409,
                   "directive_not_active")


def test_stakeholder_reads_its_contract_and_history_but_nothing_more(world: World) -> None:
    street = world.as_("street")
    issued = street.ok("POST", f"{world.path}/directives", 201, json=directive())
    provider = world.as_("provider")
    before = ledger_state(world)

    # When the provider (another stakeholder) reads the contract and its history
    # Then it may
    assert provider.contract(world.contract_id)["code"] == world.code
    assert provider.history(world.contract_id)
    # And it sees only contracts it is a stakeholder of
    listed = [c["id"] for c in provider.ok("GET", "/v1/contracts")["items"]]
    assert listed == [world.contract_id]

    # But it may not change the street office's directive
    assert_problem(provider.patch(f"{world.path}/directives/{issued['id']}",
                                  json={"summary": "改一下"}), 403, "forbidden")
    assert_problem(provider.delete(f"{world.path}/directives/{issued['id']}"), 403, "forbidden")
    # Nor audit or export the history, nor run the contract, nor manage the deployment
    assert_problem(provider.get(f"{world.path}/audit"), 403)
    assert_problem(provider.get(f"{world.path}/export"), 403)
    assert_problem(provider.post(f"{world.path}/suspend"), 403)
    assert_problem(provider.put(f"{world.path}/policy", json={"profile": "client_first"}), 403)
    assert_problem(provider.post(f"{world.path}/stakeholders",
                                 json={"org": world.outsider}), 403)
    assert_problem(provider.post("/v1/organizations",
                                 json={"id": unique("x"), "name": "x", "kind": "other"}), 403)
    assert_problem(provider.get("/v1/organizations"), 403)
    assert_problem(provider.post("/v1/keys", json={"org": world.provider, "role": "admin"}), 403)
    assert_problem(provider.post("/v1/contracts",
                                 json=contract_terms(unique("X").upper(), world.street,
                                                     world.provider)), 403)
    # And none of those refusals recorded anything
    assert ledger_state(world) == before


def test_resolver_reads_contracts_in_its_escalation_chain_and_changes_nothing(
    world: World,
) -> None:
    # Given a resolver of the bureau, which is in the contract's escalation chain
    resolver = world.as_("resolver")
    before = ledger_state(world)
    # When it reads the contract, lists contracts and reads the history
    # Then it may
    assert resolver.contract(world.contract_id)["escalation_chain"] == [world.provider,
                                                                         world.bureau]
    assert [c["id"] for c in resolver.ok("GET", "/v1/contracts")["items"]] == [world.contract_id]
    assert resolver.history(world.contract_id)
    # But it may not issue directives, audit, or run the contract
    assert_problem(resolver.issue(world.contract_id), 403)
    assert_problem(resolver.get(f"{world.path}/audit"), 403)
    assert_problem(resolver.post(f"{world.path}/terminate"), 403)
    # And a resolver whose organisation is not in the chain does not see the contract at all
    stranger = world.as_("outside_resolver")
    assert_problem(stranger.get(world.path), 404, "not_found")
    assert_problem(stranger.get(f"{world.path}/history"), 404)
    assert world.contract_id not in [c["id"] for c in stranger.ok("GET", "/v1/contracts")["items"]]
    assert ledger_state(world) == before


def test_supervisor_reads_everything_and_changes_nothing(world: World) -> None:
    world.as_("street").ok("POST", f"{world.path}/directives", 201, json=directive())
    supervisor = world.as_("supervisor")
    before = ledger_state(world)
    # When the supervisor reads the contract, its history, its audit and its export
    # Then all are allowed
    assert supervisor.contract(world.contract_id)["directives"]
    assert len(supervisor.history(world.contract_id)) == before.version
    assert supervisor.ok("GET", f"{world.path}/audit")["verified"] is True
    assert supervisor.get(f"{world.path}/export").status_code == 200
    assert world.contract_id in [c["id"] for c in supervisor.ok("GET", "/v1/contracts")["items"]]
    # But every change is forbidden
    assert_problem(supervisor.issue(world.contract_id), 403)
    assert_problem(supervisor.post(f"{world.path}/suspend"), 403)
    assert_problem(supervisor.put(f"{world.path}/policy", json={}), 403)
    assert_problem(supervisor.post("/v1/keys", json={"org": world.bureau, "role": "admin"}), 403)
    assert_problem(supervisor.get("/v1/organizations"), 403)
    assert ledger_state(world) == before


def test_stakeholder_of_one_contract_cannot_know_another(admin: Needle) -> None:
    # Given two contracts, A and B, each with its own stakeholders
    a, b = World.build(admin), World.build(admin)
    b_issued = b.as_("street").ok("POST", f"{b.path}/directives", 201, json=directive())
    before_b = ledger_state(b)
    a_street = a.as_("street")
    # When a stakeholder of A reads or writes B
    # Then B does not exist for it: 404, never 403
    assert_problem(a_street.get(b.path), 404, "not_found")
    assert_problem(a_street.get(f"{b.path}/history"), 404)
    assert_problem(a_street.issue(b.contract_id), 404)
    assert_problem(a_street.patch(f"{b.path}/directives/{b_issued['id']}",
                                  json={"summary": "越权"}), 404)
    assert_problem(a_street.delete(f"{b.path}/directives/{b_issued['id']}"), 404)
    assert b.contract_id not in [c["id"] for c in a_street.ok("GET", "/v1/contracts")["items"]]
    # And B's directive cannot be reached through A's path either
    assert_problem(a_street.delete(f"{a.path}/directives/{b_issued['id']}"), 404)
    # And nothing was recorded on B
    assert ledger_state(b) == before_b


def test_missing_unknown_and_revoked_keys_are_unauthenticated(world: World,
                                                                anonymous: Needle) -> None:
    # Given no key at all, then 401 with a Bearer challenge
    response = anonymous.get("/v1/contracts")
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")
    # Given a key that looks right but was never issued, then 401
    forged = "ndl_" + "0" * 32 + "_" + "x" * 43
    assert_problem(world.admin.as_key(forged).get("/v1/contracts"), 401)
    assert_problem(world.admin.as_key("not-a-key").get("/v1/contracts"), 401)
    # Given a key that worked, when the admin revokes it
    key_body = world.admin.ok("POST", "/v1/keys", 201, json={"org": world.street,
                                                              "role": "stakeholder"})
    street = world.admin.as_key(key_body["key"])
    assert street.contract(world.contract_id)["id"] == world.contract_id
    revoked = world.admin.ok("DELETE", f"/v1/keys/{key_body['id']}")
    assert revoked["id"] == key_body["id"]
    # Then it no longer authenticates, for reads or writes
    before = ledger_state(world)
    assert_problem(street.get(world.path), 401, "unauthenticated")
    assert_problem(street.issue(world.contract_id), 401)
    assert ledger_state(world) == before
