"""The lifecycle: draft → active → suspended / terminated / closed, and nothing else."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from domain.contract import ACTIVE, CLOSED, DRAFT, SUSPENDED, TERMINATED, ServiceContract
from domain.errors import IllegalTransition

from .givens import ADMIN_ACTOR, moment

# Each status is reached from a fresh draft by these commands.
PATHS: dict[str, list[str]] = {
    DRAFT: [],
    ACTIVE: ["activate"],
    SUSPENDED: ["activate", "suspend"],
    TERMINATED: ["activate", "terminate"],
    CLOSED: ["activate", "close"],
}

LEGAL: dict[tuple[str, str], str] = {
    (DRAFT, "activate"): ACTIVE,
    (DRAFT, "terminate"): TERMINATED,
    (ACTIVE, "suspend"): SUSPENDED,
    (ACTIVE, "terminate"): TERMINATED,
    (ACTIVE, "close"): CLOSED,
    (SUSPENDED, "activate"): ACTIVE,
    (SUSPENDED, "terminate"): TERMINATED,
    (SUSPENDED, "close"): CLOSED,
}

COMMANDS = ["activate", "suspend", "terminate", "close"]
ILLEGAL = [
    (status, command)
    for status in PATHS
    for command in COMMANDS
    if (status, command) not in LEGAL
]

EVENT_NAMES = {
    ACTIVE: "ServiceContract.Activated",
    SUSPENDED: "ServiceContract.Suspended",
    TERMINATED: "ServiceContract.Terminated",
    CLOSED: "ServiceContract.Closed",
}


def reach(contract: ServiceContract, status: str) -> ServiceContract:
    for day, command in enumerate(PATHS[status], start=3):
        contract.transition(command, actor=ADMIN_ACTOR, at=moment(f"2008-03-{day:02d}"))
    assert contract.status == status
    return contract


@pytest.mark.parametrize(("start", "command"), sorted(LEGAL))
def test_each_legal_transition_records_its_event(
    draft_contract: Callable[..., ServiceContract], start: str, command: str
) -> None:
    # given a contract in the start status
    contract = reach(draft_contract(), start)
    version = contract.version

    # when the admin gives the lifecycle command
    contract.transition(command, actor=ADMIN_ACTOR, at=moment("2008-09-01"))

    # then the contract moves to the new status with one past-tense event
    target = LEGAL[(start, command)]
    assert contract.status == target
    assert contract.version == version + 1
    last = contract.collect_events()[-1]
    assert last.type_name() == EVENT_NAMES[target]
    assert last.actor == ADMIN_ACTOR
    assert last.data == {}


@pytest.mark.parametrize(("start", "command"), ILLEGAL)
def test_every_illegal_transition_is_refused_and_records_nothing(
    draft_contract: Callable[..., ServiceContract], start: str, command: str
) -> None:
    # given a contract in the start status
    contract = reach(draft_contract(), start)
    version, head = contract.version, contract.head_hash

    # when the admin gives a command that status does not allow, then it is refused
    with pytest.raises(IllegalTransition, match=f"cannot {command} contract HZ-YOUTH-2008"):
        contract.transition(command, actor=ADMIN_ACTOR, at=moment("2008-09-01"))

    # and nothing changed
    assert (contract.status, contract.version, contract.head_hash) == (start, version, head)


def test_the_illegal_transitions_are_exactly_these() -> None:
    # the table above, spelled out: the finished states accept nothing, a contract
    # cannot be activated twice, suspended twice, or closed before it started
    assert sorted(ILLEGAL) == sorted([
        (DRAFT, "suspend"), (DRAFT, "close"),
        (ACTIVE, "activate"),
        (SUSPENDED, "suspend"),
        *((TERMINATED, c) for c in COMMANDS),
        *((CLOSED, c) for c in COMMANDS),
    ])


def test_a_suspended_contract_is_resumed_by_activating_it(
    draft_contract: Callable[..., ServiceContract],
) -> None:
    # given the youth contract suspended while the bureau reviews it
    contract = reach(draft_contract(), SUSPENDED)

    # when the admin activates it again
    contract.transition("activate", actor=ADMIN_ACTOR, at=moment("2008-04-01"))

    # then it is active and the history shows two activations
    assert contract.status == ACTIVE
    names = [e.type_name() for e in contract.collect_events()]
    assert names.count("ServiceContract.Activated") == 2
