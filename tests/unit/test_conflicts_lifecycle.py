"""The conflict lifecycle fold: conflicts open, stay open, dissolve, and open again."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from domain.conflict_view import advance_conflicts, fold_history, listed
from domain.conflicts import Detection, detect_conflicts
from domain.errors import ValidationFailed

from .directive_givens import contract_terms, directive
from .givens import moment

STREET = directive("street", "haichuang-street", value={"format": "street-template-v2"})
BUREAU = directive("bureau", "haizhu-civil-affairs", value={"format": "bureau-statistics-form"})
CHIGANG = directive("chigang", "chigang-street", value={"format": "street-template-v2"})


def detected(*directives: dict[str, Any]) -> list[Detection]:
    return detect_conflicts(contract_terms(), list(directives))


def test_a_new_conflict_opens_at_level_zero_due_after_the_sla() -> None:
    # Given an empty view, and at version 5 (2 June 2008, 09:00 Guangzhou) a contradiction
    at = moment("2008-06-02")

    # When the fold runs with a 72-hour SLA
    view = advance_conflicts({}, detected(STREET, BUREAU), version=5, at=at, sla_hours=72)

    # Then it is open at version 5, level 0, due 5 June 09:00 (2 June + 72 h)
    [conflict] = view.values()
    assert conflict["status"] == "open"
    assert conflict["level"] == 0
    assert conflict["opened_version"] == 5
    assert conflict["opened_at"] == "2008-06-02T09:00:00+08:00"
    assert conflict["due"] == "2008-06-05T09:00:00+08:00"
    assert set(conflict) >= {"id", "kind", "members", "explanation", "status", "level",
                             "opened_version", "opened_at", "due", "details"}


def test_fractional_sla_hours_are_honoured() -> None:
    # Given an SLA of 1.5 hours
    at = moment("2008-06-02")

    # When a conflict opens
    [conflict] = advance_conflicts({}, detected(STREET, BUREAU), version=5, at=at,
                                   sla_hours=1.5).values()

    # Then it is due at 10:30
    assert datetime.fromisoformat(conflict["due"]) == at + timedelta(hours=1, minutes=30)


def test_a_conflict_still_detected_keeps_its_opening_and_level() -> None:
    # Given the contradiction opened at version 5 and escalated by hand to level 1
    view = advance_conflicts({}, detected(STREET, BUREAU), version=5,
                             at=moment("2008-06-02"), sla_hours=72)
    [conflict_id] = view
    view[conflict_id] = {**view[conflict_id], "level": 1, "due": "2008-06-08T09:00:00+08:00"}

    # When version 6 (an unrelated event) is folded
    later = advance_conflicts(view, detected(STREET, BUREAU), version=6,
                              at=moment("2008-06-03"), sla_hours=72)

    # Then nothing of its lifecycle changed
    assert later == view


def test_a_conflict_no_longer_detected_dissolves_at_that_version() -> None:
    # Given the contradiction open since version 5
    view = advance_conflicts({}, detected(STREET, BUREAU), version=5,
                             at=moment("2008-06-02"), sla_hours=72)

    # When 民政局 withdraws at version 7
    after = advance_conflicts(view, detected(STREET), version=7, at=moment("2008-06-04"),
                              sla_hours=72)

    # Then it dissolved at version 7 and still says when it opened
    [conflict] = after.values()
    assert conflict["status"] == "dissolved"
    assert conflict["dissolved_version"] == 7
    assert conflict["dissolved_at"] == "2008-06-04T09:00:00+08:00"
    assert conflict["opened_version"] == 5


def test_a_new_member_set_is_a_new_conflict() -> None:
    # Given the street/bureau contradiction open since version 5
    view = advance_conflicts({}, detected(STREET, BUREAU), version=5,
                             at=moment("2008-06-02"), sla_hours=72)

    # When 赤岗街道 joins with the street template at version 6
    after = advance_conflicts(view, detected(STREET, BUREAU, CHIGANG), version=6,
                              at=moment("2008-06-03"), sla_hours=72)

    # Then the old contradiction dissolved; a three-member one and a duplicate opened at 6
    by_status = sorted((c["status"], c["kind"], len(c["members"]), c["opened_version"])
                       for c in after.values())
    assert by_status == [
        ("dissolved", "contradiction", 2, 5),
        ("open", "contradiction", 3, 6),
        ("open", "duplicate", 2, 6),
    ]


def test_a_resolved_conflict_stays_resolved() -> None:
    # Given the contradiction, resolved (by a later workflow) while both directives stand
    view = advance_conflicts({}, detected(STREET, BUREAU), version=5,
                             at=moment("2008-06-02"), sla_hours=72)
    [conflict_id] = view
    view[conflict_id] = {**view[conflict_id], "status": "resolved"}

    # When later versions are folded, with and without it detected
    kept = advance_conflicts(view, detected(STREET, BUREAU), version=6,
                             at=moment("2008-06-03"), sla_hours=72)
    gone = advance_conflicts(view, detected(STREET), version=6,
                             at=moment("2008-06-03"), sla_hours=72)

    # Then it is resolved either way
    assert kept[conflict_id]["status"] == gone[conflict_id]["status"] == "resolved"


def test_a_dissolved_conflict_detected_again_opens_afresh() -> None:
    # Given the contradiction opened at 5 and dissolved at 7 (a value amended away)
    steps = [
        (5, moment("2008-06-02"), detected(STREET, BUREAU)),
        (7, moment("2008-06-04"), detected(STREET)),
    ]
    view = fold_history(steps, sla_hours=72)

    # When the amendment is reverted at version 9
    again = advance_conflicts(view, detected(STREET, BUREAU), version=9,
                              at=moment("2008-06-10"), sla_hours=72)

    # Then it is open again from version 9, with a new deadline and no dissolution
    [conflict] = again.values()
    assert (conflict["status"], conflict["opened_version"], conflict["dissolved_version"]) == (
        "open", 9, None)
    assert conflict["due"] == "2008-06-13T09:00:00+08:00"


def test_folding_the_same_version_twice_changes_nothing() -> None:
    # Given a view after version 6
    view = fold_history([
        (5, moment("2008-06-02"), detected(STREET, BUREAU)),
        (6, moment("2008-06-03"), detected(STREET, BUREAU, CHIGANG)),
    ], sla_hours=72)

    # When version 6 is delivered again
    again = advance_conflicts(view, detected(STREET, BUREAU, CHIGANG), version=6,
                              at=moment("2008-06-03"), sla_hours=72)

    # Then the view is the same
    assert again == view


def test_listing_shows_open_and_resolved_unless_asked() -> None:
    # Given one dissolved and two open conflicts
    view = fold_history([
        (5, moment("2008-06-02"), detected(STREET, BUREAU)),
        (6, moment("2008-06-03"), detected(STREET, BUREAU, CHIGANG)),
    ], sla_hours=72)

    # When / Then
    assert {c["status"] for c in listed(view)} == {"open"}
    assert len(listed(view)) == 2
    assert [c["status"] for c in listed(view, "dissolved")] == ["dissolved"]
    assert len(listed(view, "all")) == 3
    assert [c["opened_version"] for c in listed(view, "all")] == [5, 6, 6]
    with pytest.raises(ValidationFailed):
        listed(view, "closed")
