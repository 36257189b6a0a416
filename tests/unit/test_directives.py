"""Directives on a contract: issue, amend, withdraw — and the rules around them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from domain.contract import ServiceContract
from domain.directives import DirectiveFields, DirectivePatch
from domain.errors import (
    AlreadyExists,
    ContractNotActive,
    DirectiveNotActive,
    NotFound,
    ValidationFailed,
)

from .givens import (
    ADMIN_ACTOR,
    LOW_INCOME_VISITS,
    WEEKLY_REPORT,
    actor_of,
    directive_id,
    moment,
)

Issue = Callable[..., str]


def amend(contract: ServiceContract, did: str, issuer: str, **changes: Any) -> None:
    contract.amend_directive(
        did, DirectivePatch.model_validate(changes),
        actor=actor_of(issuer), at=moment("2008-06-10"),
    )


def withdraw(contract: ServiceContract, did: str, issuer: str) -> None:
    contract.withdraw_directive(did, actor=actor_of(issuer), at=moment("2008-06-20"))


def test_an_issued_directive_records_every_field_and_its_issuer(
    active_contract: ServiceContract, issue: Issue
) -> None:
    # given the active youth contract
    # when 海珠区民政局 issues its low-income household visits
    did = issue(active_contract, "haizhu-civil-affairs", LOW_INCOME_VISITS, name="visits")

    # then the directive is active, issued by the bureau, with every field as sent
    directive = active_contract.directive(did)
    assert directive == {
        **LOW_INCOME_VISITS,
        "citation": None,
        "id": did,
        "issuer": "haizhu-civil-affairs",
        "hours_per_week": 45.0,
        "locations": [],
        "tags": [],
        "task_type": None,
        "status": "active",
        "issued_version": 3,
        "issued_at": moment("2008-06-02").isoformat(),
    }
    # and the event says who issued it
    event = active_contract.collect_events()[-1]
    assert event.type_name() == "ServiceContract.DirectiveIssued"
    assert event.actor == actor_of("haizhu-civil-affairs")


def test_a_directive_without_a_window_applies_for_the_whole_contract_period(
    active_contract: ServiceContract, issue: Issue
) -> None:
    # given 海幢街道办事处's weekly report, which names no window
    # when it is issued
    did = issue(active_contract, "haichuang-street", WEEKLY_REPORT)

    # then its effective window is the contract period, and that is what was recorded
    assert active_contract.directive(did)["window"] == {"from": "2008-03-03", "to": "2009-03-01"}
    assert active_contract.collect_events()[-1].data["window"] == {
        "from": "2008-03-03", "to": "2009-03-01",
    }


@pytest.mark.parametrize(
    "window",
    [
        {"from": "2008-03-02", "to": "2008-06-01"},  # starts the day before the period
        {"from": "2009-02-01", "to": "2009-03-02"},  # ends the day after it
        {"from": "2007-01-01", "to": "2010-01-01"},
    ],
)
def test_a_window_outside_the_contract_period_is_refused(
    active_contract: ServiceContract, issue: Issue, window: dict[str, str]
) -> None:
    # given the period 2008-03-03 to 2009-03-01
    version = active_contract.version

    # when a directive names a window reaching outside it, then it is refused
    with pytest.raises(ValidationFailed, match="window") as refused:
        issue(active_contract, "gz-swa", {**WEEKLY_REPORT, "window": window})
    assert refused.value.errors[0][0] == "window"
    assert active_contract.version == version


def test_a_window_exactly_the_contract_period_is_accepted(
    active_contract: ServiceContract, issue: Issue
) -> None:
    window = {"from": "2008-03-03", "to": "2009-03-01"}
    did = issue(active_contract, "gz-swa", {**WEEKLY_REPORT, "window": window})
    assert active_contract.directive(did)["window"] == window


def test_a_non_party_stakeholder_always_issues_with_basis_non_party(
    active_contract: ServiceContract, issue: Issue
) -> None:
    # given 海幢街居民代表, a stakeholder without standing as a party
    assert active_contract.standing_of("haichuang-residents") == "non_party"
    petition = {
        "subject": "youth_zone.evening_sessions",
        "value": {"evenings_per_week": 3},
        "summary": "居民联名请求增加三个晚间青少年活动时段",
        "basis": "statute",  # claims the strongest basis there is
        "hours_per_week": 25,
        "people_affected": 120,
        "locations": ["海幢街"],
    }

    # when the residents issue a directive claiming a statute
    did = issue(active_contract, "haichuang-residents", petition)

    # then it is recorded with basis non_party
    assert active_contract.directive(did)["basis"] == "non_party"

    # and an amendment cannot raise it either
    amend(active_contract, did, "haichuang-residents", basis="contract")
    assert active_contract.directive(did)["basis"] == "non_party"


def test_a_party_keeps_the_basis_it_states(
    active_contract: ServiceContract, issue: Issue
) -> None:
    did = issue(active_contract, "gz-swa", {**WEEKLY_REPORT, "basis": "professional_standard"})
    assert active_contract.directive(did)["basis"] == "professional_standard"


@pytest.mark.parametrize("path", [[], ["activate", "suspend"], ["terminate"],
                                  ["activate", "close"], ["activate", "terminate"]])
def test_directives_are_refused_unless_the_contract_is_active(
    draft_contract: Callable[..., ServiceContract], issue: Issue, path: list[str]
) -> None:
    # given a contract that is a draft, suspended, terminated or closed
    contract = draft_contract()
    for command in path:
        contract.transition(command, actor=ADMIN_ACTOR, at=moment("2008-03-03"))
    version = contract.version

    # when a stakeholder issues a directive, then it is refused
    with pytest.raises(ContractNotActive, match=f"it is {contract.status}, not active"):
        issue(contract, "gz-swa", WEEKLY_REPORT)
    assert contract.version == version


def test_a_suspended_contract_refuses_amendments_and_withdrawals(
    active_contract: ServiceContract, issue: Issue
) -> None:
    # given a directive issued before the contract was suspended
    did = issue(active_contract, "haichuang-street", WEEKLY_REPORT)
    active_contract.transition("suspend", actor=ADMIN_ACTOR, at=moment("2008-07-01"))

    # when its issuer amends or withdraws it, then both are refused
    with pytest.raises(ContractNotActive):
        amend(active_contract, did, "haichuang-street", hours_per_week=10)
    with pytest.raises(ContractNotActive):
        withdraw(active_contract, did, "haichuang-street")
    assert active_contract.directive(did)["status"] == "active"


def test_the_same_directive_id_cannot_be_issued_twice(
    active_contract: ServiceContract, issue: Issue
) -> None:
    issue(active_contract, "gz-swa", WEEKLY_REPORT, name="once")
    with pytest.raises(AlreadyExists):
        issue(active_contract, "gz-swa", WEEKLY_REPORT, name="once")


def test_an_amendment_changes_only_the_fields_it_names(
    active_contract: ServiceContract, issue: Issue
) -> None:
    # given the bureau's visits, due 2008-06-29
    did = issue(active_contract, "haizhu-civil-affairs", LOW_INCOME_VISITS)

    # when the bureau lowers the hours, moves the due date and sets a new summary
    amend(active_contract, did, "haizhu-civil-affairs",
          hours_per_week=30, due="2008-07-06", summary="走访30户低保家庭青少年（延期一周）")

    # then those fields change, the rest stay, and the amendment is recorded as such
    directive = active_contract.directive(did)
    assert directive["hours_per_week"] == 30
    assert directive["due"] == "2008-07-06"
    assert directive["summary"] == "走访30户低保家庭青少年（延期一周）"
    assert directive["vulnerability"] == 0.8
    assert directive["window"] == LOW_INCOME_VISITS["window"]
    assert directive["amended_version"] == active_contract.version
    event = active_contract.collect_events()[-1]
    assert event.type_name() == "ServiceContract.DirectiveAmended"
    assert event.data == {"id": did, "changes": {
        "hours_per_week": 30.0,
        "due": "2008-07-06",
        "summary": "走访30户低保家庭青少年（延期一周）",
    }}


def test_amending_the_window_to_null_restores_the_contract_period(
    active_contract: ServiceContract, issue: Issue
) -> None:
    did = issue(active_contract, "haizhu-civil-affairs", LOW_INCOME_VISITS)
    amend(active_contract, did, "haizhu-civil-affairs", window=None)
    assert active_contract.directive(did)["window"] == {"from": "2008-03-03", "to": "2009-03-01"}


def test_an_amended_window_must_lie_within_the_period(
    active_contract: ServiceContract, issue: Issue
) -> None:
    did = issue(active_contract, "haizhu-civil-affairs", LOW_INCOME_VISITS)
    with pytest.raises(ValidationFailed, match="window"):
        amend(active_contract, did, "haizhu-civil-affairs",
              window={"from": "2009-02-01", "to": "2009-04-01"})
    assert active_contract.directive(did)["window"] == LOW_INCOME_VISITS["window"]


def test_optional_fields_can_be_cleared_by_an_amendment(
    active_contract: ServiceContract, issue: Issue
) -> None:
    did = issue(active_contract, "haizhu-civil-affairs", LOW_INCOME_VISITS)
    amend(active_contract, did, "haizhu-civil-affairs", due=None, indicator=None, value=None)
    directive = active_contract.directive(did)
    assert (directive["due"], directive["indicator"], directive["value"]) == (None, None, None)


def test_a_withdrawn_directive_stays_in_the_record_as_withdrawn(
    active_contract: ServiceContract, issue: Issue
) -> None:
    # given the street office's weekly report
    did = issue(active_contract, "haichuang-street", WEEKLY_REPORT)

    # when the street office withdraws it
    withdraw(active_contract, did, "haichuang-street")

    # then it is withdrawn, no longer active, and still readable
    assert active_contract.directive(did)["status"] == "withdrawn"
    assert active_contract.active_directives() == []
    event = active_contract.collect_events()[-1]
    assert event.type_name() == "ServiceContract.DirectiveWithdrawn"
    assert event.data == {"id": did}


def test_a_withdrawn_directive_can_be_neither_amended_nor_withdrawn_again(
    active_contract: ServiceContract, issue: Issue
) -> None:
    # given a withdrawn directive
    did = issue(active_contract, "haichuang-street", WEEKLY_REPORT)
    withdraw(active_contract, did, "haichuang-street")
    version = active_contract.version

    # when it is amended or withdrawn again, then both are refused, naming its status
    with pytest.raises(DirectiveNotActive, match="is withdrawn and cannot be amended"):
        amend(active_contract, did, "haichuang-street", hours_per_week=5)
    with pytest.raises(DirectiveNotActive, match="is withdrawn and cannot be withdrawn"):
        withdraw(active_contract, did, "haichuang-street")
    assert active_contract.version == version


def test_an_unknown_directive_is_not_found(active_contract: ServiceContract) -> None:
    ghost = str(directive_id("never issued"))
    with pytest.raises(NotFound):
        active_contract.directive(ghost)
    with pytest.raises(NotFound):
        withdraw(active_contract, ghost, "gz-swa")
    with pytest.raises(NotFound):
        amend(active_contract, ghost, "gz-swa", hours_per_week=1)


def test_all_four_mothers_in_law_on_one_contract(
    active_contract: ServiceContract, issue: Issue
) -> None:
    # given the street office, the civil affairs bureau, the social work association
    # and the residents each place a demand on the one team of 14 social workers
    issue(active_contract, "haichuang-street", WEEKLY_REPORT, name="street")
    issue(active_contract, "haizhu-civil-affairs", LOW_INCOME_VISITS, name="bureau")
    issue(active_contract, "gz-swa", {
        "subject": "training.ethics", "value": {"sessions": 1, "hours_each": 2},
        "summary": "全体社工参加职业伦理培训，每人每周2小时", "basis": "professional_standard",
        "hours_per_week": 28, "window": {"from": "2008-06-02", "to": "2008-06-15"},
        "people_affected": 14,
    }, name="association")
    issue(active_contract, "haichuang-residents", {
        "subject": "youth_zone.evening_sessions", "summary": "增加晚间活动时段",
        "basis": "petition", "hours_per_week": 25, "people_affected": 120,
    }, name="residents")

    # then the contract holds four active directives from four issuers, in issue order
    issuers = [d["issuer"] for d in active_contract.active_directives()]
    assert issuers == ["haichuang-street", "haizhu-civil-affairs", "gz-swa", "haichuang-residents"]
    assert active_contract.version == 6
    assert sum(d["hours_per_week"] for d in active_contract.active_directives()) == 118


def test_the_directive_fields_model_is_what_the_contract_records() -> None:
    # a guard: the aggregate records exactly the validated model's fields plus its own
    expected = set(DirectiveFields.model_json_schema(by_alias=True)["properties"])
    assert expected == {
        "subject", "value", "summary", "basis", "citation", "hours_per_week", "window", "due",
        "people_affected", "vulnerability", "target_groups", "locations", "indicator", "tags",
        "task_type",
    }
