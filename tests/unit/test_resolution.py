"""Deciding and escalating conflicts on the contract (SPEC §6).

A resolver of the organisation at the conflict's level or above decides; the
overridden directives leave the active set, so conflicts that depended on
them dissolve.  Escalation names the level it moves from; the timer may only
escalate what has lapsed.  Replay and snapshots see the same conflicts.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from pydantic import ValidationError

from domain.contract import ServiceContract
from domain.errors import (
    ConflictNotOpen,
    Forbidden,
    LevelMismatch,
    NoHigherLevel,
    NotFound,
    NotLapsed,
    ValidationFailed,
)
from domain.resolution import SLA_EXPIRED, Decision, Escalation

from .givens import actor_of, moment

# The Haizhu chain: 启创 (level 0), 团区委 (level 1), 区民政局 (level 2).
PROVIDER, LEAGUE, BUREAU = "qichuang", "haizhu-youth-league", "haizhu-civil-affairs"

# 160 free hours a week.  海幢街 wants the youth zone open till 21:00 with 100 h a
# week; 赤岗街 wants it closed at 17:30 (10 h); only one side can be done, so the
# larger (100 h) counts; casework takes 70 h: 170 h > 160 h.
LATE = {"subject": "youth_zone.closing_time", "value": "21:00", "summary": "青年地带开到晚上九点",
        "basis": "purchaser_request", "hours_per_week": 100}
EARLY = {"subject": "youth_zone.closing_time", "value": "17:30", "summary": "青年地带五点半关门",
         "basis": "purchaser_request", "hours_per_week": 10}
CASEWORK = {"subject": "casework.home_visits", "value": {"cases": 40}, "summary": "个案家访",
            "basis": "contract", "citation": "服务合同 第二条", "hours_per_week": 70}


def kind(contract: ServiceContract, wanted: str) -> dict[str, Any]:
    [record] = [c for c in contract.conflicts.values() if c["kind"] == wanted]
    return record


def decide(contract: ServiceContract, conflict_id: str, by: str, at: datetime,
           **body: Any) -> None:
    decision = Decision.model_validate({"rationale": "经协调会议决定，以街道要求为准", **body})
    contract.resolve_conflict(conflict_id, decision, resolver=by, actor=actor_of(by), at=at)


def escalate(contract: ServiceContract, conflict_id: str, by: str | None, at: datetime,
             from_level: int, reason: str = "协商无果，提交上级") -> None:
    contract.escalate_conflict(conflict_id, Escalation(from_level=from_level, reason=reason),
                               escalator=by, actor=actor_of(by or "threadneedle"), at=at)


@pytest.fixture
def disputed(active_contract: ServiceContract, issue: Callable[..., str]) -> dict[str, str]:
    """The contradiction over closing time, and the over-capacity it feeds."""
    late = issue(active_contract, "haichuang-street", LATE, name="late")
    early = issue(active_contract, "chigang-street", EARLY, name="early")
    casework = issue(active_contract, "haizhu-civil-affairs", CASEWORK, name="casework")
    return {"late": late, "early": early, "casework": casework,
            "contradiction": kind(active_contract, "contradiction")["id"],
            "over_capacity": kind(active_contract, "over_capacity")["id"]}


# --- deciding ---------------------------------------------------------------------


def test_a_decision_resolves_the_conflict_and_its_overridden_directive_no_longer_counts(
    active_contract: ServiceContract, disputed: dict[str, str],
) -> None:
    # Given the closing-time contradiction, and the over-capacity it feeds, both open
    assert kind(active_contract, "over_capacity")["status"] == "open"

    # When 启创 (level 0) upholds 17:30 and overrides 21:00
    decide(active_contract, disputed["contradiction"], PROVIDER, moment("2008-06-03"),
           outcome="upheld", upheld=[disputed["early"]], overridden=[disputed["late"]])

    # Then the contradiction is resolved, with the decision and who made it
    record = active_contract.conflicts[disputed["contradiction"]]
    assert record["status"] == "resolved"
    assert record["resolved_version"] == active_contract.version
    assert record["resolved_at"] == "2008-06-03T09:00:00+08:00"
    assert record["resolution"] == {
        "outcome": "upheld", "upheld": [disputed["early"]], "overridden": [disputed["late"]],
        "rationale": "经协调会议决定，以街道要求为准", "resolver": PROVIDER,
        "resolver_level": 0, "level": 0,
    }
    # And 21:00 is overridden, out of the active set
    assert active_contract.directives[disputed["late"]]["status"] == "overridden"
    assert disputed["late"] not in {d["id"] for d in active_contract.active_directives()}
    # And the over-capacity that depended on its 100 hours dissolved at the same version
    over = active_contract.conflicts[disputed["over_capacity"]]
    assert (over["status"], over["dissolved_version"]) == ("dissolved", active_contract.version)


def test_a_resolved_conflict_stays_resolved_when_its_subject_changes_again(
    active_contract: ServiceContract, disputed: dict[str, str], issue: Callable[..., str],
) -> None:
    # Given the contradiction resolved for 17:30
    decide(active_contract, disputed["contradiction"], PROVIDER, moment("2008-06-03"),
           outcome="upheld", upheld=[disputed["early"]], overridden=[disputed["late"]])

    # When 海幢街 asks again, for 20:00
    issue(active_contract, "haichuang-street", {**LATE, "value": "20:00", "hours_per_week": 0},
          name="late-again", at=moment("2008-06-04"))

    # Then the old decision stands, and the new disagreement is a new conflict
    assert active_contract.conflicts[disputed["contradiction"]]["status"] == "resolved"
    fresh = [c for c in active_contract.conflicts.values()
             if c["kind"] == "contradiction" and c["status"] == "open"]
    assert len(fresh) == 1 and disputed["late"] not in fresh[0]["members"]


def test_rejected_all_overrides_every_member_and_deferred_overrides_none(
    active_contract: ServiceContract, disputed: dict[str, str],
) -> None:
    # When 启创 defers the over-capacity and rejects both closing times
    decide(active_contract, disputed["over_capacity"], PROVIDER, moment("2008-06-03"),
           outcome="deferred", rationale="待下季度增加人手后再议")
    decide(active_contract, disputed["contradiction"], PROVIDER, moment("2008-06-03", 10),
           outcome="rejected_all", rationale="两项要求都不符合青年地带的服务时间安排")

    # Then deferring overrode nothing, and rejecting all overrode both
    assert active_contract.conflicts[disputed["over_capacity"]]["resolution"]["overridden"] == []
    resolution = active_contract.conflicts[disputed["contradiction"]]["resolution"]
    assert sorted(resolution["overridden"]) == sorted([disputed["late"], disputed["early"]])
    assert {active_contract.directives[key]["status"]
            for key in (disputed["late"], disputed["early"])} == {"overridden"}
    assert active_contract.directives[disputed["casework"]]["status"] == "active"


@pytest.mark.parametrize(("body", "field"), [
    ({"outcome": "upheld", "upheld": ["不存在的指令"]}, "upheld"),
    ({"outcome": "upheld", "upheld": [], "overridden": []}, "upheld"),
    ({"outcome": "merged", "upheld": ["EARLY"], "overridden": []}, "overridden"),
    ({"outcome": "deferred", "overridden": ["LATE"]}, "overridden"),
    ({"outcome": "rejected_all", "upheld": ["EARLY"]}, "upheld"),
    ({"outcome": "rejected_all", "overridden": ["LATE"]}, "overridden"),
    ({"outcome": "upheld", "upheld": ["EARLY"], "overridden": ["EARLY"]}, "overridden"),
])
def test_a_decision_inconsistent_with_the_conflict_is_refused_and_nothing_is_recorded(
    active_contract: ServiceContract, disputed: dict[str, str], body: dict[str, Any], field: str,
) -> None:
    # Given the contradiction and a decision that breaks one of the rules
    names = {"EARLY": disputed["early"], "LATE": disputed["late"]}
    for key in ("upheld", "overridden"):
        body[key] = [names.get(item, item) for item in body.get(key, [])]
    version = active_contract.version

    # When 启创 sends it
    # Then it is refused naming the field, and nothing is recorded
    with pytest.raises(ValidationFailed) as refused:
        decide(active_contract, disputed["contradiction"], PROVIDER, moment("2008-06-03"),
               **body)
    assert field in [name for name, _ in refused.value.errors]
    assert active_contract.version == version


def test_a_rationale_is_required() -> None:
    # When a decision comes without a rationale, or with only white space
    # Then it does not validate
    with pytest.raises(ValidationError):
        Decision.model_validate({"outcome": "deferred"})
    with pytest.raises(ValidationError):
        Decision.model_validate({"outcome": "deferred", "rationale": "  　"})


def test_who_may_decide_and_what(
    active_contract: ServiceContract, disputed: dict[str, str],
) -> None:
    # Given the contradiction escalated to 团区委 (level 1)
    conflict = disputed["contradiction"]
    escalate(active_contract, conflict, PROVIDER, moment("2008-06-03"), from_level=0)
    settle = {"outcome": "upheld", "upheld": [disputed["early"]]}

    # Then 启创 (level 0) may no longer decide, nor may an organisation outside the chain
    with pytest.raises(Forbidden):
        decide(active_contract, conflict, PROVIDER, moment("2008-06-04"), **settle)
    with pytest.raises(Forbidden):
        decide(active_contract, conflict, "haichuang-street", moment("2008-06-04"), **settle)
    # And 区民政局 (level 2, above) may, recording its own level
    decide(active_contract, conflict, BUREAU, moment("2008-06-04"), **settle)
    assert active_contract.conflicts[conflict]["resolution"]["resolver_level"] == 2
    assert active_contract.conflicts[conflict]["resolution"]["level"] == 1
    # And a conflict that is resolved, or unknown, cannot be decided again
    with pytest.raises(ConflictNotOpen):
        decide(active_contract, conflict, BUREAU, moment("2008-06-05"), **settle)
    with pytest.raises(NotFound):
        decide(active_contract, "no-such-conflict", BUREAU, moment("2008-06-05"), **settle)


# --- escalating -------------------------------------------------------------------


def test_escalation_moves_one_level_and_restarts_the_clock_with_fractional_hours(
    draft_contract: Callable[..., ServiceContract], issue: Callable[..., str],
) -> None:
    # Given a contract whose SLA is 1.5 hours, and a contradiction on it
    contract = draft_contract(resolution_sla_hours=1.5)
    contract.transition("activate", actor=actor_of("threadneedle"), at=moment("2008-03-03"))
    issue(contract, "haichuang-street", LATE, name="late")
    issue(contract, "chigang-street", EARLY, name="early")
    conflict = kind(contract, "contradiction")["id"]

    # When 启创 escalates it at 14:00 from level 0
    escalate(contract, conflict, PROVIDER, moment("2008-06-03", 14), from_level=0)

    # Then it is at level 1, due 15:30, and its history says who and why
    record = contract.conflicts[conflict]
    assert record["level"] == 1
    assert datetime.fromisoformat(record["due"]) == moment("2008-06-03", 15, 30)
    assert record["escalations"] == [{
        "from_level": 0, "to_level": 1, "reason": "协商无果，提交上级", "by": PROVIDER,
        "version": contract.version, "at": "2008-06-03T14:00:00+08:00",
    }]


def test_escalation_from_a_level_the_conflict_left_or_past_the_last_level_is_refused(
    active_contract: ServiceContract, disputed: dict[str, str],
) -> None:
    conflict = disputed["contradiction"]
    # Given the contradiction escalated from level 0 to 1
    escalate(active_contract, conflict, PROVIDER, moment("2008-06-03"), from_level=0)

    # Then escalating again from level 0 is refused
    with pytest.raises(LevelMismatch):
        escalate(active_contract, conflict, LEAGUE, moment("2008-06-03", 10), from_level=0)
    # And from level 1 to 2 works, but there is nothing above level 2
    escalate(active_contract, conflict, LEAGUE, moment("2008-06-03", 11), from_level=1)
    version = active_contract.version
    with pytest.raises(NoHigherLevel):
        escalate(active_contract, conflict, BUREAU, moment("2008-06-03", 12), from_level=2)
    assert active_contract.version == version


def test_the_timer_escalates_only_what_has_lapsed_and_only_once_per_level(
    active_contract: ServiceContract, disputed: dict[str, str],
) -> None:
    # Given the contradiction opened on 2 June at 09:00, due 5 June at 09:00 (72 h)
    conflict = disputed["contradiction"]
    assert active_contract.conflicts[conflict]["due"] == "2008-06-05T09:00:00+08:00"

    # When the timer tries a minute early
    # Then it is refused
    with pytest.raises(NotLapsed):
        escalate(active_contract, conflict, None, moment("2008-06-05", 8, 59), 0, SLA_EXPIRED)
    # When it fires on time, and fires again for the same lapse
    escalate(active_contract, conflict, None, moment("2008-06-05", 9, 1), 0, SLA_EXPIRED)
    with pytest.raises((LevelMismatch, NotLapsed)):
        escalate(active_contract, conflict, None, moment("2008-06-05", 9, 2), 0, SLA_EXPIRED)
    # Then it escalated once, due 72 hours after the escalation
    record = active_contract.conflicts[conflict]
    assert [step["reason"] for step in record["escalations"]] == [SLA_EXPIRED]
    assert record["due"] == "2008-06-08T09:01:00+08:00"


# --- replay -----------------------------------------------------------------------


def test_replay_and_snapshots_see_the_same_decisions_and_escalations(
    active_contract: ServiceContract, disputed: dict[str, str], issue: Callable[..., str],
) -> None:
    # Given a history with an escalation, a decision that dissolves a dependent
    # conflict, a timer escalation and later directives
    escalate(active_contract, disputed["contradiction"], PROVIDER, moment("2008-06-03"), 0)
    decide(active_contract, disputed["contradiction"], LEAGUE, moment("2008-06-04"),
           outcome="merged", upheld=[disputed["early"]], overridden=[disputed["late"]])
    issue(active_contract, "haichuang-street", {**LATE, "hours_per_week": 120, "value": "22:00"},
          name="later", at=moment("2008-06-05"))
    [over] = [c["id"] for c in active_contract.conflicts.values()
              if c["kind"] == "over_capacity" and c["status"] == "open"]
    escalate(active_contract, over, None, moment("2008-06-09"), 0, SLA_EXPIRED)
    issue(active_contract, "chigang-street", {**EARLY, "value": "18:00"}, name="later-early",
          at=moment("2008-06-10"))
    live = copy.deepcopy(active_contract.conflicts)
    live_directives = copy.deepcopy(active_contract.directives)
    events = list(active_contract.collect_events())

    # When it is replayed from its events alone
    replayed: ServiceContract | None = None
    for event in events:
        replayed = event.mutate(replayed)

    # Then the conflicts and directives equal the ones folded as it went
    assert replayed is not None
    assert replayed.conflicts == live and replayed.directives == live_directives

    # When a snapshot taken at any version is restored and the rest applied
    for cut in range(1, len(events)):
        at_cut: ServiceContract | None = None
        for event in events[:cut]:
            at_cut = event.mutate(at_cut)
        assert at_cut is not None
        at_cut._conflict_tracker()
        restored = ServiceContract.Snapshot.take(at_cut).mutate(None)
        for event in events[cut:]:
            restored = event.mutate(restored)
        # Then it ends with the same view
        assert restored.conflicts == live, f"snapshot at version {cut}"
