"""The diff between two versions of a contract: directives, conflicts, ranks and terms."""

from __future__ import annotations

from typing import Any

from domain.conflict_tracker import ConflictTracker
from domain.diff import ContractAt, contract_diff

from .directive_givens import contract_terms, directive
from .givens import moment

STREET = directive("海幢街周报", "haichuang-street", value={"format": "street-template-v2"},
                   summary="每周按街道模板报送工作数据")
CHIGANG = directive("赤岗街周报", "chigang-street", value={"format": "street-template-v2"},
                    summary="每周按街道模板报送工作数据")
BUREAU = directive("民政周报", "haizhu-civil-affairs", value={"format": "bureau-statistics-form"},
                   summary="每周按民政统计报表报送", basis="supervisor_request")
ETHICS = directive("伦理培训", "gz-swa", subject="training.ethics", value={"hours": 2},
                   summary="全体社工参加职业伦理培训，每人每周2小时",
                   basis="professional_standard")

NO_CHANGES: dict[str, Any] = {
    "directives": {"added": [], "changed": [], "withdrawn": [], "overridden": []},
    "conflicts": {"opened": [], "updated": [], "resolved": [], "dissolved": [], "escalated": []},
    "ranks": [],
    "terms": [],
}


def at(version: int, *directives: dict[str, Any], conflicts: dict[str, Any] | None = None,
       ranks: dict[str, int] | None = None, **terms: Any) -> ContractAt:
    """The youth contract at ``version`` with these directives, conflicts and ranks."""
    return ContractAt(version=version, status="active", terms=contract_terms(**terms),
                      directives={d["id"]: d for d in directives},
                      conflicts=conflicts or {}, ranks=ranks or {})


def conflicts_of(*directives: dict[str, Any], version: int,
                 previous: dict[str, Any] | None = None,
                 was: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    """The conflict view folded at ``version``, from ``previous`` over the directives ``was``,
    to these directives."""
    view = dict(previous or {})
    tracker = ConflictTracker("HZ-YOUTH-2008", contract_terms(), was, view)
    before = {d["id"]: d for d in was}
    tracker.directives_changed(view, [(before.get(d["id"]), d) for d in directives],
                               version=version, at=moment("2008-06-02"))
    return view


def ids(entries: list[dict[str, Any]]) -> list[str]:
    return [entry["id"] for entry in entries]


def test_a_version_compared_with_itself_changes_nothing() -> None:
    # Given the contract at version 5 with two street reports in conflict
    view = conflicts_of(STREET, CHIGANG, version=5)
    state = at(5, STREET, CHIGANG, conflicts=view, ranks={STREET["id"]: 1, CHIGANG["id"]: 2})

    # When it is diffed with itself
    diff = contract_diff(state, state)

    # Then nothing changed
    assert diff == {"from_version": 5, "to_version": 5, **NO_CHANGES}


def test_a_directive_issued_in_between_is_added_and_ranked_from_null() -> None:
    # Given version 4 with the street's report, and version 6 with the ethics training too,
    # which now ranks first (tier 3 before the street's tier 4)
    before = at(4, STREET, ranks={STREET["id"]: 1})
    after = at(6, STREET, ETHICS, ranks={ETHICS["id"]: 1, STREET["id"]: 2})

    # When they are diffed
    diff = contract_diff(before, after)

    # Then the training is added, with its Chinese summary, and both ranks moved
    assert ids(diff["directives"]["added"]) == [ETHICS["id"]]
    assert diff["directives"]["added"][0]["summary"] == "全体社工参加职业伦理培训，每人每周2小时"
    assert diff["directives"]["changed"] == []
    assert diff["ranks"] == [
        {"directive_id": ETHICS["id"], "from": None, "to": 1},
        {"directive_id": STREET["id"], "from": 1, "to": 2},
    ]


def test_an_amendment_lists_each_changed_field_from_and_to() -> None:
    # Given the bureau's report, later amended to fewer hours and a new summary
    amended = {**BUREAU, "hours_per_week": 6, "summary": "每两周按民政统计报表报送",
               "amended_version": 7}

    # When versions 5 and 7 are diffed
    diff = contract_diff(at(5, BUREAU), at(7, amended))

    # Then it is changed (not added), field by field; bookkeeping is not a change
    [changed] = diff["directives"]["changed"]
    assert changed["id"] == BUREAU["id"]
    assert changed["changes"] == {
        "summary": {"from": "每周按民政统计报表报送", "to": "每两周按民政统计报表报送"},
        "hours_per_week": {"from": 0, "to": 6},
    }
    assert diff["directives"]["added"] == []


def test_withdrawn_and_overridden_directives_are_listed_when_their_status_changed() -> None:
    # Given three reports at version 5; by version 9 chigang's was overridden and the
    # bureau's withdrawn; the street's was withdrawn already before version 5
    gone = {**STREET, "status": "withdrawn"}
    before = at(5, gone, CHIGANG, BUREAU)
    after = at(9, gone, {**CHIGANG, "status": "overridden"}, {**BUREAU, "status": "withdrawn"})

    # When they are diffed
    diff = contract_diff(before, after)

    # Then each change of status is listed once, and the old withdrawal not at all
    assert ids(diff["directives"]["withdrawn"]) == [BUREAU["id"]]
    assert ids(diff["directives"]["overridden"]) == [CHIGANG["id"]]
    assert diff["directives"]["changed"] == []


def test_a_directive_issued_and_withdrawn_in_between_is_added_and_withdrawn() -> None:
    # Given the ethics training issued and withdrawn between versions 3 and 8
    diff = contract_diff(at(3), at(8, {**ETHICS, "status": "withdrawn"}))

    # Then both are shown
    assert ids(diff["directives"]["added"]) == [ETHICS["id"]]
    assert ids(diff["directives"]["withdrawn"]) == [ETHICS["id"]]


def test_conflicts_opened_resolved_and_dissolved_in_between() -> None:
    # Given version 5: the street and chigang demand the same report (a duplicate), and
    # the bureau another format (a contradiction among all three)
    five = conflicts_of(STREET, CHIGANG, BUREAU, version=5)
    duplicate = next(c for c in five.values() if c["kind"] == "duplicate")
    contradiction = next(c for c in five.values() if c["kind"] == "contradiction")

    # When by version 8 the duplicate was resolved by overriding chigang's report, so
    # chigang left the contradiction, which goes on between the street and the bureau
    overridden = {**CHIGANG, "status": "overridden"}
    eight = conflicts_of(STREET, overridden, BUREAU, version=8, previous={
        **five, duplicate["id"]: {**duplicate, "status": "resolved"}},
        was=(STREET, CHIGANG, BUREAU))
    diff = contract_diff(at(5, STREET, CHIGANG, BUREAU, conflicts=five),
                         at(8, STREET, overridden, BUREAU, conflicts=eight))

    # Then the diff tells that story: the same contradiction, updated, not a new one
    assert diff["conflicts"]["opened"] == []
    [updated] = diff["conflicts"]["updated"]
    assert updated["id"] == contradiction["id"]
    assert set(updated["members"]) == {STREET["id"], BUREAU["id"]}
    assert updated["member_changes"] == [{"version": 8, "joined": [], "left": [CHIGANG["id"]]}]
    assert ids(diff["conflicts"]["resolved"]) == [duplicate["id"]]
    assert diff["conflicts"]["dissolved"] == []
    assert diff["conflicts"]["escalated"] == []
    assert ids(diff["directives"]["overridden"]) == [CHIGANG["id"]]


def test_an_escalated_conflict_says_from_which_level_to_which() -> None:
    # Given a contradiction open at level 0 at version 5, at level 2 by version 9
    five = conflicts_of(STREET, BUREAU, version=5)
    [conflict_id] = five
    nine = {conflict_id: {**five[conflict_id], "level": 2}}

    # When diffed
    diff = contract_diff(at(5, STREET, BUREAU, conflicts=five),
                         at(9, STREET, BUREAU, conflicts=nine))

    # Then it rose from 0 to 2 and nothing else happened to it
    [escalated] = diff["conflicts"]["escalated"]
    assert (escalated["id"], escalated["from_level"], escalated["to_level"]) == (
        conflict_id, 0, 2)
    assert diff["conflicts"]["opened"] == []


def test_a_conflict_opened_and_escalated_in_between_rose_from_level_zero() -> None:
    # Given nothing at version 3 and, at version 9, a contradiction escalated to level 1
    nine = conflicts_of(STREET, BUREAU, version=6)
    [record] = nine.values()
    nine = {record["id"]: {**record, "level": 1}}

    # When diffed
    diff = contract_diff(at(3), at(9, STREET, BUREAU, conflicts=nine))

    # Then it is opened and escalated from 0 to 1
    assert ids(diff["conflicts"]["opened"]) == [record["id"]]
    [escalated] = diff["conflicts"]["escalated"]
    assert (escalated["from_level"], escalated["to_level"]) == (0, 1)


def test_a_conflict_that_dissolved_and_opened_again_is_opened_again() -> None:
    # Given the contradiction open at version 5, dissolved at 6 (the bureau withdrew),
    # opened again at 8 (a fresh matter)
    five = conflicts_of(STREET, BUREAU, version=5)
    withdrawn = {**BUREAU, "status": "withdrawn"}
    six = conflicts_of(STREET, withdrawn, version=6, previous=five, was=(STREET, BUREAU))
    eight = conflicts_of(STREET, BUREAU, version=8, previous=six, was=(STREET, withdrawn))

    # When 5 is diffed with 8, and 6 with 8
    across = contract_diff(at(5, STREET, BUREAU, conflicts=five),
                           at(8, STREET, BUREAU, conflicts=eight))
    after_dissolving = contract_diff(at(6, STREET, BUREAU, conflicts=six),
                                     at(8, STREET, BUREAU, conflicts=eight))

    # Then a new episode opened at version 8 in both; across, the first one dissolved
    assert [c["opened_version"] for c in across["conflicts"]["opened"]] == [8]
    assert [c["opened_version"] for c in after_dissolving["conflicts"]["opened"]] == [8]
    assert ids(across["conflicts"]["dissolved"]) == list(five)
    assert after_dissolving["conflicts"]["dissolved"] == []
    assert across["conflicts"]["opened"][0]["id"] not in five


def test_rank_changes_are_ordered_by_the_later_rank_unranked_last() -> None:
    # Given four directives whose ranking was reshuffled: one left the ranking, one came in
    a, b, c, d = "a-id", "b-id", "c-id", "d-id"
    before = at(5, ranks={a: 1, b: 2, c: 3})
    after = at(6, ranks={c: 1, a: 2, d: 3})

    # When diffed
    diff = contract_diff(before, after)

    # Then every move is listed, by the new rank, and b (now unranked) last
    assert diff["ranks"] == [
        {"directive_id": c, "from": 3, "to": 1},
        {"directive_id": a, "from": 1, "to": 2},
        {"directive_id": d, "from": None, "to": 3},
        {"directive_id": b, "from": 2, "to": None},
    ]


def test_a_policy_change_shows_in_the_terms() -> None:
    # Given the contract's policy changed to client_first between versions 2 and 3
    before = at(2, policy={"profile": "contract_first"})
    after = at(3, policy={"profile": "client_first"})

    # When diffed
    diff = contract_diff(before, after)

    # Then the terms list the policy, from and to
    assert diff["terms"] == [{"field": "policy", "from": {"profile": "contract_first"},
                              "to": {"profile": "client_first"}}]
