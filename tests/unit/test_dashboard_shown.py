"""What the dashboard works out for display: who may override whom, and the weekly load."""

from __future__ import annotations

from api.ui.shown import authority, weekly_load
from domain.organisations import Caller, Role

CHAIN = ["qichuang", "haizhu-youth-league", "haizhu-civil-affairs"]
DIRECTIVES = {
    "bureau": {"id": "bureau", "issuer": "haizhu-civil-affairs", "summary": "按民政统计报表报送"},
    "street": {"id": "street", "issuer": "haichuang-street", "summary": "每周按街道模板报送"},
    "league": {"id": "league", "issuer": "haizhu-youth-league", "summary": "团区委活动"},
}


def resolver(org: str) -> Caller:
    return Caller(principal_id=f"p-{org}", org=org, role=Role.RESOLVER)


def test_a_resolver_may_override_issuers_at_or_below_it_and_outside_the_chain() -> None:
    conflict = {"level": 1, "members": ["bureau", "street", "league"]}
    shown = authority(CHAIN, conflict, DIRECTIVES, resolver("haizhu-youth-league"))
    rows = {row["id"]: row for row in shown["members"]}
    assert shown["may_decide"] and shown["may_escalate"]
    assert shown["deciders"] == ["haizhu-youth-league", "haizhu-civil-affairs"]
    assert rows["bureau"]["issuer_level"] == 2 and not rows["bureau"]["caller_may_override"]
    assert rows["bureau"]["overriders"] == ["haizhu-civil-affairs"]
    assert rows["street"]["issuer_level"] is None and rows["street"]["caller_may_override"]
    assert rows["street"]["overriders"] == ["haizhu-youth-league", "haizhu-civil-affairs"]
    assert rows["league"]["caller_may_override"]


def test_below_the_conflicts_level_nothing_may_be_overridden() -> None:
    conflict = {"level": 1, "members": ["street"]}
    shown = authority(CHAIN, conflict, DIRECTIVES, resolver("qichuang"))
    assert not shown["may_decide"] and not shown["may_escalate"]
    assert shown["members"][0]["caller_may_override"] is False


def test_at_the_top_of_the_chain_there_is_no_escalating() -> None:
    conflict = {"level": 2, "members": ["bureau"]}
    shown = authority(CHAIN, conflict, DIRECTIVES, resolver("haizhu-civil-affairs"))
    assert shown["may_decide"] and not shown["may_escalate"]
    assert shown["members"][0]["caller_may_override"]


def test_a_supervisor_sees_the_rule_but_may_decide_nothing() -> None:
    supervisor = Caller(principal_id="p", org="gz-swa", role=Role.SUPERVISOR)
    shown = authority(CHAIN, {"level": 0, "members": ["street", "gone"]}, DIRECTIVES, supervisor)
    assert not shown["may_decide"]
    assert [row["summary"] for row in shown["members"]] == ["每周按街道模板报送", "gone"]


def test_the_chart_shows_the_domains_load_and_marks_the_open_runs() -> None:
    terms = {"period": {"start": "2008-06-02", "end": "2008-06-29"},
             "capacity": {"staff": 2, "hours_per_staff_week": 40,
                          "committed_hours_per_week": 60}}
    loads = {"2008-W23": 62.0, "2008-W24": 82.5, "2008-W25": 77.0, "2008-W26": 62.0}
    conflicts = [{"id": "c1", "kind": "over_capacity", "status": "open",
                  "details": {"weeks": ["2008-W24"]}},
                 {"id": "c2", "kind": "over_capacity", "status": "dissolved",
                  "details": {"weeks": ["2008-W23"]}}]
    load = weekly_load(terms, loads, conflicts)
    assert load["weeks"] == ["2008-W23", "2008-W24", "2008-W25", "2008-W26"]
    assert load["load"] == [62.0, 82.5, 77.0, 62.0]
    assert load["capacity"] == 80.0
    assert load["over"] == ["2008-W24"]
    assert load["runs"] == [{"first": "2008-W24", "last": "2008-W24", "conflict": "c1"}]
