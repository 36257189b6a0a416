"""Drafting a contract: the terms as given, plus the defaults a careful purchaser expects."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pydantic import ValidationError

from domain.chain import GENESIS
from domain.contract import DRAFT, ServiceContract
from domain.terms import CONFIDENTIALITY_RULE

from .givens import ADMIN_ACTOR, HAIZHU_YOUTH, moment


def test_a_drafted_contract_keeps_every_term_it_was_given(
    draft_contract: Callable[..., ServiceContract],
) -> None:
    # given the Haizhu youth terms, when the admin drafts them
    contract = draft_contract()

    # then the contract is a draft at version 1 and shows every term unchanged
    shown = contract.as_dict()
    assert contract.status == DRAFT
    assert contract.version == 1
    assert shown["title"] == "海珠区“青年地带”青少年社会工作服务"
    assert shown["budget"] == {"amount": "2000000.00", "currency": "CNY"}
    assert shown["period"] == {"start": "2008-03-03", "end": "2009-03-01"}
    assert shown["service_area"] == ["海幢街", "赤岗街", "华洲街", "赤岗中学", "绿翠中学"]
    assert shown["capacity"] == {
        "staff": 14, "hours_per_staff_week": 40, "committed_hours_per_week": 400,
    }
    assert [i["key"] for i in shown["indicators"]] == ["cases", "groups", "community_activities"]
    assert shown["resolution_sla_hours"] == 72
    assert shown["policy"] == {"profile": "contract_first", "weights": None}
    assert shown["directives"] == []
    assert shown["created_at"] == moment("2008-02-25").isoformat()


def test_every_new_contract_carries_the_default_confidentiality_rule(
    draft_contract: Callable[..., ServiceContract],
) -> None:
    # given terms that name no rules at all, when the contract is drafted
    contract = draft_contract(rules=[])

    # then the confidentiality rule (知情同意与保密) is there anyway
    assert contract.terms["rules"] == [CONFIDENTIALITY_RULE.model_dump(mode="json")]
    rule = contract.terms["rules"][0]
    assert rule["when_tags"] == ["personal_data_disclosure"]
    assert rule["unless_tags"] == ["consent_obtained"]
    assert rule["unless_basis"] == ["statute"]
    assert rule["citation"] == "示例引用：社会工作专业伦理中的知情同意与保密原则"


def test_the_contracts_own_rules_come_after_the_default_one(
    draft_contract: Callable[..., ServiceContract],
) -> None:
    # given a rule against demolition work that the street office wants
    demolition = {
        "id": "no-demolition-work",
        "when_tags": ["demolition"],
        "citation": "社工不参与征地拆迁工作",
    }

    # when the contract is drafted with it
    contract = draft_contract(rules=[demolition])

    # then the default rule is first and the contract's own rule follows
    assert [r["id"] for r in contract.terms["rules"]] == ["confidentiality", "no-demolition-work"]
    assert contract.terms["rules"][1]["verdict"] == "blocked"


def test_a_contract_may_not_redefine_the_confidentiality_rule(
    draft_contract: Callable[..., ServiceContract],
) -> None:
    # given a rule that reuses the default rule's id, when drafting, then it is refused
    weaker = {"id": "confidentiality", "when_tags": ["never_matches"], "citation": "无"}
    with pytest.raises(ValidationError, match="appears more than once"):
        draft_contract(rules=[weaker])


def test_the_escalation_chain_defaults_to_provider_then_purchaser(
    draft_contract: Callable[..., ServiceContract],
) -> None:
    # given terms without an escalation chain, when drafted
    contract = draft_contract(escalation_chain=[])

    # then conflicts go first to the provider (启创), then to the purchaser (海珠区政府)
    assert contract.escalation_chain == ["qichuang", "haizhu-gov"]


def test_an_escalation_chain_that_is_given_is_kept_in_order(
    draft_contract: Callable[..., ServiceContract],
) -> None:
    # given the chain provider → Youth League → civil affairs bureau, when drafted
    contract = draft_contract()

    # then it is kept exactly, lowest level first
    assert contract.escalation_chain == ["qichuang", "haizhu-youth-league", "haizhu-civil-affairs"]


def test_the_first_event_opens_the_chain_and_names_its_actor(
    draft_contract: Callable[..., ServiceContract],
) -> None:
    # given a freshly drafted contract
    contract = draft_contract()

    # when its pending event is collected
    (drafted,) = contract.collect_events()

    # then it is ServiceContract.Drafted, by the admin, chained to the genesis hash
    assert drafted.type_name() == "ServiceContract.Drafted"
    assert drafted.actor == ADMIN_ACTOR
    assert drafted.prev_hash == GENESIS
    assert drafted.hash == contract.head_hash == drafted.expected_hash()
    assert drafted.timestamp == moment("2008-02-25")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("code", "海珠-2008"),  # codes are ASCII so they can appear in URLs and logs
        ("title", ""),
        ("title", "长" * 501),
        ("purchaser", "Haizhu Gov"),
        ("budget", {"amount": 2000000.0, "currency": "CNY"}),
        ("period", {"start": "2009-03-01", "end": "2008-03-03"}),
        ("period", {"start": "2008/03/03", "end": "2009-03-01"}),
        ("capacity", {"staff": "14", "hours_per_staff_week": 40, "committed_hours_per_week": 0}),
        ("capacity", {"staff": 14, "hours_per_staff_week": 200, "committed_hours_per_week": 0}),
        ("indicators", [{"key": "cases", "target": 1, "unit": "case"}] * 2),
        ("stakeholders", [{"org": "gz-swa"}, {"org": "gz-swa", "standing": "non_party"}]),
        ("stakeholders", [{"org": "gz-swa", "standing": "observer"}]),
        ("escalation_chain", ["qichuang", "qichuang"]),
        ("resolution_sla_hours", 0),
        ("policy", {"profile": "residents_only"}),
        ("sponsor", "共青团"),  # not a field of a contract
    ],
)
def test_malformed_terms_are_refused_before_anything_is_recorded(
    field: str, value: object
) -> None:
    # given the Haizhu terms with one field wrong, when validated, then they are refused
    from domain.terms import ContractTerms

    with pytest.raises(ValidationError):
        ContractTerms.model_validate({**HAIZHU_YOUTH, field: value})


def test_fractional_sla_hours_are_accepted() -> None:
    # given an SLA of half an hour (tests compress time this way), then the terms are valid
    from domain.terms import ContractTerms

    assert ContractTerms.model_validate(
        {**HAIZHU_YOUTH, "resolution_sla_hours": 0.5}
    ).resolution_sla_hours == 0.5
