"""The replay timeline's fold: each step's top of the ranking is the full ranking's head."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from eventsourcing.application import project_aggregate

from domain.contract import ServiceContract
from domain.directives import DirectivePatch
from domain.shanghai_calendar import shanghai_date
from workflows.replay import fold_steps, ranking_of

from .givens import LOW_INCOME_VISITS, WEEKLY_REPORT, actor_of, moment


@pytest.mark.parametrize("profile", [None, "client_first"])
def test_every_step_shows_the_head_of_the_ranking_replayed_at_that_version(
    active_contract: ServiceContract, issue: Callable[..., str], profile: str | None,
) -> None:
    # Given the youth contract: a weekly report, the bureau's visits due 29 June, a second
    # report, an amendment on another day (urgency moves) and a withdrawal
    contract = active_contract
    street = issue(contract, "haichuang-street", WEEKLY_REPORT, name="海幢街周报")
    issue(contract, "haizhu-civil-affairs", LOW_INCOME_VISITS, name="民政走访",
          at=moment("2008-06-03"))
    issue(contract, "chigang-street", {**WEEKLY_REPORT, "people_affected": 80},
          name="赤岗街周报", at=moment("2008-06-20"))
    contract.amend_directive(street, DirectivePatch(people_affected=100),
                             actor=actor_of("haichuang-street"), at=moment("2008-06-25"))
    contract.withdraw_directive(street, actor=actor_of("haichuang-street"),
                                at=moment("2008-06-26"))
    events = contract.collect_events()

    # When the events are folded into a timeline
    steps = list(fold_steps(events, profile=profile))

    # Then at every step the top 3 are the head of the ranking of the state replayed to
    # that version, on that event's Shanghai date, and top_before is the previous top
    state: Any = None
    previous: list[dict[str, Any]] = []
    for event, step in zip(events, steps, strict=True):
        state = project_aggregate(state, [event])
        expected = ranking_of(state, shanghai_date(event.timestamp), profile)[:3]
        assert [(e["directive_id"], e["rank"], e["score"]) for e in step.top_after] == [
            (e["directive_id"], e["rank"], e["score"]) for e in expected]
        assert step.top_before == previous
        previous = step.top_after
    assert [s.version for s in steps] == list(range(1, 8))
