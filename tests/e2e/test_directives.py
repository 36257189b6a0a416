"""Directives as stakeholders see them: standing, lifecycle, Chinese text, concurrency."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from .client import Needle, World, directive
from .ledger import assert_problem, ledger_state

BURST_CLIENTS, DIRECTIVES_EACH = 32, 10


def test_a_non_party_stakeholder_s_basis_is_recorded_as_non_party(world: World) -> None:
    # Given the residents, a stakeholder without standing as a party
    residents = world.as_("residents")
    # When they issue a directive claiming a statutory basis
    issued = residents.ok("POST", f"{world.path}/directives", 201,
                          json=directive(basis="statute", summary="居民要求增加长者探访"))
    # Then it is recorded, but with basis non_party
    (recorded,) = residents.contract(world.contract_id)["directives"]
    assert recorded["id"] == issued["id"]
    assert recorded["basis"] == "non_party" and recorded["issuer"] == world.residents
    # And amending its basis cannot lift it either
    residents.ok("PATCH", f"{world.path}/directives/{issued['id']}", json={"basis": "contract"})
    (amended,) = residents.contract(world.contract_id)["directives"]
    assert amended["basis"] == "non_party"
    # While a party's basis is kept as given
    world.as_("street").ok("POST", f"{world.path}/directives", 201,
                           json=directive(basis="statute",
                                          citation="《中华人民共和国未成年人保护法》第四十四条"))
    bases = {d["issuer"]: d["basis"] for d in world.admin.contract(world.contract_id)["directives"]}
    assert bases[world.street] == "statute"


def test_chinese_text_round_trips_everywhere(admin: Needle) -> None:
    # Given a contract whose organisations, title, places and directive are in Chinese
    world = World.build(admin)
    summary = "请于每周六上午在江南中街社区服务中心开展青少年小组活动，注意保护个人隐私。"
    body = directive(summary=summary, value={"地点": "社区服务中心", "时间": "周六上午"},
                     locations=["江南中街"], tags=["personal_data_disclosure"])
    # When it is recorded and read back through every view
    world.as_("street").ok("POST", f"{world.path}/directives", 201, json=body)
    contract = world.admin.contract(world.contract_id)
    history = world.admin.history(world.contract_id)
    organisations = {o["id"]: o["name"] for o in admin.ok("GET", "/v1/organizations")["items"]}
    # Then every character is as sent
    assert contract["title"].startswith("海珠区青少年服务")
    assert contract["service_area"] == ["江南中街", "素社街"]
    (shown,) = contract["directives"]
    assert shown["summary"] == summary
    assert shown["value"] == {"地点": "社区服务中心", "时间": "周六上午"}
    assert history[-1]["data"]["summary"] == summary
    assert organisations[world.street] == "江南中街街道办事处"
    # And the default confidentiality rule, with its Chinese citation, is on the contract
    (rule,) = contract["rules"]
    assert rule["citation"].startswith("示例引用")


def test_directives_need_an_active_contract(admin: Needle) -> None:
    # Given a contract still in draft
    world = World.build(admin, activate=False)
    street = world.as_("street")
    before = ledger_state(world)
    # When a stakeholder issues a directive, then 409 and nothing recorded
    assert_problem(street.issue(world.contract_id), 409, "contract_not_active")
    assert ledger_state(world) == before
    # When the contract is activated, issuing works; when suspended, it is refused again
    admin.ok("POST", f"{world.path}/activate")
    issued = street.ok("POST", f"{world.path}/directives", 201, json=directive())
    admin.ok("POST", f"{world.path}/suspend")
    assert_problem(street.issue(world.contract_id), 409, "contract_not_active")
    assert_problem(street.delete(f"{world.path}/directives/{issued['id']}"), 409)
    # And lifecycle commands out of order are illegal transitions
    assert_problem(admin.post(f"{world.path}/suspend"), 409, "illegal_transition")
    admin.ok("POST", f"{world.path}/terminate")
    assert_problem(admin.post(f"{world.path}/activate"), 409, "illegal_transition")
    assert_problem(admin.put(f"{world.path}/policy", json={}), 409, "contract_finished")


def test_a_directive_window_must_lie_within_the_contract_period(world: World) -> None:
    before = ledger_state(world)
    response = world.as_("street").issue(world.contract_id,
                                         window={"from": "2009-05-01", "to": "2009-07-01"})
    problem = assert_problem(response, 422, "validation_failed")
    assert problem["errors"][0]["field"] == "window"
    assert ledger_state(world) == before


def test_a_concurrent_burst_on_one_contract_loses_nothing(world: World) -> None:
    # Given 32 clients, each with its own connection, on one contract
    start = world.version()
    keys = ["street", "provider", "residents"]
    clients = [world.as_(keys[n % len(keys)]) for n in range(BURST_CLIENTS)]

    def fire(n: int) -> list[dict[str, int]]:
        client, answers = clients[n], []
        for i in range(DIRECTIVES_EACH):
            body = directive(subject=f"burst.client_{n}", value=i, summary=f"第{n}号客户端 #{i}")
            answers.append(client.ok("POST", f"{world.path}/directives", 201, json=body))
        return answers

    # When each fires 10 directives at once
    with ThreadPoolExecutor(BURST_CLIENTS) as pool:
        answers = [a for batch in pool.map(fire, range(BURST_CLIENTS)) for a in batch]
    total = BURST_CLIENTS * DIRECTIVES_EACH
    # Then every one was recorded, each at its own version, with no gaps
    assert len({a["id"] for a in answers}) == total
    versions = sorted(a["version"] for a in answers)
    assert versions == list(range(start + 1, start + total + 1))
    positions = [a["position"] for a in answers]
    assert len(set(positions)) == total
    # And the contract and its history agree
    contract = world.admin.contract(world.contract_id)
    assert contract["version"] == start + total
    assert len(contract["directives"]) == total
    history = world.admin.history(world.contract_id)
    assert [e["version"] for e in history] == list(range(1, start + total + 1))
    assert world.admin.ok("GET", f"{world.path}/audit")["verified"] is True


def test_a_statute_or_contract_basis_needs_a_citation(world: World) -> None:
    # When the street claims a statute, or the contract, without saying which article
    for basis in ("statute", "contract"):
        refused = world.as_("street").post(f"{world.path}/directives",
                                           json=directive(basis=basis))
        # Then it is refused, naming the citation, and nothing is recorded
        assert refused.status_code == 422, refused.text
        assert [e["field"] for e in refused.json()["errors"]] == ["citation"]
    assert world.admin.contract(world.contract_id)["directives"] == []
    # While with one it is recorded as sent
    cited = world.as_("street").ok("POST", f"{world.path}/directives", 201, json=directive(
        basis="statute", citation="《中华人民共和国未成年人保护法》第四十四条"))
    [recorded] = world.admin.contract(world.contract_id)["directives"]
    assert recorded["id"] == cited["id"]
    assert recorded["citation"] == "《中华人民共和国未成年人保护法》第四十四条"
