"""``GET /v1/contracts/{id}/diff``: what changed between two versions, over HTTP.

Diffs are replayed from the event store, so the live server needs no worker.
"""

from __future__ import annotations

from typing import Any

from .client import Needle, World

REPORT = "reporting.weekly"
STREET_TEMPLATE = {"format": "street-template-v2"}
BUREAU_FORM = {"format": "bureau-statistics-form"}


def diff(who: Needle, world: World, from_version: int, to_version: int) -> dict[str, Any]:
    body: dict[str, Any] = who.ok("GET", f"{world.path}/diff", params={
        "from_version": from_version, "to_version": to_version})
    return body


def ids(entries: list[dict[str, Any]]) -> list[str]:
    return [entry["id"] for entry in entries]


def reporting_story(world: World) -> dict[str, str]:
    """Versions 3–7 of the contract (1 drafted, 2 activated):

    3 the street asks for its weekly report template; 4 the provider for the bureau's
    form (a contradiction); 5 the residents ask for evening sessions; 6 the street
    amends its report to the bureau's form (the contradiction dissolves, a duplicate
    opens); 7 the provider withdraws its report (the duplicate dissolves).
    """
    street = world.as_("street").ok("POST", f"{world.path}/directives", 201, json={
        "subject": REPORT, "value": STREET_TEMPLATE, "summary": "每周按街道模板报送工作数据",
        "basis": "purchaser_request", "hours_per_week": 20})["id"]
    provider = world.as_("provider").ok("POST", f"{world.path}/directives", 201, json={
        "subject": REPORT, "value": BUREAU_FORM, "summary": "每周按民政统计报表报送",
        "basis": "contract", "citation": "服务合同 第三条",
        "hours_per_week": 12})["id"]
    evenings = world.as_("residents").ok("POST", f"{world.path}/directives", 201, json={
        "subject": "youth_zone.evening_sessions", "value": {"evenings_per_week": 3},
        "summary": "居民联名请求增加三个晚间青少年活动时段", "basis": "petition",
        "hours_per_week": 25, "people_affected": 200, "vulnerability": 0.3})["id"]
    world.as_("street").ok("PATCH", f"{world.path}/directives/{street}",
                           json={"value": BUREAU_FORM, "summary": "每周按民政统计报表报送"})
    world.as_("provider").ok("DELETE", f"{world.path}/directives/{provider}")
    assert world.version() == 7
    return {"street": street, "provider": provider, "evenings": evenings}


def test_a_diff_shows_directives_added_amended_and_withdrawn_and_conflicts_come_and_go(
    world: World,
) -> None:
    # given the reporting story of versions 3 to 7
    d = reporting_story(world)
    supervisor = world.as_("supervisor")

    # when a supervisor diffs the activated contract (2) with the end of the story (7)
    whole = diff(supervisor, world, 2, 7)

    # then three directives were added, the street's is also changed (its value and
    # summary), the provider's withdrawn; both conflicts opened and dissolved
    assert (whole["from_version"], whole["to_version"]) == (2, 7)
    assert whole["contract_id"] == world.contract_id
    directives = whole["directives"]
    assert ids(directives["added"]) == [d["street"], d["provider"], d["evenings"]]
    assert directives["changed"] == []  # added in between: nothing to compare it with
    assert ids(directives["withdrawn"]) == [d["provider"]]
    assert directives["overridden"] == []
    conflicts = whole["conflicts"]
    assert [c["kind"] for c in conflicts["opened"]] == ["contradiction", "duplicate"]
    assert [c["kind"] for c in conflicts["dissolved"]] == ["contradiction", "duplicate"]
    assert conflicts["resolved"] == conflicts["escalated"] == []

    # when the middle of the story is diffed: from the contradiction (4) to the amendment (6)
    middle = diff(supervisor, world, 4, 6)

    # then the street's directive changed field by field, the contradiction dissolved and
    # the duplicate opened at version 6
    [changed] = middle["directives"]["changed"]
    assert changed["id"] == d["street"]
    assert changed["changes"] == {
        "value": {"from": STREET_TEMPLATE, "to": BUREAU_FORM},
        "summary": {"from": "每周按街道模板报送工作数据", "to": "每周按民政统计报表报送"},
    }
    assert ids(middle["directives"]["added"]) == [d["evenings"]]
    [opened] = middle["conflicts"]["opened"]
    assert (opened["kind"], opened["opened_version"]) == ("duplicate", 6)
    [dissolved] = middle["conflicts"]["dissolved"]
    assert (dissolved["kind"], dissolved["dissolved_version"]) == ("contradiction", 6)

    # and each conflict is explained as the conflict view replayed at version 6 explains it,
    # in Chinese when the reader prefers Chinese
    replayed = {c["id"]: c for c in supervisor.ok(
        "GET", f"{world.path}/conflicts", params={"version": 6, "status": "all"})["conflicts"]}
    for conflict in (opened, dissolved):
        assert conflict["explanations"] == replayed[conflict["id"]]["explanations"]
        assert conflict["explanation"] == conflict["explanations"]["en"]
    in_chinese = supervisor.ok("GET", f"{world.path}/diff", headers={"Accept-Language": "zh-CN"},
                               params={"from_version": 4, "to_version": 6})
    [opened_zh] = in_chinese["conflicts"]["opened"]
    assert opened_zh["explanation"] == opened["explanations"]["zh"]
    assert "重复" in opened_zh["explanation"]


def test_rank_changes_agree_with_the_priority_views_replayed_at_each_version(
    world: World,
) -> None:
    # given the reporting story
    reporting_story(world)
    supervisor = world.as_("supervisor")

    for before, after in [(2, 3), (3, 5), (5, 7), (2, 7)]:
        # when two versions are diffed
        moves = diff(supervisor, world, before, after)["ranks"]

        # then the rank changes are exactly those between the priority views replayed at
        # each version (each on its own reference date)
        ranks = {}
        for version in (before, after):
            view = supervisor.ok("GET", f"{world.path}/priorities", params={"version": version})
            ranks[version] = {e["directive_id"]: e["rank"] for e in view["priorities"]}
        expected = {
            (key, ranks[before].get(key), ranks[after].get(key))
            for key in ranks[before].keys() | ranks[after].keys()
            if ranks[before].get(key) != ranks[after].get(key)
        }
        assert {(m["directive_id"], m["from"], m["to"]) for m in moves} == expected
        ordered = [m["to"] for m in moves if m["to"] is not None]
        assert ordered == sorted(ordered)


def test_a_version_with_itself_is_an_empty_diff(world: World) -> None:
    reporting_story(world)

    same = diff(world.admin, world, 4, 4)

    assert same["directives"] == {"added": [], "changed": [], "withdrawn": [], "overridden": []}
    assert same["conflicts"] == {"opened": [], "updated": [], "resolved": [], "dissolved": [],
                                 "escalated": []}
    assert same["ranks"] == []


def test_supervisors_admins_stakeholders_and_resolvers_may_diff_and_others_may_not(
    world: World, anonymous: Needle,
) -> None:
    # given a contract with one directive
    world.as_("street").ok("POST", f"{world.path}/directives", 201, json={
        "subject": REPORT, "value": STREET_TEMPLATE, "summary": "每周按街道模板报送工作数据",
        "basis": "purchaser_request"})
    by_admin = diff(world.admin, world, 1, 3)
    assert len(by_admin["directives"]["added"]) == 1

    # when those who may read its history diff it, then each gets the same diff
    for who in ("supervisor", "street", "residents", "provider", "resolver"):
        assert diff(world.as_(who), world, 1, 3) == by_admin, who

    # when anyone else asks, the contract does not exist for them; without a key, 401
    for who in ("outsider", "outside_resolver"):
        response = world.as_(who).get(f"{world.path}/diff",
                                      params={"from_version": 1, "to_version": 3})
        assert response.status_code == 404, who
        assert response.headers["content-type"].startswith("application/problem+json")
    assert anonymous.get(f"{world.path}/diff",
                         params={"from_version": 1, "to_version": 3}).status_code == 401


def test_versions_must_be_given_positive_and_in_order(world: World) -> None:
    for params in [
        {"from_version": 3, "to_version": 2},
        {"from_version": 0, "to_version": 2},
        {"from_version": 1},
        {"to_version": 2},
        {"from_version": "one", "to_version": 2},
    ]:
        response = world.admin.get(f"{world.path}/diff", params=params)

        assert response.status_code == 422, (params, response.text)
        problem = response.json()
        assert problem["status"] == 422 and problem["errors"], params


def test_a_version_beyond_the_head_is_not_found(world: World) -> None:
    # given a contract at version 2 (drafted, activated)
    assert world.version() == 2

    # when a supervisor asks up to version 3
    response = world.as_("supervisor").get(f"{world.path}/diff",
                                           params={"from_version": 1, "to_version": 3})

    # then there is no such version yet, and the problem names the latest
    assert response.status_code == 404
    problem = response.json()
    assert "no version 3" in problem["detail"]
    assert (problem["code"], problem["version"], problem["latest"]) == ("not_found", 3, 2)

    # and a view as of a time before the contract was drafted names that time
    early = world.as_("supervisor").get(f"{world.path}/priorities",
                                        params={"as_of": "1999-01-01T00:00:00+08:00"})
    assert early.status_code == 404
    assert early.json()["as_of"] == "1999-01-01T00:00:00+08:00"


def test_a_diff_shows_a_resolution_its_overridden_directive_and_an_escalation(
    world: World,
) -> None:
    # given 3 the street's weekly report, 4 the provider's identical one (a duplicate),
    # 5 the residents' other format (a contradiction of three)
    report = {"subject": REPORT, "summary": "每周报送工作数据", "basis": "purchaser_request",
              "hours_per_week": 10}
    street = world.as_("street").ok("POST", f"{world.path}/directives", 201,
                                    json={**report, "value": STREET_TEMPLATE})["id"]
    provider = world.as_("provider").ok("POST", f"{world.path}/directives", 201,
                                        json={**report, "value": STREET_TEMPLATE})["id"]
    world.as_("residents").ok("POST", f"{world.path}/directives", 201,
                              json={**report, "value": BUREAU_FORM})
    open_now = world.admin.ok("GET", f"{world.path}/conflicts", params={"version": 5})
    duplicate = next(c for c in open_now["conflicts"] if c["kind"] == "duplicate")

    # when the bureau's resolver (level 1) merges the duplicate into the street's report (6)
    # and escalates the contradiction left between street and residents from level 0 (7)
    resolver = world.as_("resolver")
    resolver.ok("POST", f"{world.path}/conflicts/{duplicate['id']}/resolution", json={
        "outcome": "merged", "upheld": [street], "overridden": [provider],
        "rationale": "两份相同的街道模板周报合并为一份"})
    after = world.admin.ok("GET", f"{world.path}/conflicts", params={"version": 6})
    left = next(c for c in after["conflicts"]
                if c["kind"] == "contradiction" and c["status"] == "open")
    resolver.ok("POST", f"{world.path}/conflicts/{left['id']}/escalation",
                json={"from_level": 0, "reason": "格式之争，提请民政局裁定"})

    # then a supervisor's diff from 5 to 7 tells it all
    told = diff(world.as_("supervisor"), world, 5, 7)
    assert ids(told["directives"]["overridden"]) == [provider]
    assert told["directives"]["added"] == told["directives"]["withdrawn"] == []
    conflicts = told["conflicts"]
    assert ids(conflicts["resolved"]) == [duplicate["id"]]
    assert conflicts["resolved"][0]["resolution"]["rationale"] == "两份相同的街道模板周报合并为一份"
    # the contradiction of three goes on as the same episode, the provider's report gone
    assert conflicts["dissolved"] == conflicts["opened"] == []
    [updated] = conflicts["updated"]
    assert updated["id"] == left["id"]
    assert updated["member_changes"][-1] == {"version": 6, "joined": [], "left": [provider]}
    [escalated] = conflicts["escalated"]
    assert (escalated["id"], escalated["from_level"], escalated["to_level"]) == (
        left["id"], 0, 1)
    [leaving] = [m for m in told["ranks"] if m["directive_id"] == provider]
    assert leaving["from"] is not None and leaving["to"] is None  # overridden: not ranked

    # and the escalation alone is the diff from 6 to 7
    last = diff(world.as_("supervisor"), world, 6, 7)
    assert ids(last["conflicts"]["escalated"]) == [left["id"]]
    assert last["conflicts"]["opened"] == last["conflicts"]["resolved"] == []
