"""Stakeholders: the many "mothers-in-law" (婆家) that place directives on a contract."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pydantic import ValidationError

from domain.contract import ServiceContract
from domain.errors import AlreadyExists, ContractFinished
from domain.terms import Policy, StakeholderSpec, Standing

from .givens import ADMIN_ACTOR, moment


def test_a_new_stakeholder_joins_with_its_standing(
    active_contract: ServiceContract,
) -> None:
    # given the youth contract, when the admin adds 华洲街道办事处 as a party
    active_contract.add_stakeholder(
        StakeholderSpec(org="huazhou-street", standing=Standing.PARTY),
        actor=ADMIN_ACTOR, at=moment("2008-04-01"),
    )

    # then it is listed with its standing, and the event says who added it
    assert "huazhou-street" in active_contract.stakeholder_orgs
    assert active_contract.standing_of("huazhou-street") == "party"
    last = active_contract.collect_events()[-1]
    assert last.type_name() == "ServiceContract.StakeholderAdded"
    assert last.data == {"org": "huazhou-street", "standing": "party"}
    assert last.actor == ADMIN_ACTOR


def test_standing_defaults_to_party() -> None:
    # given a stakeholder named without standing, then it is a party
    assert StakeholderSpec.model_validate({"org": "gz-swa"}).standing == Standing.PARTY


def test_an_organisation_cannot_be_added_twice(active_contract: ServiceContract) -> None:
    # given 广州市社会工作协会 is already a stakeholder
    version = active_contract.version

    # when it is added again, even with another standing, then it is refused
    with pytest.raises(AlreadyExists, match="gz-swa is already a stakeholder"):
        active_contract.add_stakeholder(
            StakeholderSpec(org="gz-swa", standing=Standing.NON_PARTY),
            actor=ADMIN_ACTOR, at=moment("2008-04-01"),
        )
    assert active_contract.version == version
    assert active_contract.standing_of("gz-swa") == "party"


def test_stakeholders_may_be_added_to_a_draft(
    draft_contract: Callable[..., ServiceContract],
) -> None:
    # given a draft, when a stakeholder is added, then it is listed
    contract = draft_contract(stakeholders=[])
    contract.add_stakeholder(
        StakeholderSpec(org="gz-swa"), actor=ADMIN_ACTOR, at=moment("2008-02-26")
    )
    assert contract.stakeholder_orgs == ["gz-swa"]


@pytest.mark.parametrize("finish", ["terminate", "close"])
def test_a_finished_contract_refuses_stakeholders_and_policy_changes(
    active_contract: ServiceContract, finish: str
) -> None:
    # given the contract terminated or closed
    active_contract.transition(finish, actor=ADMIN_ACTOR, at=moment("2009-03-01"))
    version = active_contract.version

    # when the admin adds a stakeholder or changes the policy, then both are refused
    with pytest.raises(ContractFinished):
        active_contract.add_stakeholder(
            StakeholderSpec(org="huazhou-street"), actor=ADMIN_ACTOR, at=moment("2009-03-02")
        )
    with pytest.raises(ContractFinished):
        active_contract.change_policy(
            Policy.model_validate({"profile": "client_first"}),
            actor=ADMIN_ACTOR, at=moment("2009-03-02"),
        )
    assert active_contract.version == version


def test_an_unknown_standing_is_refused() -> None:
    with pytest.raises(ValidationError):
        StakeholderSpec.model_validate({"org": "gz-swa", "standing": "婆家"})


def test_a_policy_change_is_recorded_without_empty_weights(
    active_contract: ServiceContract,
) -> None:
    # given the contract_first policy, when the admin switches to client_first
    active_contract.change_policy(
        Policy.model_validate({"profile": "client_first"}),
        actor=ADMIN_ACTOR, at=moment("2008-05-01"),
    )

    # then the contract's policy is client_first
    assert active_contract.terms["policy"] == {"profile": "client_first"}
    assert active_contract.collect_events()[-1].type_name() == "ServiceContract.PolicyChanged"
