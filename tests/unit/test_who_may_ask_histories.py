"""SPEC §13 in random histories: classifications, disputes, corrections and admission lists
mixed with the issues, amendments, withdrawals, decisions and escalations of
``test_conflict_episodes``.  After every event the view agrees with detection (an open
conflict per group found, unless decided), and the live view at every version equals
the replay from the events alone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from domain.chain import ChainedAggregate
from domain.contract import ServiceContract
from domain.directives import Classification, Dispute
from domain.resolution import Decision
from domain.terms import Admission
from domain.work_kinds import WORK_KINDS

from .givens import ADMIN_ACTOR, actor_of, moment
from .test_conflict_episodes import (
    PROPERTY_SETTINGS,
    TOP,
    assert_agrees_with_detection,
    at,
    open_conflicts,
    step,
)

KINDS_OF_WORK = [None, "casework", "census", "stability_maintenance", "community_activity"]
PARTIES = ["haichuang-street", "chigang-street", "haizhu-youth-league", "gz-swa"]
LISTS = st.sampled_from([
    [],
    [{"org": "haichuang-street", "task_types": ["casework", "community_activity"]},
     {"org": "haizhu-civil-affairs", "task_types": ["*"]}],
    [{"org": "chigang-street", "task_types": ["census"]},
     {"org": "haichuang-street", "task_types": ["*"]}],
])


def section_13_step(contract: ServiceContract, data: st.DataObject) -> bool:
    """One random §13 command that is valid now; False when none was drawn."""
    when = at(contract.version + 1)
    active = contract.active_directives()
    disputed = [r for r in open_conflicts(contract) if r["kind"] == "disputed"]
    moves = ["admission"] + (["classify", "dispute"] if active else []) + (
        ["correct"] if disputed else [])
    move = data.draw(st.sampled_from(moves), label="section 13 move")
    if move == "admission":
        contract.change_admission(Admission.model_validate({"admission": data.draw(LISTS)}),
                                  actor=ADMIN_ACTOR, at=when)
    elif move == "classify":
        target = data.draw(st.sampled_from([d["id"] for d in active]), label="classified")
        kind = data.draw(st.sampled_from(KINDS_OF_WORK), label="task_type")
        tags = data.draw(st.sampled_from([[], ["personal_data_disclosure"]]), label="tags")
        if kind is None and not tags:
            tags = ["personal_data_disclosure"]
        contract.classify_directive(target, Classification(task_type=kind, add_tags=tags,
                                                           note="社工机构分类"),
                                    actor=actor_of("qichuang"), at=when)
    elif move == "dispute":
        directive = data.draw(st.sampled_from(active), label="disputed")
        by = data.draw(st.sampled_from([p for p in PARTIES if p != directive["issuer"]]))
        if any(d["by"] == by and d["status"] == "open" for d in directive.get("disputes", [])):
            return False
        fields = data.draw(st.sampled_from([["tags"], ["people_affected"], ["tags", "basis"]]))
        contract.dispute_directive(directive["id"], Dispute.model_validate(
            {"fields": fields, "reason": "数据不实"}), by=by, actor=actor_of(by), at=when)
    else:
        record = data.draw(st.sampled_from(disputed), label="corrected")
        fields = record["details"]["fields"]
        corrections: dict[str, Any] = {"tags": []} if "tags" in fields else {"people_affected": 5}
        contract.resolve_conflict(record["id"], Decision.model_validate({
            "outcome": "corrected", "corrections": corrections, "rationale": "核实后更正"}),
            resolver=TOP, actor=actor_of(TOP), at=when)
    return True


@PROPERTY_SETTINGS
@given(data=st.data())
def test_section_13_histories_agree_with_detection_and_replay(
    draft_contract: Callable[..., ServiceContract], data: st.DataObject,
) -> None:
    contract = draft_contract(service_types=["casework", "community_activity", "census"],
                              service_area=[{"name": "海幢街", "aliases": ["海幢"]}, "赤岗街"])
    contract.transition("activate", actor=ADMIN_ACTOR, at=moment("2008-03-03"))
    issued: list[str] = []
    views: dict[int, dict[str, Any]] = {contract.version: dict(contract.conflicts)}
    while contract.version < 120:
        if not (data.draw(st.integers(0, 2), label="which") == 0
                and section_13_step(contract, data)):
            step(contract, data, issued)
        views[contract.version] = dict(contract.conflicts)
        assert_agrees_with_detection(contract)

    events: list[ChainedAggregate.Event] = list(contract.collect_events())
    replayed: ServiceContract | None = None
    for event in events:
        replayed = event.mutate(replayed)
        assert replayed is not None
        if event.originator_version in views:
            assert replayed.conflicts == views[event.originator_version]
    assert replayed is not None and replayed.directives == contract.directives
    assert set(WORK_KINDS) >= {k for k in KINDS_OF_WORK if k}

    # and a snapshot taken at some version, restored, goes on to the same views
    cut = data.draw(st.integers(1, len(events) - 1), label="snapshot version")
    restored: Any = None
    for event in events[:cut]:
        restored = event.mutate(restored)
    restored._conflict_tracker()
    restored = ServiceContract.Snapshot.take(restored).mutate(None)
    for event in events[cut:]:
        restored = event.mutate(restored)
        if event.originator_version in views:
            assert restored.conflicts == views[event.originator_version]
