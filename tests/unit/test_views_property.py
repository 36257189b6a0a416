"""Properties of the conflict and priority views, over generated directives and histories.

1. The views are functions of the contract's state: the order in which the
   state hands its directives over does not matter.
2. Independent directives arriving in another order give the same conflicts
   (the same ids, members and details) and the same tiers and scores.
3. Folding version by version as events arrive (the live projection) equals
   folding from scratch over states rebuilt from the history (replay), at
   every version; resuming from a stored view and repeating a version change
   nothing.
"""

from __future__ import annotations

import copy
from datetime import date, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.conflict_view import ConflictView, advance_conflicts, fold_history
from domain.conflicts import detect_conflicts
from domain.priorities import priority_view
from domain.values import Basis

from .directive_givens import contract_terms
from .givens import GUANGZHOU

TERMS = contract_terms()
PERIOD_START = date(2008, 3, 3)
PERIOD_DAYS = 363  # 2008-03-03 … 2009-03-01
REFERENCE = date(2008, 6, 1)
SLA_HOURS = 72.0

PROPERTY_SETTINGS = settings(max_examples=50, deadline=None,
                             suppress_health_check=[HealthCheck.too_slow])


def day(offset: int) -> str:
    return (PERIOD_START + timedelta(days=offset)).isoformat()


@st.composite
def windows(draw: st.DrawFn) -> dict[str, str]:
    first = draw(st.integers(0, PERIOD_DAYS))
    last = draw(st.integers(first, min(PERIOD_DAYS, first + 120)))
    return {"from": day(first), "to": day(last)}


FIELDS = {
    "issuer": st.sampled_from(["haichuang-street", "chigang-street", "haizhu-civil-affairs",
                               "haichuang-residents"]),
    "subject": st.sampled_from(["reporting.weekly", "center.closing_time", "focus.client_mix"]),
    "value": st.sampled_from([None, "17:30", "20:00", {"format": "表格", "copies": 2},
                              {"copies": 2.0, "format": "表格"}, {"format": "bureau"}]),
    "basis": st.sampled_from([basis.value for basis in Basis]),
    "hours_per_week": st.sampled_from([0, 0.1, 5, 12.5, 40, 90]),
    "window": windows(),
    "due": st.one_of(st.none(), st.integers(0, PERIOD_DAYS).map(day)),
    "people_affected": st.integers(0, 200),
    "vulnerability": st.sampled_from([0, 0.3, 0.8, 1]),
    "target_groups": st.sampled_from([[], ["youth"], ["elderly"]]),
    "locations": st.sampled_from([[], ["海幢街"], ["逢源街"]]),
    "indicator": st.sampled_from([None, "cases", "home_care_visits"]),
    "tags": st.sampled_from([[], ["personal_data_disclosure"],
                             ["personal_data_disclosure", "consent_obtained"]]),
}
CHANGEABLE = ["value", "window", "hours_per_week", "tags", "target_groups", "subject"]


@st.composite
def directive_bodies(draw: st.DrawFn) -> dict[str, Any]:
    body = {name: draw(strategy) for name, strategy in FIELDS.items()}
    body["summary"] = "生成的指令"
    return body


def issued(body: dict[str, Any], number: int, version: int) -> dict[str, Any]:
    return {**body, "id": f"d{number:03d}", "status": "active", "issued_version": version}


def detected_view(found: list[Any]) -> list[dict[str, Any]]:
    return [conflict.as_dict() for conflict in found]


def without_lifecycle(view: ConflictView) -> dict[str, dict[str, Any]]:
    keep = ("kind", "members", "explanation", "details")
    return {key: {name: c[name] for name in keep}
            for key, c in view.items() if c["status"] == "open"}


def by_directive(view: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    return {e["directive_id"]: (e["tier"], e["score"], e["components"])
            for e in view["priorities"]}


# --- 1. the order the state hands directives over ------------------------------


@PROPERTY_SETTINGS
@given(bodies=st.lists(directive_bodies(), min_size=1, max_size=12), data=st.data())
def test_views_do_not_depend_on_the_order_directives_are_listed(
    bodies: list[dict[str, Any]], data: st.DataObject,
) -> None:
    # Given a contract state with these directives, and the same state listed in another order
    directives = [issued(body, n, n + 2) for n, body in enumerate(bodies)]
    shuffled = data.draw(st.permutations(directives))

    # When both are detected and ranked
    # Then the views are equal
    assert detected_view(detect_conflicts(TERMS, shuffled)) == detected_view(
        detect_conflicts(TERMS, directives))
    assert priority_view(TERMS, shuffled, REFERENCE) == priority_view(
        TERMS, directives, REFERENCE)


# --- 2. independent directives arriving in another order ----------------------


def fold_arrivals(bodies: list[dict[str, Any]], order: list[int]) -> tuple[ConflictView,
                                                                          list[dict[str, Any]]]:
    """Issue the bodies in ``order``, one version each, folding the conflict view as we go."""
    state: list[dict[str, Any]] = []
    view: ConflictView = {}
    start = datetime(2008, 6, 2, 9, tzinfo=GUANGZHOU)
    for step, number in enumerate(order):
        version = step + 2
        state.append(issued(bodies[number], number, version))
        view = advance_conflicts(view, detect_conflicts(TERMS, state), version=version,
                                 at=start + timedelta(hours=step), sla_hours=SLA_HOURS)
    return view, state


@PROPERTY_SETTINGS
@given(bodies=st.lists(directive_bodies(), min_size=1, max_size=10), data=st.data())
def test_independent_directives_arriving_in_another_order_give_the_same_views(
    bodies: list[dict[str, Any]], data: st.DataObject,
) -> None:
    # Given the same directives issued in two different orders (so issue order differs)
    order = list(range(len(bodies)))
    other = data.draw(st.permutations(order))

    # When each history is folded, version by version
    view, state = fold_arrivals(bodies, order)
    other_view, other_state = fold_arrivals(bodies, other)

    # Then the open conflicts are the same (same ids, members, details, explanations) …
    assert without_lifecycle(view) == without_lifecycle(other_view)
    # … and every directive has the same tier, score and components
    assert by_directive(priority_view(TERMS, state, REFERENCE)) == by_directive(
        priority_view(TERMS, other_state, REFERENCE))


# --- 3. incremental folding equals folding from scratch -----------------------


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    """Issues, amendments and withdrawals, each valid when it happens."""
    operations: list[tuple[Any, ...]] = []
    active: list[str] = []
    for number in range(draw(st.integers(1, 8))):
        body = draw(directive_bodies())
        operations.append(("issue", number, body))
        active.append(f"d{number:03d}")
        for _ in range(draw(st.integers(0, 2))):
            if not active:
                break
            target = draw(st.sampled_from(active))
            if draw(st.booleans()):
                changed = draw(st.sets(st.sampled_from(CHANGEABLE), min_size=1, max_size=3))
                operations.append(("amend", target,
                                   {name: draw(FIELDS[name]) for name in sorted(changed)}))
            else:
                operations.append(("withdraw", target))
                active.remove(target)
    return operations


def apply(state: dict[str, dict[str, Any]], operation: tuple[Any, ...], version: int) -> None:
    kind = operation[0]
    if kind == "issue":
        _, number, body = operation
        directive = issued(body, number, version)
        state[directive["id"]] = directive
    elif kind == "amend":
        _, target, changes = operation
        state[target] = {**state[target], **changes, "amended_version": version}
    else:
        _, target = operation
        state[target] = {**state[target], "status": "withdrawn"}


def moment_of(version: int) -> datetime:
    return datetime(2008, 6, 2, 9, tzinfo=GUANGZHOU) + timedelta(hours=5 * version)


def replayed_state(history: list[tuple[Any, ...]], upto: int) -> dict[str, dict[str, Any]]:
    """The state rebuilt from nothing by applying the first ``upto`` operations."""
    state: dict[str, dict[str, Any]] = {}
    for index, operation in enumerate(history[:upto]):
        apply(state, copy.deepcopy(operation), index + 2)
    return state


@PROPERTY_SETTINGS
@given(history=histories(), data=st.data())
def test_incremental_folding_equals_folding_from_scratch(
    history: list[tuple[Any, ...]], data: st.DataObject,
) -> None:
    # Given a live projection that folds each version as its event arrives
    live_state: dict[str, dict[str, Any]] = {}
    live: ConflictView = {}
    live_views: list[ConflictView] = []
    live_priorities: list[dict[str, Any]] = []
    for index, operation in enumerate(history):
        version = index + 2
        apply(live_state, operation, version)
        live = advance_conflicts(live, detect_conflicts(TERMS, live_state.values()),
                                 version=version, at=moment_of(version), sla_hours=SLA_HOURS)
        live_views.append(live)
        live_priorities.append(priority_view(TERMS, live_state.values(), REFERENCE))

    # When every version is replayed from scratch
    steps = []
    for upto in range(1, len(history) + 1):
        version = upto + 1
        state = replayed_state(history, upto)
        steps.append((version, moment_of(version), detect_conflicts(TERMS, state.values())))

        # Then the replayed views at that version equal the live ones
        assert fold_history(steps, sla_hours=SLA_HOURS) == live_views[upto - 1]
        assert priority_view(TERMS, state.values(), REFERENCE) == live_priorities[upto - 1]

    # And a projection resumed from its stored view at any version ends where the live one did
    stored = data.draw(st.integers(0, len(history) - 1))
    resumed = fold_history(steps[stored + 1:], sla_hours=SLA_HOURS, start=live_views[stored])
    assert resumed == live_views[-1]

    # And delivering the last version twice changes nothing
    version, at, found = steps[-1]
    assert advance_conflicts(live_views[-1], found, version=version, at=at,
                             sla_hours=SLA_HOURS) == live_views[-1]
