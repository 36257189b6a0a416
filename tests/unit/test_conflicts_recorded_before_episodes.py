"""Data recorded under the first conflict fold still loads and replays (issue 10).

Before episodes, a conflict's id was the uuid5 of its kind and member set, and
decisions and escalations name conflicts by that id.  Events are not rewritten:
the fold finds the episode whose members give that old id.  A snapshot taken
under an earlier fold is marked stale when it is loaded (``class_version`` 1,
and 2, whose conflict details name no directive's summary), and the application
loads such a contract from its events instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from domain.conflict_records import legacy_id
from domain.contract import ServiceContract

from .givens import actor_of, moment

BUREAU = "haizhu-civil-affairs"
LATE = {"subject": "youth_zone.closing_time", "value": "21:00", "summary": "开到晚上九点",
        "basis": "purchaser_request", "hours_per_week": 10}
EARLY = {**LATE, "value": "17:30", "summary": "五点半关门"}


def test_a_decision_and_an_escalation_recorded_with_the_old_id_find_their_episode(
    active_contract: ServiceContract, issue: Callable[..., str],
) -> None:
    # Given a contradiction, and an escalation and a decision recorded as the first fold
    # recorded them: naming the conflict by the uuid5 of its kind and members
    late = issue(active_contract, "haichuang-street", LATE, name="late")
    early = issue(active_contract, "chigang-street", EARLY, name="early")
    [episode] = active_contract.conflicts.values()
    old_id = legacy_id("contradiction", [late, early])
    assert old_id != episode["id"]
    active_contract._record(ServiceContract.ConflictEscalated, actor=actor_of("qichuang"),
                            at=moment("2008-06-03"), data={
                                "conflict_id": old_id, "from_level": 0, "to_level": 1,
                                "reason": "协商无果"})
    active_contract._record(ServiceContract.ConflictResolved, actor=actor_of(BUREAU),
                            at=moment("2008-06-04"), data={
                                "conflict_id": old_id, "outcome": "upheld",
                                "upheld": [early], "overridden": [late],
                                "rationale": "以五点半为准", "resolver": BUREAU,
                                "resolver_level": 2, "level": 1})
    events = list(active_contract.collect_events())

    # When the history is replayed
    replayed: Any = None
    for event in events:
        replayed = event.mutate(replayed)

    # Then the episode was escalated and resolved, and the overridden directive left
    record = replayed.conflicts[episode["id"]]
    assert (record["status"], record["level"]) == ("resolved", 1)
    assert record["resolution"]["outcome"] == "upheld"
    assert replayed.directives[late]["status"] == "overridden"
    assert replayed.directives[late]["overridden_by"] == episode["id"]
    assert replayed.conflicts == active_contract.conflicts


@pytest.mark.parametrize("version", [None, 2], ids=["first fold", "details without summaries"])
def test_a_snapshot_of_an_earlier_fold_is_marked_stale_when_loaded(
    active_contract: ServiceContract, issue: Callable[..., str], version: int | None,
) -> None:
    # Given a snapshot as an earlier fold wrote it: no class_version in its state (the
    # first), or 2
    issue(active_contract, "haichuang-street", LATE, name="late")
    snapshot = ServiceContract.Snapshot.take(active_contract)
    state = dict(snapshot.state)
    assert state.pop("class_version") == 3
    if version is not None:
        state["class_version"] = version
    old = type(snapshot)(originator_id=snapshot.originator_id,
                         originator_version=snapshot.originator_version,
                         timestamp=snapshot.timestamp, topic=snapshot.topic, state=state)

    # When each is loaded
    # Then the old one is marked stale (the application reloads it from events),
    # the new one is not
    assert vars(old.mutate(None)).get("stale_conflicts") is True
    assert "stale_conflicts" not in vars(snapshot.mutate(None))
