"""SPEC §13 in the domain: kinds of work, places, admission, classification, disputes and
joint decisions, each rule on the Haizhu youth contract built in memory."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from domain.conflicts import detect_conflicts
from domain.contract import ServiceContract
from domain.directives import Classification, Dispute
from domain.errors import (
    AlreadyExists,
    Forbidden,
    InsufficientAuthority,
    NoPendingProposal,
    ProposalPending,
    ValidationFailed,
)
from domain.priorities import rank_directives
from domain.resolution import Decision, Escalation
from domain.scope import ContractScope, place_key
from domain.terms import Admission, ContractTerms
from domain.webhooks import EVENT_TYPES, messages_for

from .givens import ADMIN_ACTOR, HAIZHU_YOUTH, actor_of, moment

Issue = Callable[..., str]

CENSUS = {"subject": "census.youth_2008", "value": "street-form", "summary": "海幢街青少年普查",
          "basis": "purchaser_request", "hours_per_week": 30, "target_groups": ["youth"],
          "locations": ["海幢街"]}
ROSTER = {"subject": "duty.stability_roster", "value": "weekends", "summary": "维稳值班",
          "basis": "purchaser_request", "hours_per_week": 16}
CASEWORK = {"subject": "casework.school_refusal", "value": 12, "summary": "厌学个案",
            "basis": "purchaser_request", "hours_per_week": 10, "task_type": "casework"}
FILES = {"subject": "cases.export", "value": "all", "summary": "提供全部个案档案",
         "basis": "purchaser_request", "hours_per_week": 2, "tags": ["consent_obtained"]}


def kinds(contract: ServiceContract, status: str = "open") -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for record in contract.conflicts.values():
        if record["status"] == status:
            found.setdefault(record["kind"], []).append(record)
    return found


def tier_of(contract: ServiceContract, directive_id: str) -> int:
    view = rank_directives(contract.terms, contract.active_directives(),
                           moment("2008-06-02").date(), conflicts=contract.conflicts)
    return next(e["tier"] for e in view if e["directive_id"] == directive_id)


def decide(contract: ServiceContract, org: str, conflict: dict[str, Any], **body: Any) -> None:
    contract.resolve_conflict(conflict["id"], Decision.model_validate(
        {"rationale": "经协商", **body}), resolver=org, actor=actor_of(org),
        at=moment("2008-06-03"))


@pytest.fixture
def contract(draft_contract: Callable[..., ServiceContract]) -> Callable[..., ServiceContract]:
    def make(**overrides: Any) -> ServiceContract:
        made = draft_contract(**overrides)
        made.transition("activate", actor=ADMIN_ACTOR, at=moment("2008-03-03"))
        return made
    return make


# --- kinds of work and places -----------------------------------------------------------


def test_a_kind_of_work_the_contract_does_not_buy_is_out_of_scope(contract, issue: Issue):
    bought = contract(service_types=["casework", "group_work", "community_activity"])
    census = issue(bought, "haichuang-street", {**CENSUS, "task_type": "census"}, name="census")
    fine = issue(bought, "haizhu-civil-affairs", CASEWORK, name="casework")
    [conflict] = kinds(bought)["out_of_scope"]
    assert conflict["members"] == [census]
    assert conflict["details"]["outside"] == ["census"]
    assert conflict["details"]["outside_task_types"] == ["census"]
    assert fine not in {m for c in bought.conflicts.values() for m in c["members"]}


def test_no_service_types_means_any_kind_of_work(contract, issue: Issue):
    anything = contract()
    issue(anything, "haichuang-street", {**ROSTER, "task_type": "stability_maintenance"})
    assert "out_of_scope" not in kinds(anything)


def test_street_office_names_are_the_street():
    assert place_key("华洲街道") == place_key("华洲街") == place_key(" 华洲街道办事处 ")
    scope = ContractScope({"service_area": ["华洲街", {"name": "赤岗中学", "aliases": ["赤岗中"]}]})
    assert scope.outside({"issuer": "x", "locations": ["华洲街道", "赤岗中", "赤岗中学"]}) is None
    outside = scope.outside({"issuer": "x", "locations": ["南华西街", "华洲街道"]})
    assert outside is not None and outside.locations == ("南华西街",)


def test_a_directive_naming_the_street_office_is_in_scope(contract, issue: Issue):
    aliased = contract(service_area=[{"name": "海幢街", "aliases": ["海幢"]}, "华洲街"])
    issue(aliased, "haichuang-street", {**CASEWORK, "locations": ["华洲街道", "海幢"]})
    assert "out_of_scope" not in kinds(aliased)


def test_an_unknown_kind_of_work_is_refused():
    with pytest.raises(ValidationError):
        ContractTerms.model_validate({**HAIZHU_YOUTH, "service_types": ["demolition"]})
    with pytest.raises(ValidationError):
        Admission.model_validate({"admission": [{"org": "a-street", "task_types": ["拆迁"]}]})


# --- admission --------------------------------------------------------------------------

ADMITTED = [{"org": "haichuang-street", "task_types": ["casework", "community_activity"]},
            {"org": "haizhu-civil-affairs", "task_types": ["*"]}]


def test_an_organisation_not_admitted_for_the_kind_of_work_is_blocked(contract, issue: Issue):
    listed = contract(admission=ADMITTED)
    roster = issue(listed, "haichuang-street", {**ROSTER, "task_type": "stability_maintenance"},
                   name="roster")
    untyped = issue(listed, "haichuang-street", CENSUS, name="census")
    issue(listed, "haichuang-street", CASEWORK, name="casework")
    issue(listed, "haizhu-civil-affairs", ROSTER, name="bureau")  # admitted for any kind
    stranger = issue(listed, "chigang-street", CASEWORK, name="stranger")
    found = {c["members"][0]: c for c in kinds(listed)["not_admitted"]}
    assert set(found) == {roster, untyped, stranger}
    assert found[roster]["details"]["admitted_task_types"] == ["casework", "community_activity"]
    assert found[stranger]["details"]["admitted_task_types"] == []
    assert tier_of(listed, roster) == 5
    assert found == {c["members"][0]: c for c in
                     [r for r in kinds(listed)["not_admitted"]]}
    full = {(d.kind, d.members) for d in detect_conflicts(listed.terms,
                                                          listed.active_directives())}
    assert {("not_admitted", (key,)) for key in found} <= full


def test_a_new_admission_list_rechecks_every_directive(contract, issue: Issue):
    open_list = contract()
    roster = issue(open_list, "haichuang-street", {**ROSTER, "task_type": "stability_maintenance"})
    assert "not_admitted" not in kinds(open_list)
    open_list.change_admission(Admission.model_validate({"admission": ADMITTED}),
                               actor=ADMIN_ACTOR, at=moment("2008-06-05"))
    [blocked] = kinds(open_list)["not_admitted"]
    assert blocked["members"] == [roster] and blocked["opened_version"] == open_list.version
    open_list.change_admission(Admission.model_validate({"admission": []}),
                               actor=ADMIN_ACTOR, at=moment("2008-06-06"))
    assert "not_admitted" not in kinds(open_list)
    assert kinds(open_list, "dissolved")["not_admitted"][0]["id"] == blocked["id"]


def test_endorsing_needs_the_authority_to_override_and_returns_the_tier(contract, issue: Issue):
    listed = contract(admission=ADMITTED, escalation_chain=[
        "qichuang", "haichuang-street", "haizhu-youth-league", "haizhu-civil-affairs"])
    roster = issue(listed, "haichuang-street", {**ROSTER, "task_type": "stability_maintenance"})
    [blocked] = kinds(listed)["not_admitted"]
    with pytest.raises(InsufficientAuthority):
        decide(listed, "qichuang", blocked, outcome="upheld", upheld=[roster])
    decide(listed, "haizhu-youth-league", blocked, outcome="upheld", upheld=[roster])
    assert listed.conflicts[blocked["id"]]["status"] == "resolved"
    assert tier_of(listed, roster) == 4


# --- classification ---------------------------------------------------------------------


def test_the_provider_classifies_and_scope_rules_and_admission_follow(contract, issue: Issue):
    listed = contract(admission=ADMITTED, service_types=["casework", "community_activity"])
    files = issue(listed, "haichuang-street", {**CASEWORK, "tags": []}, name="files")
    assert not kinds(listed)
    listed.classify_directive(files, Classification.model_validate({
        "task_type": "census", "add_tags": ["personal_data_disclosure"],
        "note": "实为普查并索取个人资料"}), actor=actor_of("qichuang"), at=moment("2008-06-04"))
    found = kinds(listed)
    assert {c["kind"] for cs in found.values() for c in cs} == {
        "out_of_scope", "not_admitted", "rule_violation"}
    directive = listed.directive(files)
    assert directive["task_type"] == "casework"  # what the issuer said stays
    assert directive["classification"]["task_type"] == "census"
    assert directive["tags"] == [] and directive["classification"]["tags"] == [
        "personal_data_disclosure"]


def test_only_the_provider_classifies(contract, issue: Issue):
    made = contract()
    key = issue(made, "haichuang-street", CASEWORK)
    with pytest.raises(Forbidden):
        made.classify_directive(key, Classification(task_type="census", note="x"),
                                actor=actor_of("haichuang-street"), at=moment("2008-06-04"))
    with pytest.raises(ValidationError):
        Classification.model_validate({"note": "nothing said"})


# --- disputes ---------------------------------------------------------------------------


def dispute(contract: ServiceContract, key: str, by: str, *fields: str) -> None:
    contract.dispute_directive(key, Dispute.model_validate(
        {"fields": list(fields), "reason": "并未取得同意"}), by=by, actor=actor_of(by),
        at=moment("2008-06-04"))


def test_a_dispute_opens_a_disputed_conflict_and_the_directive_keeps_its_rank(contract, issue):
    made = contract()
    key = issue(made, "haichuang-street", CASEWORK)
    tier = tier_of(made, key)
    dispute(made, key, "haizhu-youth-league", "people_affected", "hours_per_week")
    [conflict] = kinds(made)["disputed"]
    assert conflict["members"] == [key] and conflict["level"] == 0
    assert conflict["details"]["fields"] == ["people_affected", "hours_per_week"]
    assert tier_of(made, key) == tier
    with pytest.raises(AlreadyExists):
        dispute(made, key, "haizhu-youth-league", "due")
    with pytest.raises(Forbidden):
        dispute(made, key, "haichuang-street", "due")  # its own
    with pytest.raises(Forbidden):
        dispute(made, key, "haichuang-residents", "due")  # not a party


def test_a_disputed_consent_tag_exempts_nothing_until_decided(contract, issue: Issue):
    made = contract()
    key = issue(made, "haichuang-street", {**FILES, "tags": [
        "personal_data_disclosure", "consent_obtained"]})
    assert "rule_violation" not in kinds(made)
    dispute(made, key, "haizhu-youth-league", "tags")
    assert [c["members"] for c in kinds(made)["rule_violation"]] == [[key]]
    [disputed] = kinds(made)["disputed"]
    decide(made, "qichuang", disputed, outcome="upheld", upheld=[key])
    assert "rule_violation" not in kinds(made)
    assert made.directive(key)["disputes"][0]["status"] == "decided"


def test_a_correction_changes_only_disputed_fields_as_the_resolver(contract, issue: Issue):
    made = contract()
    key = issue(made, "haizhu-youth-league", {**CASEWORK, "people_affected": 900})
    dispute(made, key, "haichuang-street", "people_affected")
    [disputed] = kinds(made)["disputed"]
    with pytest.raises(ValidationFailed):
        decide(made, "haizhu-youth-league", disputed, outcome="corrected",
               corrections={"hours_per_week": 1})
    with pytest.raises(InsufficientAuthority):
        decide(made, "qichuang", disputed, outcome="corrected",
               corrections={"people_affected": 90})
    decide(made, "haizhu-youth-league", disputed, outcome="corrected",
           corrections={"people_affected": 90})
    assert made.directive(key)["people_affected"] == 90
    assert made.conflicts[disputed["id"]]["resolution"]["corrections"] == {"people_affected": 90}
    events = list(made.collect_events())
    assert [type(e).__name__ for e in events[-2:]] == ["ConflictResolved", "DirectiveCorrected"]
    assert events[-1].actor["org"] == "haizhu-youth-league"


def test_corrected_applies_to_disputes_only(contract, issue: Issue):
    made = contract(admission=ADMITTED)
    key = issue(made, "chigang-street", CASEWORK)
    [blocked] = kinds(made)["not_admitted"]
    with pytest.raises(ValidationFailed):
        decide(made, "haizhu-civil-affairs", blocked, outcome="corrected",
               corrections={"people_affected": 1})
    assert made.directive(key)["status"] == "active"


# --- joint decisions --------------------------------------------------------------------

JOINT = {"joint_decision": ["haizhu-youth-league", "haizhu-civil-affairs"]}


def answer(contract: ServiceContract, org: str, conflict: dict[str, Any], approve: bool) -> None:
    contract.answer_proposal(conflict["id"], org=org, approve=approve, note="同意" if approve
                             else "不同意", actor=actor_of(org), at=moment("2008-06-04"))


def test_a_decision_takes_effect_when_every_listed_organisation_approves(contract, issue):
    joint = contract(**JOINT)
    key = issue(joint, "haichuang-street", CASEWORK)
    dispute(joint, key, "chigang-street", "people_affected")
    [disputed] = kinds(joint)["disputed"]
    decide(joint, "qichuang", disputed, outcome="upheld", upheld=[key])
    record = joint.conflicts[disputed["id"]]
    assert record["status"] == "open" and record["proposal"]["status"] == "pending"
    with pytest.raises(ProposalPending):
        decide(joint, "haizhu-youth-league", disputed, outcome="upheld", upheld=[key])
    with pytest.raises(Forbidden):
        answer(joint, "chigang-street", disputed, True)
    answer(joint, "haizhu-youth-league", disputed, True)
    with pytest.raises(AlreadyExists):
        answer(joint, "haizhu-youth-league", disputed, True)
    assert joint.conflicts[disputed["id"]]["status"] == "open"
    answer(joint, "haizhu-civil-affairs", disputed, True)
    record = joint.conflicts[disputed["id"]]
    assert record["status"] == "resolved"
    assert record["resolution"]["approved_by"] == ["haizhu-civil-affairs", "haizhu-youth-league"]


def test_a_rejection_reopens_and_an_escalation_withdraws(contract, issue: Issue):
    joint = contract(**JOINT)
    key = issue(joint, "haichuang-street", CASEWORK)
    dispute(joint, key, "chigang-street", "people_affected")
    [disputed] = kinds(joint)["disputed"]
    decide(joint, "qichuang", disputed, outcome="upheld", upheld=[key])
    answer(joint, "haizhu-civil-affairs", disputed, False)
    record = joint.conflicts[disputed["id"]]
    assert record["status"] == "open" and record["proposal"] is None
    assert record["proposals"][0]["status"] == "rejected"
    with pytest.raises(NoPendingProposal):
        answer(joint, "haizhu-youth-league", disputed, True)
    decide(joint, "qichuang", disputed, outcome="upheld", upheld=[key])
    joint.escalate_conflict(disputed["id"], Escalation(from_level=0, reason="需上级决定"),
                            escalator="qichuang", actor=actor_of("qichuang"),
                            at=moment("2008-06-05"))
    record = joint.conflicts[disputed["id"]]
    assert record["proposal"] is None and record["level"] == 1
    assert [p["status"] for p in record["proposals"]] == ["rejected", "withdrawn"]


# --- webhook messages -------------------------------------------------------------------


def messages_of_last(contract: ServiceContract, log: list[Any], count: int = 1) -> list[str]:
    """The §8 message types the last ``count`` events give, replayed from the events
    (``log`` keeps every event collected so far)."""
    log += contract.collect_events()
    events = log
    state: Any = None
    for event in events[:-count]:
        state = event.mutate(state)
    types: list[str] = []
    for event in events[-count:]:
        before = copy.deepcopy(state)
        state = event.mutate(state)
        types += [message.type for message in messages_for(event, before, state)]
    assert set(types) <= set(EVENT_TYPES)
    return types


def test_section_13_events_give_their_webhook_messages(contract, issue: Issue):
    joint = contract(**JOINT)
    log: list[Any] = []
    key = issue(joint, "haichuang-street", CASEWORK)
    joint.classify_directive(key, Classification(task_type="census", note="普查"),
                             actor=actor_of("qichuang"), at=moment("2008-06-04"))
    assert messages_of_last(joint, log) == ["directive.classified"]
    joint.change_admission(Admission.model_validate({"admission": ADMITTED}),
                           actor=ADMIN_ACTOR, at=moment("2008-06-04"))
    assert messages_of_last(joint, log) == ["contract.updated", "conflict.opened"]
    dispute(joint, key, "chigang-street", "people_affected")
    assert messages_of_last(joint, log) == ["conflict.opened"]
    disputed = kinds(joint)["disputed"][0]
    decide(joint, "qichuang", disputed, outcome="corrected", corrections={"people_affected": 3})
    assert messages_of_last(joint, log) == ["conflict.proposed"]
    answer(joint, "haizhu-youth-league", disputed, True)
    answer(joint, "haizhu-civil-affairs", disputed, True)
    assert messages_of_last(joint, log, 3) == ["conflict.resolved", "directive.corrected"]


def test_contracts_recorded_before_section_13_replay_with_no_restriction(contract, issue):
    made = contract()
    key = issue(made, "haichuang-street", {**ROSTER, "locations": ["海幢街道"]})
    events = list(made.collect_events())
    for name in ("service_types", "admission", "joint_decision"):
        del events[0].data[name]  # as a contract drafted before these terms existed
    del events[-1].data["task_type"]
    replayed: Any = None
    for event in events:
        replayed = event.mutate(replayed)
    shown = replayed.as_dict()
    assert (shown["service_types"], shown["admission"], shown["joint_decision"]) == ([], [], [])
    assert "task_type" not in replayed.directive(key)
    assert not [c for c in replayed.conflicts.values() if c["status"] == "open"]
    dispute(replayed, key, "chigang-street", "hours_per_week")
    assert kinds(replayed)["disputed"][0]["members"] == [key]


def test_joint_deciders_must_be_able_to_read_the_contract():
    with pytest.raises(ValidationError, match="must be a stakeholder, in the escalation chain"):
        ContractTerms.model_validate({**HAIZHU_YOUTH, "joint_decision": ["haizhu-gov"]})
    without_chain = {**HAIZHU_YOUTH, "escalation_chain": [], "joint_decision": ["haizhu-gov"]}
    assert ContractTerms.model_validate(without_chain).joint_decision == ["haizhu-gov"]
    listed = {**HAIZHU_YOUTH, "joint_decision": ["haichuang-residents", "gz-swa"]}
    assert ContractTerms.model_validate(listed).joint_decision == ["haichuang-residents", "gz-swa"]


def test_a_correction_keeps_a_non_party_basis(contract, issue: Issue):
    made = contract()
    key = issue(made, "haichuang-residents", {**CASEWORK, "basis": "petition"})
    dispute(made, key, "haichuang-street", "basis")
    [disputed] = kinds(made)["disputed"]
    decide(made, "qichuang", disputed, outcome="corrected", corrections={"basis": "statute"})
    assert made.directive(key)["basis"] == "non_party"
