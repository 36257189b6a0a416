"""Who may do what: the role table, with a contract that a caller may not see answering 404."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from domain import access
from domain.contract import ServiceContract
from domain.errors import Forbidden, NotFound
from domain.organisations import Caller, Role

from .givens import WEEKLY_REPORT, caller

# Callers on the Haizhu youth contract (stakeholders and escalation chain from ``givens``).
ADMIN = caller("threadneedle", Role.ADMIN)
SUPERVISOR = caller("gz-evaluator", Role.SUPERVISOR)  # 第三方评估, not on the contract
STREET = caller("haichuang-street", Role.STAKEHOLDER)
BUREAU = caller("haizhu-civil-affairs", Role.STAKEHOLDER)
LEAGUE_RESOLVER = caller("haizhu-youth-league", Role.RESOLVER)
# Organisations of the Liwan contract, which have nothing to do with Haizhu.
LIWAN_STREET = caller("fengyuan-street", Role.STAKEHOLDER)
LIWAN_RESOLVER = caller("liwan-civil-affairs", Role.RESOLVER)
# A stakeholder organisation whose key was made with a resolver role, and the reverse.
STREET_AS_RESOLVER = caller("haichuang-street", Role.RESOLVER)
PROVIDER_AS_STAKEHOLDER = caller("qichuang", Role.STAKEHOLDER)


@pytest.fixture
def contract(active_contract: ServiceContract, issue: Callable[..., str]) -> ServiceContract:
    issue(active_contract, "haichuang-street", WEEKLY_REPORT, name="report")
    return active_contract


def report_id(contract: ServiceContract) -> str:
    return contract.active_directives()[0]["id"]


@pytest.mark.parametrize(
    ("who", "may_read"),
    [
        (ADMIN, True),
        (SUPERVISOR, True),
        (STREET, True),
        (BUREAU, True),
        (LEAGUE_RESOLVER, True),
        (caller("qichuang", Role.RESOLVER), True),  # the provider is level 0 of the chain
        (LIWAN_STREET, False),
        (LIWAN_RESOLVER, False),
        (STREET_AS_RESOLVER, False),  # a resolver reads only where its org is in the chain
        (PROVIDER_AS_STAKEHOLDER, False),  # a stakeholder reads only where its org is one
    ],
)
def test_who_may_read_the_contract(
    contract: ServiceContract, who: Caller, may_read: bool
) -> None:
    assert access.can_read(who, contract) is may_read
    if may_read:
        access.require_read(who, contract)
        access.require_history(who, contract)
    else:
        # a caller who may not read it must not learn that it exists
        with pytest.raises(NotFound):
            access.require_read(who, contract)


@pytest.mark.parametrize("who", [LIWAN_STREET, LIWAN_RESOLVER, PROVIDER_AS_STAKEHOLDER])
def test_every_action_on_another_contract_is_not_found(
    contract: ServiceContract, who: Caller
) -> None:
    # given a caller from another contract, when it tries anything here, then: 404
    for check in (
        lambda: access.require_read(who, contract),
        lambda: access.require_history(who, contract),
        lambda: access.require_audit(who, contract),
        lambda: access.require_stakeholder(who, contract),
        lambda: access.require_issuer(who, contract, report_id(contract)),
        lambda: access.require_admin_of(who, contract, "activate contracts"),
    ):
        with pytest.raises(NotFound):
            check()


def test_only_a_stakeholder_key_of_the_contract_may_issue(contract: ServiceContract) -> None:
    access.require_stakeholder(STREET, contract)
    access.require_stakeholder(BUREAU, contract)
    for reader in (ADMIN, SUPERVISOR, LEAGUE_RESOLVER):
        with pytest.raises(Forbidden):
            access.require_stakeholder(reader, contract)


def test_only_the_issuer_may_amend_or_withdraw(contract: ServiceContract) -> None:
    # given the street office's weekly report
    did = report_id(contract)

    # then the street office may change it
    access.require_issuer(STREET, contract, did)

    # and the civil affairs bureau, although a stakeholder too, may not
    with pytest.raises(Forbidden, match="only its issuer may change it"):
        access.require_issuer(BUREAU, contract, did)

    # nor may the admin or a supervisor
    for reader in (ADMIN, SUPERVISOR):
        with pytest.raises(Forbidden):
            access.require_issuer(reader, contract, did)


def test_another_key_of_the_issuing_organisation_may_amend(contract: ServiceContract) -> None:
    # directives belong to organisations, not to keys
    colleague = Caller(principal_id="second-key", org="haichuang-street", role=Role.STAKEHOLDER)
    access.require_issuer(colleague, contract, report_id(contract))


def test_an_unknown_directive_is_not_found_for_its_would_be_issuer(
    contract: ServiceContract,
) -> None:
    with pytest.raises(NotFound):
        access.require_issuer(STREET, contract, "00000000-0000-0000-0000-000000000000")


def test_only_admins_manage(contract: ServiceContract) -> None:
    access.require_admin(ADMIN, "register organisations")
    access.require_admin_of(ADMIN, contract, "activate contracts")
    for who in (SUPERVISOR, STREET, LEAGUE_RESOLVER):
        with pytest.raises(Forbidden, match="only an admin may activate contracts"):
            access.require_admin_of(who, contract, "activate contracts")
        with pytest.raises(Forbidden):
            access.require_admin(who, "create keys")


def test_only_supervisors_and_admins_audit_and_export(contract: ServiceContract) -> None:
    access.require_audit(ADMIN, contract)
    access.require_audit(SUPERVISOR, contract)
    for reader in (STREET, LEAGUE_RESOLVER):
        with pytest.raises(Forbidden):
            access.require_audit(reader, contract)


def test_a_stakeholder_added_later_may_read_from_then_on(
    active_contract: ServiceContract,
) -> None:
    from domain.terms import StakeholderSpec

    from .givens import ADMIN_ACTOR, moment

    huazhou = caller("huazhou-street", Role.STAKEHOLDER)
    assert not access.can_read(huazhou, active_contract)
    active_contract.add_stakeholder(
        StakeholderSpec(org="huazhou-street"), actor=ADMIN_ACTOR, at=moment("2008-04-01")
    )
    assert access.can_read(huazhou, active_contract)
    access.require_stakeholder(huazhou, active_contract)
