"""SPEC §13 over HTTP: admission, classification, disputes and joint decisions, with the
403, 404, 409 and 422 of each route."""

from __future__ import annotations

from typing import Any

from .client import Needle, World, contract_terms, unique


def conflicts(world: World, version: int, status: str = "all") -> list[dict[str, Any]]:
    body = world.as_("supervisor").ok("GET", f"{world.path}/conflicts",
                                      params={"version": version, "status": status})
    return list(body["conflicts"])


def of_kind(world: World, version: int, kind: str, status: str = "open") -> list[dict[str, Any]]:
    return [c for c in conflicts(world, version, status) if c["kind"] == kind]


def issued(world: World, who: str = "street", **fields: Any) -> tuple[str, int]:
    body = world.as_(who).ok("POST", f"{world.path}/directives", 201, json={
        "subject": "census.youth", "value": "street-form", "summary": "青少年人口普查入户",
        "basis": "purchaser_request", "hours_per_week": 12, "people_affected": 800,
        "locations": ["江南中街道"], **fields})
    return str(body["id"]), int(body["version"])


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    return body


def admission(world: World) -> list[dict[str, Any]]:
    return [{"org": world.street, "task_types": ["casework", "community_activity"]},
            {"org": world.provider, "task_types": ["*"]}]


def test_the_admission_list_blocks_work_the_street_may_not_assign(world: World) -> None:
    census, _ = issued(world, task_type="census")
    casework, _ = issued(world, subject="casework.visits", task_type="casework")
    path = f"{world.path}/admission"

    # only an admin replaces the list; others are refused, strangers learn nothing
    problem(world.as_("street").put(path, json={"admission": admission(world)}), 403)
    problem(world.as_("outsider").put(path, json={"admission": []}), 404)
    problem(world.admin.put(f"/v1/contracts/{unique('x')}/admission",
                            json={"admission": []}), 404)
    bad = problem(world.admin.put(path, json={"admission": [
        {"org": world.street, "task_types": ["拆迁谈判"]}]}), 422)
    assert bad["errors"]
    problem(world.admin.put(path, json={"admission": [], "extra": 1}), 422)
    problem(world.admin.put(path, json={"admission": [
        {"org": world.street, "task_types": ["casework"]},
        {"org": world.street, "task_types": ["census"]}]}), 422)
    assert not of_kind(world, world.version(), "not_admitted")

    # the list is an event, and every directive is checked again
    version = world.admin.ok("PUT", path, json={"admission": admission(world)})["version"]
    [blocked] = of_kind(world, version, "not_admitted")
    assert blocked["members"] == [census] and blocked["level"] == 0
    assert "普查统计" in blocked["explanations"]["zh"]
    ranks = world.as_("street").ok("GET", f"{world.path}/priorities",
                                   params={"version": version})["priorities"]
    tiers = {entry["directive_id"]: entry for entry in ranks}
    assert tiers[census]["tier"] == 5 and tiers[census]["schedule"]["outcome"] == "blocked"
    assert tiers[casework]["tier"] == 4
    assert world.admin.contract(world.contract_id)["admission"] == admission(world)
    history = world.admin.history(world.contract_id)
    assert history[-1]["type"].endswith("AdmissionChanged")

    # the provider (level 0) endorses it: the street sits outside the chain
    resolver = world.admin.as_key(world.admin.new_key(world.provider, "resolver"))
    version = resolver.ok("POST", f"{world.path}/conflicts/{blocked['id']}/resolution", json={
        "outcome": "upheld", "upheld": [census], "rationale": "本次普查经区里同意，可以承接"})[
        "version"]
    assert not of_kind(world, version, "not_admitted")
    ranks = world.as_("street").ok("GET", f"{world.path}/priorities",
                                   params={"version": version})["priorities"]
    assert next(e for e in ranks if e["directive_id"] == census)["tier"] == 4


def test_a_new_list_that_admits_the_work_dissolves_the_conflict(world: World) -> None:
    census, _ = issued(world, task_type="census")
    path = f"{world.path}/admission"
    world.admin.ok("PUT", path, json={"admission": admission(world)})
    wider = [{**admission(world)[0], "task_types": ["casework", "census"]}]
    version = world.admin.ok("PUT", path, json={"admission": wider})["version"]
    assert not of_kind(world, version, "not_admitted")
    [gone] = of_kind(world, version, "not_admitted", "dissolved")
    assert gone["members"] == [census]


def test_the_provider_classifies_and_the_rules_apply_again(world: World) -> None:
    files, _ = issued(world, subject="cases.files", task_type="casework")
    path = f"{world.path}/directives/{files}/classification"
    body = {"task_type": "census", "add_tags": ["personal_data_disclosure"],
            "note": "名为个案，实为普查并索取个案档案"}
    problem(world.as_("street").post(path, json=body), 403)
    problem(world.as_("resolver").post(path, json=body), 403)
    problem(world.as_("outsider").post(path, json=body), 404)
    problem(world.as_("provider").post(f"{world.path}/directives/{unique('d')}/classification",
                                       json=body), 404)
    problem(world.as_("provider").post(path, json={"note": "什么也没说"}), 422)
    problem(world.as_("provider").post(path, json={**body, "task_type": "拆迁"}), 422)
    problem(world.as_("provider").post(path, json={**body, "remove_tags": ["x"]}), 422)

    result = world.as_("provider").ok("POST", path, json=body)
    assert result["id"] == files
    [violation] = of_kind(world, result["version"], "rule_violation")
    assert violation["members"] == [files] and violation["details"]["rule"] == "confidentiality"
    directive = next(d for d in world.admin.contract(world.contract_id)["directives"]
                     if d["id"] == files)
    assert directive["task_type"] == "casework" and directive["tags"] == []
    assert directive["classification"]["task_type"] == "census"
    assert directive["classification"]["tags"] == ["personal_data_disclosure"]
    assert world.admin.history(world.contract_id)[-1]["type"].endswith("DirectiveClassified")

    world.as_("street").ok("DELETE", f"{world.path}/directives/{files}")
    problem(world.as_("provider").post(path, json=body), 409)


def test_a_dispute_opens_a_conflict_and_a_correction_settles_it(world: World) -> None:
    census, _ = issued(world)
    path = f"{world.path}/directives/{census}/disputes"
    body = {"fields": ["people_affected"], "reason": "江南中街青少年实际不足两百人"}
    problem(world.as_("residents").post(path, json=body), 403)  # not a party
    problem(world.as_("street").post(path, json=body), 403)  # its own directive
    problem(world.as_("resolver").post(path, json=body), 403)  # not a stakeholder key
    problem(world.as_("outsider").post(path, json=body), 404)
    problem(world.as_("provider").post(f"{world.path}/directives/{unique('d')}/disputes",
                                       json=body), 404)
    problem(world.as_("provider").post(path, json={**body, "fields": ["summary"]}), 422)
    problem(world.as_("provider").post(path, json={**body, "fields": []}), 422)

    opened = world.as_("provider").ok("POST", path, 201, json=body)
    problem(world.as_("provider").post(path, json=body), 409)
    [disputed] = of_kind(world, opened["version"], "disputed")
    assert disputed["id"] == opened["id"] and disputed["members"] == [census]
    assert disputed["level"] == 0 and "江南中街青少年实际不足两百人" in disputed["explanation"]

    decide = f"{world.path}/conflicts/{disputed['id']}/resolution"
    problem(world.as_("resolver").post(decide, json={
        "outcome": "corrected", "corrections": {"hours_per_week": 1}, "rationale": "核实"}), 422)
    problem(world.as_("resolver").post(decide, json={
        "outcome": "corrected", "corrections": {"summary": "x"}, "rationale": "核实"}), 422)
    problem(world.as_("resolver").post(decide, json={
        "outcome": "upheld", "upheld": [census], "corrections": {"people_affected": 1},
        "rationale": "核实"}), 422)
    decided = world.as_("resolver").ok("POST", decide, json={
        "outcome": "corrected", "corrections": {"people_affected": 180},
        "rationale": "经民政局核实，江南中街青少年为180人"})
    directive = next(d for d in world.admin.contract(world.contract_id)["directives"]
                     if d["id"] == census)
    assert directive["people_affected"] == 180
    assert directive["disputes"][0]["status"] == "decided"
    last = world.admin.history(world.contract_id)[-2:]
    assert [e["type"].rsplit(".", 1)[-1] for e in last] == [
        "ConflictResolved", "DirectiveCorrected"]
    assert last[-1]["actor"]["org"] == world.bureau
    [settled] = of_kind(world, decided["version"], "disputed", "resolved")
    assert settled["resolution"]["corrections"] == {"people_affected": 180}
    problem(world.as_("resolver").post(decide, json={
        "outcome": "upheld", "upheld": [census], "rationale": "再议"}), 409)


def joint_contract(admin: Needle) -> tuple[World, str]:
    """A contract whose decisions need the purchaser's and a residents' committee's approval,
    with a disputed directive; answers the world and the disputed conflict's id."""
    street, provider, bureau, committee = (unique(p) for p in ("street", "provider", "bureau",
                                                               "committee"))
    for org, name, kind in ((street, "江南中街道办事处", "street_office"),
                            (provider, "启智社工", "provider"),
                            (bureau, "海珠区民政局", "civil_affairs_bureau"),
                            (committee, "江南中社区居委会", "residents_committee")):
        admin.register(org, name, kind)
    terms = contract_terms(unique("HZ-JOINT").upper(), street, provider,
                           stakeholders=[{"org": street, "standing": "party"},
                                         {"org": provider, "standing": "party"},
                                         {"org": committee, "standing": "party"}],
                           escalation_chain=[provider, bureau],
                           joint_decision=[street, committee])
    problem(admin.post("/v1/contracts", json={**terms, "code": unique("X").upper(),
                                              "joint_decision": [unique("nobody")]}), 422)
    contract_id = admin.ok("POST", "/v1/contracts", 201, json=terms)["id"]
    admin.ok("POST", f"/v1/contracts/{contract_id}/activate")
    world = World(admin, street, provider, bureau, committee, "", contract_id, terms["code"])
    world.keys = {"street": admin.new_key(street, "stakeholder"),
                  "provider": admin.new_key(provider, "stakeholder"),
                  "committee": admin.new_key(committee, "stakeholder"),
                  "resolver": admin.new_key(bureau, "resolver"),
                  "bureau_stakeholder": admin.new_key(bureau, "stakeholder"),
                  "supervisor": admin.new_key(bureau, "supervisor")}
    census, _ = issued(world)
    disputed = world.as_("provider").ok("POST", f"{world.path}/directives/{census}/disputes",
                                        201, json={"fields": ["people_affected"],
                                                   "reason": "人数不实"})["id"]
    return world, str(disputed)


def test_joint_decisions_need_every_listed_approval(admin: Needle) -> None:
    world, disputed = joint_contract(admin)
    [record] = of_kind(world, world.version(), "disputed")
    census = record["members"][0]
    decide = f"{world.path}/conflicts/{disputed}/resolution"
    answers = f"{decide}/approvals"
    problem(world.as_("street").post(answers, json={"approve": True, "note": "同意"}), 409)

    proposal = {"outcome": "upheld", "upheld": [census], "rationale": "按街道数字执行"}
    version = world.as_("resolver").ok("POST", decide, json=proposal)["version"]
    [pending] = of_kind(world, version, "disputed")
    assert pending["status"] == "open" and pending["proposal"]["status"] == "pending"
    assert world.admin.history(world.contract_id)[-1]["type"].endswith("DecisionProposed")
    problem(world.as_("resolver").post(decide, json=proposal), 409)

    problem(world.as_("provider").post(answers, json={"approve": True}), 403)  # not listed
    problem(world.as_("resolver").post(answers, json={"approve": True}), 403)
    problem(world.as_("bureau_stakeholder").post(answers, json={"approve": True}), 404)
    problem(world.as_("street").post(f"{world.path}/conflicts/{unique('c')}/resolution/approvals",
                                     json={"approve": True}), 404)
    problem(world.as_("street").post(answers, json={"approve": "yes"}), 422)
    problem(world.as_("street").post(answers, json={}), 422)

    world.as_("street").ok("POST", answers, json={"approve": True, "note": "同意"})
    problem(world.as_("street").post(answers, json={"approve": True}), 409)
    assert of_kind(world, world.version(), "disputed")[0]["status"] == "open"
    version = world.as_("committee").ok("POST", answers, json={"approve": True,
                                                               "note": "居委会同意"})["version"]
    [done] = of_kind(world, version, "disputed", "resolved")
    assert done["resolution"]["approved_by"] == sorted([world.street, world.residents])
    assert done["resolution"]["resolver"] == world.bureau


def test_a_rejection_reopens_and_an_escalation_withdraws(admin: Needle) -> None:
    world, disputed = joint_contract(admin)
    census = of_kind(world, world.version(), "disputed")[0]["members"][0]
    decide = f"{world.path}/conflicts/{disputed}/resolution"
    provider_resolver = admin.as_key(admin.new_key(world.provider, "resolver"))
    proposal = {"outcome": "upheld", "upheld": [census], "rationale": "维持"}

    provider_resolver.ok("POST", decide, json=proposal)
    version = world.as_("committee").ok("POST", f"{decide}/approvals", json={
        "approve": False, "note": "居民不同意这个人数"})["version"]
    [reopened] = of_kind(world, version, "disputed")
    assert reopened["proposal"] is None
    assert reopened["proposals"][0]["status"] == "rejected"
    assert reopened["proposals"][0]["approvals"][-1]["note"] == "居民不同意这个人数"

    provider_resolver.ok("POST", decide, json=proposal)
    escalation = {"from_level": 0, "reason": "居民与街道各执一词"}
    version = provider_resolver.ok("POST", f"{world.path}/conflicts/{disputed}/escalation",
                                   json=escalation)["version"]
    [escalated] = of_kind(world, version, "disputed")
    assert escalated["level"] == 1 and escalated["proposal"] is None
    assert [p["status"] for p in escalated["proposals"]] == ["rejected", "withdrawn"]
    problem(world.as_("street").post(f"{decide}/approvals", json={"approve": True}), 409)


def test_decisions_on_a_contract_without_joint_decision_are_final(world: World) -> None:
    census, _ = issued(world)
    disputed = world.as_("provider").ok("POST", f"{world.path}/directives/{census}/disputes",
                                        201, json={"fields": ["tags"], "reason": "未经同意"})["id"]
    problem(world.as_("street").post(
        f"{world.path}/conflicts/{disputed}/resolution/approvals", json={"approve": True}), 403)
    version = world.as_("resolver").ok("POST", f"{world.path}/conflicts/{disputed}/resolution",
                                       json={"outcome": "upheld", "upheld": [census],
                                             "rationale": "街道已取得同意"})["version"]
    assert of_kind(world, version, "disputed", "resolved")[0]["resolution"]["outcome"] == "upheld"


def test_a_finished_contract_takes_no_admission_list_and_no_dispute(world: World) -> None:
    census, _ = issued(world)
    world.admin.ok("POST", f"{world.path}/terminate")
    problem(world.admin.put(f"{world.path}/admission", json={"admission": []}), 409)
    problem(world.as_("provider").post(f"{world.path}/directives/{census}/disputes", json={
        "fields": ["due"], "reason": "合同已终止"}), 409)
    problem(world.as_("provider").post(f"{world.path}/directives/{census}/classification",
                                       json={"task_type": "census", "note": "普查"}), 409)
