"""Conflicts as episodes (SPEC §4), over random histories of more than 200 events.

Histories mix issues, amendments and withdrawals (so directives join and leave
conflicts, and runs of weeks merge and split) with decisions that override
directives and escalations.  After every event:

1. the conflict view agrees with an independent definition: every open
   conflict is exactly one group the detectors find in the state (with the
   load that the open conflicts imply), and every group found is open or was
   already decided by a resolved conflict holding all its members;
2. an open conflict never drops in level, and gets a later ``due`` only from
   its own escalation: no directive joining it can reset either;
3. the member ids stored across all conflicts stay under a small multiple of
   the directives issued (state is linear in history).

And the live view at every version equals the replay at that version: from
the events alone, from a snapshot, and from a deep copy going on.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.chain import ChainedAggregate
from domain.conflicts import find_conflicts
from domain.contract import ServiceContract
from domain.contract_state import ContractState
from domain.directives import Basis, DirectiveFields, DirectivePatch
from domain.resolution import Decision, Escalation

from .givens import ADMIN_ACTOR, GUANGZHOU, actor_of, directive_id, moment

PERIOD_DAYS = 363  # 2008-03-03 … 2009-03-01
TOP = "haizhu-civil-affairs"  # the last level of the Haizhu chain: may override anyone
ISSUERS = ["haichuang-street", "chigang-street", "haizhu-civil-affairs", "haichuang-residents"]


def day(offset: int) -> str:
    return (datetime(2008, 3, 3) + timedelta(days=offset)).date().isoformat()


FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "subject": st.sampled_from(["reporting.weekly", "center.closing_time", "focus.client_mix"]),
    "value": st.sampled_from([None, "17:30", "20:00", {"format": "表格", "copies": 2},
                              {"copies": 2.0, "format": "表格"}, 1]),
    "basis": st.sampled_from([basis.value for basis in Basis]),
    "hours_per_week": st.sampled_from([0, 5, 30, 60, 90.5]),
    "window": st.integers(0, PERIOD_DAYS).flatmap(
        lambda first: st.integers(first, min(PERIOD_DAYS, first + 90)).map(
            lambda last: {"from": day(first), "to": day(last)})),
    "target_groups": st.sampled_from([[], ["youth"], ["elderly"]]),
    "locations": st.sampled_from([[], ["海幢街"], ["逢源街"]]),
    "tags": st.sampled_from([[], ["personal_data_disclosure"],
                             ["personal_data_disclosure", "consent_obtained"]]),
    "summary": st.sampled_from(["生成的指令", "每周按街道模板报送工作数据", "Weekly report"]),
}

PROPERTY_SETTINGS = settings(
    max_examples=8, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                           HealthCheck.data_too_large, HealthCheck.large_base_example],
)


def at(version: int) -> datetime:
    return datetime(2008, 3, 3, 9, tzinfo=GUANGZHOU) + timedelta(hours=3 * version)


def open_conflicts(contract: ServiceContract) -> list[dict[str, Any]]:
    return sorted((r for r in contract.conflicts.values() if r["status"] == "open"),
                  key=lambda r: r["id"])


def step(contract: ServiceContract, data: st.DataObject, issued: list[str],
         fields: dict[str, st.SearchStrategy[Any]] = FIELDS) -> None:
    """One random command that is valid now (issues and amendments draw ``fields``)."""
    when = at(contract.version + 1)
    active = [d["id"] for d in contract.active_directives()]
    live = open_conflicts(contract)
    moves = ["issue", "issue", "issue", "amend", "withdraw"] if active else ["issue"]
    if live:
        moves += ["resolve", "escalate"]
    move = data.draw(st.sampled_from(moves), label="move")
    if move == "issue":
        body = {name: data.draw(strategy, label=name) for name, strategy in fields.items()}
        name = f"指令-{len(issued)}"
        issuer = data.draw(st.sampled_from(ISSUERS), label="issuer")
        contract.issue_directive(
            DirectiveFields.model_validate({**body, "citation": "测试依据（示例）"}),
            directive_id=directive_id(name), issuer=issuer, actor=actor_of(issuer), at=when)
        issued.append(str(directive_id(name)))
    elif move == "amend":
        target = data.draw(st.sampled_from(active), label="amended")
        changed = data.draw(st.sets(st.sampled_from(sorted(fields)), min_size=1, max_size=3),
                            label="fields")
        patch = {name: data.draw(fields[name], label=name) for name in sorted(changed)}
        contract.amend_directive(target, DirectivePatch.model_validate(patch),
                                 actor=ADMIN_ACTOR, at=when)
    elif move == "withdraw":
        target = data.draw(st.sampled_from(active), label="withdrawn")
        contract.withdraw_directive(target, actor=ADMIN_ACTOR, at=when)
    elif move == "resolve":
        record = data.draw(st.sampled_from(live), label="decided")
        members = record["members"]
        outcome = data.draw(st.sampled_from(["upheld", "deferred", "rejected_all"]),
                            label="outcome")
        body: dict[str, Any] = {"outcome": outcome, "rationale": "协调会议决定"}
        if outcome == "upheld":
            body |= {"upheld": members[:1], "overridden": members[1:]}
        contract.resolve_conflict(record["id"], Decision.model_validate(body), resolver=TOP,
                                  actor=actor_of(TOP), at=when)
    else:
        record = data.draw(st.sampled_from(live), label="escalated")
        if record["level"] >= 2:
            contract.withdraw_directive(record["members"][0], actor=ADMIN_ACTOR, at=when)
            return
        contract.escalate_conflict(
            record["id"], Escalation(from_level=record["level"], reason="协商无果，提交上级"),
            escalator=TOP, actor=actor_of(TOP), at=when)


# --- the independent definition --------------------------------------------------


HISTORY_DETAILS = ("precedents", "merged_into", "split_from")


def _detected(details: dict[str, Any]) -> dict[str, Any]:
    """A record's details without what its history adds (``HISTORY_DETAILS``)."""
    return {k: v for k, v in details.items() if k not in HISTORY_DETAILS}


def assert_agrees_with_detection(contract: ServiceContract) -> None:
    """The view against whole-state detection under the load its open conflicts imply."""
    state = ContractState(contract.terms, contract.active_directives())
    records = list(contract.conflicts.values())
    opened = [r for r in records if r["status"] == "open"]
    decided = [r for r in records if r["status"] == "resolved"]
    found = find_conflicts(state, opened=opened)

    def key(kind: str, members: Any, details: dict[str, Any]) -> tuple[Any, ...]:
        where = details.get("weeks") or details.get("subject")
        return (kind, tuple(sorted(members)), str(where), details.get("rule"),
                details.get("dispute"))

    open_keys = Counter(key(r["kind"], r["members"], r["details"]) for r in opened)
    found_keys = {key(d.kind, d.members, d.details): d for d in found}
    assert all(count == 1 for count in open_keys.values()), "two open conflicts, one group"
    assert set(open_keys) <= set(found_keys), "an open conflict whose condition no longer holds"
    for group, detection in found_keys.items():
        if group in open_keys:  # and it says what detection says of it (summaries too)
            [record] = [r for r in opened if key(r["kind"], r["members"], r["details"]) == group]
            assert _detected(record["details"]) == detection.details, group
            continue
        assert any(r["kind"] == detection.kind and set(detection.members) <= set(r["members"])
                   for r in decided), f"a conflict found but neither open nor decided: {group}"


@PROPERTY_SETTINGS
@given(data=st.data())
def test_episodes_hold_their_identity_and_agree_with_detection_and_replay(
    draft_contract: Callable[..., ServiceContract], data: st.DataObject,
) -> None:
    # Given a contract that lives through more than 200 random events
    contract = draft_contract()
    contract.transition("activate", actor=ADMIN_ACTOR, at=moment("2008-03-03"))
    issued: list[str] = []
    views: dict[int, dict[str, Any]] = {1: {}, contract.version: dict(contract.conflicts)}
    while contract.version < 215:
        before = {r["id"]: r for r in open_conflicts(contract)}
        step(contract, data, issued)
        after = contract.conflicts
        views[contract.version] = dict(after)

        # Then the view agrees with detection after every event
        assert_agrees_with_detection(contract)
        # and an open conflict's level never drops, nor does its due move later except
        # by an escalation of that very conflict
        last = contract.pending_events[-1]
        escalated = ({last.data["conflict_id"]}
                     if isinstance(last, ServiceContract.ConflictEscalated) else set())
        for conflict_id, was in before.items():
            now = after[conflict_id]
            assert now["level"] >= was["level"]
            if conflict_id not in escalated:
                assert datetime.fromisoformat(now["due"]) <= datetime.fromisoformat(was["due"])
            if now["members"] != was["members"]:
                assert now["member_changes"][-1]["version"] == contract.version
        # and the members stored stay linear in the directives
        stored = sum(len(r["members"]) for r in after.values())
        assert stored <= 4 * len(issued) + 10, (stored, len(issued))
    events: list[ChainedAggregate.Event] = list(contract.collect_events())
    assert len(events) > 200

    # When it is replayed from its events alone
    # Then the view equals the live one at every version
    replayed: ServiceContract | None = None
    for event in events:
        replayed = event.mutate(replayed)
        assert replayed is not None and replayed.conflicts == views[event.originator_version]

    # When a snapshot taken at some version is restored and the rest applied
    cut = data.draw(st.integers(1, len(events) - 1), label="snapshot version")
    restored: Any = None
    for event in events[:cut]:
        restored = event.mutate(restored)
    restored._conflict_tracker()  # the derived indices exist, and must not be stored
    snapshot = ServiceContract.Snapshot.take(restored)
    assert "_tracker" not in snapshot.state
    restored = snapshot.mutate(None)
    for event in events[cut:]:
        restored = event.mutate(restored)
        assert restored.conflicts == views[event.originator_version]

    # When a deep copy taken at some version goes on beside its original
    cut = data.draw(st.integers(1, len(events) - 1), label="copy version")
    original: Any = None
    for event in events[:cut]:
        original = event.mutate(original)
    original._conflict_tracker()
    copied = copy.deepcopy(original)
    assert vars(copied)["_tracker"] is not vars(original)["_tracker"]
    for event in events[cut:]:
        copied = event.mutate(copied)
        original = event.mutate(original)
        assert copied.conflicts == original.conflicts == views[event.originator_version]
