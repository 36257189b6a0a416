"""What a webhook tells: contract events become §8 messages, and who receives them."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import uuid5

import pytest

from domain.access import can_read
from domain.contract import ServiceContract
from domain.directives import DirectivePatch
from domain.errors import ValidationFailed
from domain.organisations import Role
from domain.resolution import Decision, Escalation
from domain.terms import StakeholderSpec, Standing
from domain.webhooks import (
    EVENT_TYPES,
    Message,
    SubscriptionFilter,
    check_event_types,
    message_body,
    messages_for,
    type_matches,
)

from .givens import ADMIN_ACTOR, TEST_NAMESPACE, actor_of, caller, moment

# 海幢街 wants the youth zone open till 21:00 (100 h a week), 赤岗街 closed at 17:30
# (10 h): only one side can be done, so 100 h count; casework takes 70 h: 170 h > the
# 160 free hours a week.
LATE = {"subject": "youth_zone.closing_time", "value": "21:00", "summary": "青年地带开到晚上九点",
        "basis": "purchaser_request", "hours_per_week": 100}
EARLY = {"subject": "youth_zone.closing_time", "value": "17:30", "summary": "青年地带五点半关门",
         "basis": "purchaser_request", "hours_per_week": 10}
CASEWORK = {"subject": "casework.home_visits", "value": {"cases": 40}, "summary": "个案家访",
            "basis": "contract", "citation": "服务合同 第二条", "hours_per_week": 70}
PROVIDER = "qichuang"


def recorded(contract: ServiceContract, command: Callable[[], Any]) -> list[Message]:
    """Run one command on ``contract`` and answer the messages of the one event it records."""
    contract.collect_events()
    before = copy.deepcopy(contract)
    command()
    [event] = contract.collect_events()
    return messages_for(event, before, contract)


def types(messages: list[Message]) -> list[str]:
    return [message.type for message in messages]


def only(messages: list[Message], message_type: str) -> dict[str, Any]:
    [data] = [message.data for message in messages if message.type == message_type]
    return data


@pytest.fixture
def disputed(
    active_contract: ServiceContract, issue: Callable[..., str],
) -> dict[str, Any]:
    """The closing-time contradiction and the over-capacity it feeds, each issue's messages."""
    ids = {"late": issue(active_contract, "haichuang-street", LATE, name="late")}
    messages: dict[str, list[Message]] = {}
    for name, issuer, body in (("early", "chigang-street", EARLY),
                               ("casework", "haizhu-civil-affairs", CASEWORK)):
        def issue_it(issuer: str = issuer, body: dict[str, Any] = body, name: str = name) -> None:
            ids[name] = issue(active_contract, issuer, body, name=name)

        messages[name] = recorded(active_contract, issue_it)
    by_kind = {c["kind"]: c["id"] for c in active_contract.conflicts.values()}
    return {**ids, "messages": messages, **by_kind}


# --- contract events ----------------------------------------------------------------


def test_a_drafted_contract_is_contract_created_with_its_terms(
    draft_contract: Callable[..., ServiceContract],
) -> None:
    # Given a contract just drafted
    contract = draft_contract()
    [drafted] = contract.collect_events()

    # When its event is turned into messages
    [message] = messages_for(drafted, None, contract)

    # Then it is contract.created, carrying the contract with its id and no directives
    assert message.type == "contract.created"
    assert message.data["contract_id"] == message.data["id"] == str(contract.id)
    assert message.data["contract_version"] == 1
    assert message.data["title"] == "海珠区“青年地带”青少年社会工作服务"
    assert message.data["status"] == "draft"
    assert "directives" not in message.data


def test_lifecycle_stakeholders_and_policy_are_contract_updated_saying_what_changed(
    draft_contract: Callable[..., ServiceContract],
) -> None:
    contract = draft_contract()
    at = moment("2008-03-01")

    [added] = recorded(contract, lambda: contract.add_stakeholder(
        StakeholderSpec(org="chigang-residents", standing=Standing.NON_PARTY),
        actor=ADMIN_ACTOR, at=at))
    [activated] = recorded(contract, lambda: contract.transition(
        "activate", actor=ADMIN_ACTOR, at=at))

    assert (added.type, added.data["change"]) == ("contract.updated", "stakeholder_added")
    assert {"org": "chigang-residents", "standing": "non_party"} in added.data["stakeholders"]
    assert (activated.type, activated.data["change"]) == ("contract.updated", "activated")
    assert activated.data["status"] == "active"


# --- directive events ----------------------------------------------------------------


def test_an_issued_directive_is_directive_issued_with_the_directive_and_its_id(
    active_contract: ServiceContract, issue: Callable[..., str],
) -> None:
    ids: list[str] = []
    [message] = recorded(active_contract, lambda: ids.append(
        issue(active_contract, "haichuang-street", LATE, name="late")))

    assert message.type == "directive.issued"
    assert message.data["id"] == ids[0]
    assert message.data["contract_id"] == str(active_contract.id)
    assert message.data["issuer"] == "haichuang-street"
    assert message.data["summary"] == "青年地带开到晚上九点"
    assert message.data["contract_version"] == active_contract.version


def test_an_issue_that_opens_conflicts_tells_the_directive_first_then_the_conflicts(
    disputed: dict[str, Any],
) -> None:
    # When 赤岗街 asks for 17:30 against 海幢街's 21:00
    early = disputed["messages"]["early"]

    # Then the issue comes first, then the contradiction it opened
    assert types(early) == ["directive.issued", "conflict.opened"]
    opened = only(early, "conflict.opened")
    assert opened["id"] == disputed["contradiction"]
    assert opened["kind"] == "contradiction"
    assert sorted(opened["members"]) == sorted([disputed["late"], disputed["early"]])

    # And the casework pushing hours past capacity opens the over-capacity
    assert types(disputed["messages"]["casework"]) == ["directive.issued", "conflict.opened"]
    assert only(disputed["messages"]["casework"], "conflict.opened")["kind"] == "over_capacity"


def test_an_amendment_is_directive_amended_with_the_fields_that_changed(
    active_contract: ServiceContract, disputed: dict[str, Any],
) -> None:
    # When 赤岗街 amends its closing time to 21:00, agreeing with 海幢街
    patch = DirectivePatch.model_validate({"value": "21:00"})
    messages = recorded(active_contract, lambda: active_contract.amend_directive(
        disputed["early"], patch, actor=actor_of("chigang-street"), at=moment("2008-06-03")))

    # Then the amendment names the change; the two now duplicate each other's work, and
    # the contradiction dissolves
    assert types(messages) == ["directive.amended", "conflict.opened", "conflict.dissolved"]
    amended = only(messages, "directive.amended")
    assert amended["changes"] == {"value": {"from": "17:30", "to": "21:00"}}
    assert amended["value"] == "21:00"
    assert only(messages, "conflict.opened")["kind"] == "duplicate"
    assert only(messages, "conflict.dissolved")["id"] == disputed["contradiction"]


def test_a_withdrawal_is_directive_withdrawn(
    active_contract: ServiceContract, disputed: dict[str, Any],
) -> None:
    messages = recorded(active_contract, lambda: active_contract.withdraw_directive(
        disputed["casework"], actor=actor_of("haizhu-civil-affairs"), at=moment("2008-06-03")))

    assert types(messages) == ["directive.withdrawn", "conflict.dissolved"]
    assert only(messages, "directive.withdrawn")["status"] == "withdrawn"
    assert only(messages, "conflict.dissolved")["id"] == disputed["over_capacity"]


# --- conflict events ------------------------------------------------------------------


def test_a_decision_tells_resolved_then_overridden_then_what_dissolved(
    active_contract: ServiceContract, disputed: dict[str, Any],
) -> None:
    # When 启创 upholds 17:30 and overrides 21:00
    decision = Decision.model_validate({
        "outcome": "upheld", "upheld": [disputed["early"]], "overridden": [disputed["late"]],
        "rationale": "经协调会议决定，以街道要求为准"})
    messages = recorded(active_contract, lambda: active_contract.resolve_conflict(
        disputed["contradiction"], decision, resolver=PROVIDER, actor=actor_of(PROVIDER),
        at=moment("2008-06-03")))

    # Then the contradiction is resolved, 21:00 overridden, and the over-capacity it fed gone
    assert types(messages) == ["conflict.resolved", "directive.overridden",
                               "conflict.dissolved"]
    resolved = only(messages, "conflict.resolved")
    assert resolved["id"] == disputed["contradiction"]
    assert resolved["resolution"]["rationale"] == "经协调会议决定，以街道要求为准"
    overridden = only(messages, "directive.overridden")
    assert (overridden["id"], overridden["status"]) == (disputed["late"], "overridden")
    assert only(messages, "conflict.dissolved")["id"] == disputed["over_capacity"]


def test_an_escalation_is_conflict_escalated_with_its_levels(
    active_contract: ServiceContract, disputed: dict[str, Any],
) -> None:
    messages = recorded(active_contract, lambda: active_contract.escalate_conflict(
        disputed["contradiction"], Escalation(from_level=0, reason="协商无果，提交上级"),
        escalator=PROVIDER, actor=actor_of(PROVIDER), at=moment("2008-06-03")))

    [message] = messages
    assert message.type == "conflict.escalated"
    assert (message.data["id"], message.data["from_level"], message.data["to_level"]) == (
        disputed["contradiction"], 0, 1)
    assert message.data["level"] == 1


def test_the_messages_do_not_depend_on_records_being_shared_between_the_two_states(
    active_contract: ServiceContract, issue: Callable[..., str],
) -> None:
    # Given the state before an issue, once sharing records with the state after and once not
    issue(active_contract, "haichuang-street", LATE, name="late")
    active_contract.collect_events()
    shared = copy.deepcopy(active_contract)
    separate = copy.deepcopy(active_contract)
    separate.conflicts = copy.deepcopy(dict(active_contract.conflicts))
    separate.directives = copy.deepcopy(dict(active_contract.directives))

    # When 赤岗街 issues 17:30
    issue(active_contract, "chigang-street", EARLY, name="early")
    [event] = active_contract.collect_events()

    # Then both comparisons tell the same
    assert messages_for(event, shared, active_contract) == messages_for(
        event, separate, active_contract)


def test_every_type_a_message_can_have_is_a_known_type(disputed: dict[str, Any]) -> None:
    for messages in disputed["messages"].values():
        assert set(types(messages)) <= set(EVENT_TYPES)


# --- the body -----------------------------------------------------------------------


def test_the_body_is_compact_utf8_json_with_contract_id_and_sequence_first() -> None:
    # Given a message about a directive
    message = Message("directive.issued", {"contract_id": "c-1", "contract_version": 7,
                                           "id": "d-1", "summary": "走访30户低保家庭青少年"})

    # When its body is built as the subscription's third message of this contract
    body = message_body(message, sequence=3,
                        timestamp=datetime(2008, 6, 2, 1, 0, tzinfo=UTC))

    # Then it is compact JSON, Chinese written as UTF-8, data led by contract_id and sequence
    assert body == (
        '{"type":"directive.issued","timestamp":"2008-06-02T01:00:00+00:00",'
        '"data":{"contract_id":"c-1","sequence":3,"contract_version":7,"id":"d-1",'
        '"summary":"走访30户低保家庭青少年"}}'
    ).encode()
    assert json.loads(body)["data"]["sequence"] == 3


def test_a_sequence_starts_at_one_and_a_timestamp_has_a_zone() -> None:
    message = Message("contract.created", {"contract_id": "c-1"})
    with pytest.raises(ValueError):
        message_body(message, sequence=0, timestamp=datetime(2008, 6, 2, tzinfo=UTC))
    with pytest.raises(ValueError):
        message_body(message, sequence=1, timestamp=datetime(2008, 6, 2))


# --- who receives -------------------------------------------------------------------


@pytest.mark.parametrize(("pattern", "event_type", "wanted"), [
    ("*", "conflict.opened", True),
    ("*", "contract.created", True),
    ("conflict.*", "conflict.dissolved", True),
    ("conflict.*", "directive.issued", False),
    ("directive.issued", "directive.issued", True),
    ("directive.issued", "directive.amended", False),
    ("contract.*", "contract.updated", True),
])
def test_type_patterns(pattern: str, event_type: str, wanted: bool) -> None:
    assert type_matches(pattern, event_type) is wanted


def test_subscribed_types_are_checked_when_a_subscription_is_made() -> None:
    assert check_event_types(["conflict.*", "directive.issued", "conflict.*"]) == [
        "conflict.*", "directive.issued"]
    assert check_event_types(["*"]) == ["*"]
    for bad in (["conflicts.*"], ["directive.deleted"], ["conflict.open*"], ["*.opened"], []):
        with pytest.raises(ValidationFailed) as refused:
            check_event_types(bad)
        assert refused.value.errors[0][0] == "event_types"


def test_a_stakeholder_receives_the_types_it_chose_of_its_contracts(
    active_contract: ServiceContract,
) -> None:
    street = SubscriptionFilter(caller("haichuang-street", Role.STAKEHOLDER), ("conflict.*",))
    assert street.receives("conflict.opened", active_contract)
    assert not street.receives("directive.issued", active_contract)


def test_an_organisation_receives_nothing_of_a_contract_it_may_not_read(
    active_contract: ServiceContract,
) -> None:
    # Given 荔湾 (not on the Haizhu contract) subscribing to everything, even naming it
    stranger = SubscriptionFilter(caller("liwan-street", Role.STAKEHOLDER), ("*",),
                                  frozenset({str(active_contract.id)}))

    # Then it hears nothing of it
    assert not stranger.receives("directive.issued", active_contract)


def test_an_organisation_only_in_the_escalation_chain_receives_what_its_key_may_read(
    active_contract: ServiceContract,
) -> None:
    # Given 启创, in the chain though not a listed stakeholder: its stakeholder key gets 404
    # on the contract (SPEC §3), so its all-contracts subscription hears nothing of it
    # either (issue 11: it used to receive every event of the contract)
    assert PROVIDER in active_contract.escalation_chain
    assert PROVIDER not in active_contract.stakeholder_orgs
    provider = caller(PROVIDER, Role.STAKEHOLDER)
    assert not can_read(provider, active_contract)
    assert not SubscriptionFilter(provider, ("*",)).receives("conflict.escalated",
                                                              active_contract)


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("org", ["haichuang-street", PROVIDER, "liwan-street", "threadneedle"])
def test_the_fan_out_and_the_api_agree_on_who_may_read(
    active_contract: ServiceContract, org: str, role: Role,
) -> None:
    # Whatever the organisation and role of the key that subscribed, it is told of a
    # contract exactly when that key may read the contract through the API
    owner = caller(org, role)
    assert SubscriptionFilter(owner, ("*",)).receives("directive.issued", active_contract) \
        == can_read(owner, active_contract)


def test_admins_and_supervisors_receive_every_contract(active_contract: ServiceContract) -> None:
    for role in (Role.ADMIN, Role.SUPERVISOR):
        assert SubscriptionFilter(caller("threadneedle", role), ("*",)).receives(
            "contract.updated", active_contract)


def test_a_contract_filter_leaves_out_the_other_contracts(
    active_contract: ServiceContract,
) -> None:
    other = str(uuid5(TEST_NAMESPACE, "LW-ELDERLY-2009"))
    only_other = SubscriptionFilter(caller("haichuang-street", Role.STAKEHOLDER), ("*",),
                                    frozenset({other}))
    this_one = SubscriptionFilter(caller("haichuang-street", Role.STAKEHOLDER), ("*",),
                                  frozenset({str(active_contract.id), other}))
    assert not only_other.receives("directive.issued", active_contract)
    assert this_one.receives("directive.issued", active_contract)


def test_an_event_that_is_not_the_contract_s_gives_no_message(
    active_contract: ServiceContract,
) -> None:
    assert messages_for(object(), None, active_contract) == []
