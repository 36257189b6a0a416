"""The conflict view the ServiceContract folds as it applies its events.

Each directive event folds only the localities it touched (its subjects, the
directive itself, the runs of weeks whose load changed).  The definition is
``fold_history`` over full detection at every version; these tests hold the
aggregate to it, after every event, across snapshots and deep copies.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.chain import ChainedAggregate
from domain.conflict_view import ConflictView, fold_history
from domain.conflicts import detect_conflicts
from domain.contract import ServiceContract
from domain.values import Basis, DirectiveFields, DirectivePatch

from .givens import ADMIN_ACTOR, GUANGZHOU, actor_of, directive_id, moment
from .test_views_property import PERIOD_DAYS, day

SLA_HOURS = 72.0  # the Haizhu contract's resolution_sla_hours

ISSUERS = ["haichuang-street", "chigang-street", "haizhu-civil-affairs", "haichuang-residents"]
DIRECTIVE_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "subject": st.sampled_from(["reporting.weekly", "center.closing_time", "focus.client_mix"]),
    "value": st.sampled_from([None, "17:30", "20:00", {"format": "表格", "copies": 2},
                              {"copies": 2.0, "format": "表格"}, 1, True]),
    "basis": st.sampled_from([basis.value for basis in Basis]),
    "hours_per_week": st.sampled_from([0, 5, 30, 60, 90.5]),
    "window": st.integers(0, PERIOD_DAYS).flatmap(
        lambda first: st.integers(first, min(PERIOD_DAYS, first + 90)).map(
            lambda last: {"from": day(first), "to": day(last)})),
    "target_groups": st.sampled_from([[], ["youth"], ["elderly"]]),
    "locations": st.sampled_from([[], ["海幢街"], ["逢源街"]]),
    "tags": st.sampled_from([[], ["personal_data_disclosure"],
                             ["personal_data_disclosure", "consent_obtained"]]),
    "summary": st.sampled_from(["生成的指令", "改过的指令"]),
}

# ``draft_contract`` is a factory, safe to share between examples; histories are long by design.
PROPERTY_SETTINGS = settings(
    max_examples=10, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                           HealthCheck.data_too_large, HealthCheck.large_base_example],
)


def at(version: int) -> datetime:
    return datetime(2008, 3, 3, 9, tzinfo=GUANGZHOU) + timedelta(hours=3 * version)


def full_detection_view(contract: ServiceContract, previous: ConflictView) -> ConflictView:
    """The definition: fold the full detection over this version's directives."""
    found = detect_conflicts(contract.terms, contract.directives.values())
    return fold_history([(contract.version, contract.modified_on, found)],
                        sla_hours=SLA_HOURS, start=previous)


@st.composite
def operations(draw: st.DrawFn, count: int) -> list[tuple[str, Any, Any]]:
    """Issues, amendments and withdrawals, each valid when it happens."""
    found: list[tuple[str, Any, Any]] = []
    active: list[str] = []
    issued = 0
    for _ in range(count):
        move = draw(st.sampled_from(["issue", "issue", "amend", "withdraw"]))
        if move == "issue" or not active:
            body = {name: draw(strategy) for name, strategy in DIRECTIVE_FIELDS.items()}
            name = f"生成-{issued}"
            issued += 1
            found.append(("issue", name, (draw(st.sampled_from(ISSUERS)), body)))
            active.append(str(directive_id(name)))
        elif move == "amend":
            changed = draw(st.sets(st.sampled_from(sorted(DIRECTIVE_FIELDS)),
                                   min_size=1, max_size=3))
            found.append(("amend", draw(st.sampled_from(active)),
                          {name: draw(DIRECTIVE_FIELDS[name]) for name in sorted(changed)}))
        else:
            target = draw(st.sampled_from(active))
            active.remove(target)
            found.append(("withdraw", target, None))
    return found


def perform(contract: ServiceContract, operation: tuple[str, Any, Any]) -> None:
    move, target, body = operation
    when = at(contract.version + 1)
    if move == "issue":
        issuer, fields = body
        contract.issue_directive(DirectiveFields.model_validate(fields),
                                 directive_id=directive_id(target), issuer=issuer,
                                 actor=actor_of(issuer), at=when)
    elif move == "amend":
        contract.amend_directive(target, DirectivePatch.model_validate(body),
                                 actor=ADMIN_ACTOR, at=when)
    else:
        contract.withdraw_directive(target, actor=ADMIN_ACTOR, at=when)


def recorded_history(
    draft: Callable[..., ServiceContract], history: list[tuple[str, Any, Any]],
) -> tuple[list[ChainedAggregate.Event], list[ConflictView]]:
    """Run the commands; answer the events and the defined view after each of them."""
    contract = draft()
    contract.transition("activate", actor=ADMIN_ACTOR, at=moment("2008-03-03"))
    expected: list[ConflictView] = [{}, {}]
    for operation in history:
        perform(contract, operation)
        expected.append(full_detection_view(contract, expected[-1]))
        assert contract.conflicts == expected[-1], f"at version {contract.version}"
    return list(contract.collect_events()), expected


def replay(events: list[ChainedAggregate.Event],
           contract: ServiceContract | None = None) -> ServiceContract | None:
    for event in events:
        contract = event.mutate(contract)
    return contract


# --- the fold equals the definition at every version ----------------------------


@PROPERTY_SETTINGS
@given(history=operations(220), data=st.data())
def test_the_folded_view_equals_full_detection_at_every_version_even_after_snapshot_or_copy(
    draft_contract: Callable[..., ServiceContract],
    history: list[tuple[str, Any, Any]],
    data: st.DataObject,
) -> None:
    # Given a contract that lived through more than 200 random directive events,
    # whose conflicts equalled the full detection folded at every version as it went
    events, expected = recorded_history(draft_contract, history)

    # When it is replayed from its events alone
    # Then its conflicts equal the definition after each event
    contract: ServiceContract | None = None
    for index, event in enumerate(events):
        contract = event.mutate(contract)
        assert contract is not None and contract.conflicts == expected[index]

    # When a snapshot taken at some version is restored and the rest applied
    cut = data.draw(st.integers(1, len(events) - 1), label="snapshot version")
    at_cut = replay(events[:cut])
    assert at_cut is not None
    at_cut._conflict_tracker()  # the derived indices exist, and must not be stored
    snapshot = ServiceContract.Snapshot.take(at_cut)
    assert "_tracker" not in snapshot.state
    restored = snapshot.mutate(None)
    # Then it equals the definition at every later version too
    for event in events[cut:]:
        restored = event.mutate(restored)
        assert restored.conflicts == expected[event.originator_version - 1]

    # When a deep copy taken at some version goes on
    cut = data.draw(st.integers(1, len(events) - 1), label="copy version")
    original = replay(events[:cut])
    original._conflict_tracker()  # type: ignore[union-attr]
    copied = copy.deepcopy(original)
    # (the copy gets a tracker of its own, never the original's)
    assert vars(copied)["_tracker"] is not vars(original)["_tracker"]  # type: ignore[arg-type]
    # Then the copy and the original, each going on, both equal the definition
    for event in events[cut:]:
        copied = event.mutate(copied)
        original = event.mutate(original)
        assert copied.conflicts == expected[event.originator_version - 1]
        assert original is not None and original.conflicts == copied.conflicts


# --- over-capacity runs join and split -------------------------------------------


def hours_in(start: str, end: str, hours: float) -> dict[str, Any]:
    return {"subject": f"outreach.w{start.replace('-', '_')}", "summary": "加班走访",
            "basis": "contract", "hours_per_week": hours, "window": {"from": start, "to": end}}


def open_runs(contract: ServiceContract) -> dict[str, list[str]]:
    return {c["id"]: c["details"]["weeks"] for c in contract.conflicts.values()
            if c["kind"] == "over_capacity" and c["status"] == "open"}


def test_a_directive_bridging_two_over_capacity_runs_joins_them_and_withdrawing_it_splits_them(
    active_contract: ServiceContract, issue: Callable[..., str],
) -> None:
    # Given 160 h a week free; 100 h demanded all June (W23–W26), and 80 h more in
    # W23 and in W26: two runs of one week each, 20 h over
    issue(active_contract, "haizhu-civil-affairs", hours_in("2008-06-02", "2008-06-29", 100),
          name="june", at=moment("2008-06-02"))
    issue(active_contract, "haichuang-street", hours_in("2008-06-02", "2008-06-08", 80),
          name="w23", at=moment("2008-06-02", 10))
    issue(active_contract, "chigang-street", hours_in("2008-06-23", "2008-06-29", 80),
          name="w26", at=moment("2008-06-02", 11))
    assert sorted(open_runs(active_contract).values()) == [["2008-W23"], ["2008-W26"]]
    before = set(open_runs(active_contract))

    # When 80 h more are demanded in W24–W25
    issue(active_contract, "haizhu-youth-league", hours_in("2008-06-09", "2008-06-22", 80),
          name="bridge", at=moment("2008-06-03"))

    # Then one run W23–W26 is open and the two short runs dissolved at this version
    assert list(open_runs(active_contract).values()) == [
        ["2008-W23", "2008-W24", "2008-W25", "2008-W26"]]
    joined = next(iter(open_runs(active_contract)))
    for short in before:
        assert active_contract.conflicts[short]["status"] == "dissolved"
        assert active_contract.conflicts[short]["dissolved_version"] == active_contract.version

    # When the bridging directive is withdrawn
    active_contract.withdraw_directive(str(directive_id("bridge")), actor=ADMIN_ACTOR,
                                       at=moment("2008-06-04"))

    # Then the long run dissolves and the two short runs open again, afresh
    assert active_contract.conflicts[joined]["status"] == "dissolved"
    assert set(open_runs(active_contract)) == before
    for short in before:
        assert active_contract.conflicts[short]["opened_version"] == active_contract.version
        assert active_contract.conflicts[short]["opened_at"] == moment("2008-06-04").isoformat()

    # And the whole history equals full detection folded version by version
    events = list(active_contract.collect_events())
    view: ConflictView = {}
    replayed: ServiceContract | None = None
    for event in events:
        replayed = event.mutate(replayed)
        assert replayed is not None
        view = fold_history(
            [(event.originator_version, event.timestamp,
              detect_conflicts(replayed.terms, replayed.directives.values()))],
            sla_hours=SLA_HOURS, start=view)
    assert view == active_contract.conflicts


def test_a_drafted_contract_has_no_conflicts(
    draft_contract: Callable[..., ServiceContract],
) -> None:
    # Given / When a contract is drafted
    contract = draft_contract()

    # Then its conflict view is empty
    assert contract.conflicts == {}


def test_an_amendment_no_detector_reads_changes_no_conflict(
    active_contract: ServiceContract, issue: Callable[..., str],
) -> None:
    # Given two offices contradicting each other on the weekly report
    first = issue(active_contract, "haichuang-street",
                  {"subject": "reporting.weekly", "value": "A", "summary": "周报 A",
                   "basis": "contract"}, name="a")
    issue(active_contract, "chigang-street",
          {"subject": "reporting.weekly", "value": "B", "summary": "周报 B",
           "basis": "contract"}, name="b")
    before = copy.deepcopy(active_contract.conflicts)
    assert [c["kind"] for c in before.values()] == ["contradiction"]

    # When one of them only rewords its summary
    active_contract.amend_directive(first, DirectivePatch(summary="周报 A（改）"),
                                    actor=ADMIN_ACTOR, at=moment("2008-06-05"))

    # Then the conflict view is unchanged
    assert active_contract.conflicts == before
