"""The deadline sweep, with "now" given: lapsed conflicts escalate one level, once.

The application runs on an in-memory event store; the clock is whatever the
test says it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from domain.directives import DirectiveFields
from domain.errors import LevelMismatch, NotLapsed
from domain.organisations import OrganisationSpec, Role
from domain.resolution import Decision
from domain.terms import ContractTerms
from workflows import contracts, directives, directory, resolution
from workflows.identities import BOOTSTRAP_ADMIN
from workflows.ledger import Ledger
from workflows.settings import Settings
from workflows.timers import escalate_lapsed, find_lapses

from .givens import HAIZHU_YOUTH, caller, moment
from .test_resolution import EARLY, LATE

ORGS = {"qichuang": "启创社工", "haizhu-youth-league": "海珠团区委",
        "haizhu-civil-affairs": "海珠区民政局", "haizhu-gov": "海珠区政府",
        "haichuang-street": "海幢街道", "chigang-street": "赤岗街道",
        "gz-swa": "广州市社工协会", "haichuang-residents": "海幢街居民"}


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(moment("2008-06-02"))


@pytest.fixture
def app(clock: Clock) -> Iterator[Ledger]:
    application = Ledger(Settings(event_store=":memory:", redis_url=None), clock=clock)
    for org, name in ORGS.items():
        directory.register_organisation(application, BOOTSTRAP_ADMIN,
                                          OrganisationSpec(id=org, name=name, kind="other"))
    yield application
    application.close()


def contract_with_contradiction(app: Ledger, code: str, **terms: Any) -> tuple[str, str]:
    """An active contract (SLA 2 hours unless told) whose two streets disagree at 09:00."""
    body = {**HAIZHU_YOUTH, "code": code, "resolution_sla_hours": 2, **terms}
    contract_id = contracts.draft_contract(app, BOOTSTRAP_ADMIN,
                                           ContractTerms.model_validate(body)).id
    contracts.transition(app, BOOTSTRAP_ADMIN, contract_id, "activate")
    for org, fields in (("haichuang-street", LATE), ("chigang-street", EARLY)):
        directives.issue_directive(app, caller(org, Role.STAKEHOLDER), contract_id,
                            DirectiveFields.model_validate(fields))
    [conflict] = [c for c in contracts.read_contract(app, BOOTSTRAP_ADMIN,
                                                     contract_id).conflicts.values()
                  if c["kind"] == "contradiction"]
    return contract_id, conflict["id"]


def record(app: Ledger, contract_id: str, conflict_id: str) -> dict[str, Any]:
    conflict: dict[str, Any] = contracts.read_contract(app, BOOTSTRAP_ADMIN,
                                                       contract_id).conflicts[conflict_id]
    return conflict


def test_nothing_escalates_before_the_due_time(app: Ledger) -> None:
    # Given a contradiction opened at 09:00, due at 11:00
    contract_id, conflict_id = contract_with_contradiction(app, "HZ-T-1")

    # When the sweep runs at 10:59
    escalated = escalate_lapsed(app, moment("2008-06-02", 10, 59))

    # Then nothing is escalated
    assert escalated == []
    assert record(app, contract_id, conflict_id)["level"] == 0


def test_a_lapsed_conflict_escalates_level_by_level_and_stays_overdue_at_the_last(
    app: Ledger,
) -> None:
    # Given a contradiction due at 11:00 on a contract with a three-level chain
    contract_id, conflict_id = contract_with_contradiction(app, "HZ-T-2")

    # When the sweep runs at 11:01, 13:02 and 15:03 (each level due 2 h after its escalation)
    first = escalate_lapsed(app, moment("2008-06-02", 11, 1))
    second = escalate_lapsed(app, moment("2008-06-02", 13, 2))
    third = escalate_lapsed(app, moment("2008-06-02", 15, 3))

    # Then it went 0 → 1 → 2 for "sla_expired", and stays at the last level, overdue
    assert [(e.from_level, e.to_level) for e in (*first, *second)] == [(0, 1), (1, 2)]
    assert third == []
    conflict = record(app, contract_id, conflict_id)
    assert conflict["level"] == 2 and conflict["status"] == "open"
    assert [step["reason"] for step in conflict["escalations"]] == ["sla_expired"] * 2
    assert conflict["due"] == "2008-06-02T15:02:00+08:00"
    assert conflict["escalations"][0]["at"] == "2008-06-02T11:01:00+08:00"


def test_a_sweep_fired_twice_escalates_once(app: Ledger) -> None:
    # Given a lapsed contradiction
    contract_id, conflict_id = contract_with_contradiction(app, "HZ-T-3")
    now = moment("2008-06-02", 12)

    # When the sweep fires twice at the same moment
    first = escalate_lapsed(app, now)
    again = escalate_lapsed(app, now)

    # Then only the first escalated
    assert len(first) == 1 and again == []
    assert len(record(app, contract_id, conflict_id)["escalations"]) == 1


def test_two_sweeps_that_found_the_same_lapse_escalate_it_once(app: Ledger) -> None:
    # Given two timer processes that both found the same lapse at 12:00
    contract_id, conflict_id = contract_with_contradiction(app, "HZ-T-4")
    now = moment("2008-06-02", 12)
    [seen_by_one] = find_lapses(app, now)
    [seen_by_other] = find_lapses(app, now)
    assert seen_by_one == seen_by_other

    # When both escalate from the level they saw
    resolution.escalate_lapsed_conflict(app, contract_id, conflict_id, seen_by_one.level, now=now)
    # Then the second is refused as handled, and the conflict went up one level
    with pytest.raises((LevelMismatch, NotLapsed)):
        resolution.escalate_lapsed_conflict(app, contract_id, conflict_id, seen_by_other.level,
                                            now=now)
    assert record(app, contract_id, conflict_id)["level"] == 1


def test_resolved_conflicts_and_inactive_contracts_do_not_escalate(
    app: Ledger, clock: Clock,
) -> None:
    # Given one contradiction decided by 启创 and another on a suspended contract
    decided_contract, decided_conflict = contract_with_contradiction(app, "HZ-T-5")
    deferred = Decision.model_validate({"outcome": "deferred", "rationale": "下月协调会再议"})
    resolution.resolve_conflict(app, caller("qichuang", Role.RESOLVER), decided_contract,
                                decided_conflict,
                         deferred)
    suspended_contract, suspended_conflict = contract_with_contradiction(app, "HZ-T-6")
    contracts.transition(app, BOOTSTRAP_ADMIN, suspended_contract, "suspend")

    # When the sweep runs long after both were due
    clock.now += timedelta(days=30)
    escalated = escalate_lapsed(app, clock.now)

    # Then neither escalated
    assert escalated == []
    assert record(app, decided_contract, decided_conflict)["status"] == "resolved"
    assert record(app, suspended_contract, suspended_conflict)["level"] == 0

