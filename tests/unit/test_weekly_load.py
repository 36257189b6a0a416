"""The weekly load keeps the members of the stretches it was asked about up to date.

``WeeklyLoad.involved`` remembers, for the last few stretches of weeks asked
about, which directives bear load there (in id order, and by hours for the
heaviest demands), and ``bear`` adds or drops the one directive that moved.
After any sequence of changes, what it remembers must be what a fresh look
over every directive bearing load finds.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.weekly_load import FREE, NONE, SHARED, WeeklyLoad
from domain.windows import period_span

TERMS: dict[str, Any] = {
    "period": {"start": "2008-03-03", "end": "2008-06-01"},  # 13 weeks
    "capacity": {"staff": 2, "hours_per_staff_week": 40, "committed_hours_per_week": 60},
}
PERIOD = period_span(TERMS)
FIRST, LAST = PERIOD.first_week, PERIOD.last_week

change = st.tuples(
    st.integers(0, 11),  # which directive
    st.integers(0, LAST - FIRST), st.integers(0, 5),  # first week, length
    st.sampled_from([0, 1_000_000, 5_000_000, 20_000_000]),  # micro-hours
    st.sampled_from([NONE, FREE, SHARED]),
    st.sampled_from(["a", "b"]),  # subject
)
stretch = st.integers(0, LAST - FIRST).flatmap(
    lambda start: st.integers(start, LAST - FIRST).map(
        lambda stop: (FIRST + start, FIRST + stop)))


def fresh(load: WeeklyLoad, first: int, last: int) -> tuple[list[str], list[tuple[str, int]]]:
    """The members of a stretch and its six heaviest demands, found over every bearing."""
    entries = [e for e in load.bearing.values() if e[1] <= last and first <= e[2]]
    heaviest = sorted(entries, key=lambda e: (-e[3], e[0]["id"]))[:6]
    return sorted(e[0]["id"] for e in entries), [(e[0]["id"], e[3]) for e in heaviest]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(change.map(lambda c: ("bear", c)),
                          stretch.map(lambda s: ("ask", s))), max_size=60))
def test_remembered_members_are_what_a_fresh_look_finds(steps: list[Any]) -> None:
    load = WeeklyLoad(TERMS, PERIOD)
    asked: set[tuple[int, int]] = set()
    for action, what in steps:
        if action == "bear":
            number, start, length, hours, mode, subject = what
            weeks = range(FIRST + start, min(FIRST + start + length, LAST) + 1)
            directive = {"id": f"d{number:02d}", "subject": subject}
            load.bear(directive, weeks, hours, mode)
        else:
            load.involved(*what)
            asked.add(what)
        for first, last in asked & set(load.runs):
            members = load.involved(first, last)
            ids, heaviest = fresh(load, first, last)
            assert members.ids == ids
            assert [(d["id"], hours) for d, hours in members.heaviest(6)] == heaviest


def by_definition(load: WeeklyLoad) -> tuple[list[int], list[int], list[int]]:
    """Each week's free hours, largest shared hours summed over subjects, and bearer count,
    worked out from every bearing as SPEC §4 defines the load."""
    weeks = range(FIRST, LAST + 1)
    free = [sum(e[3] for e in load.bearing.values() if e[4] == FREE and e[1] <= w <= e[2])
            for w in weeks]
    subjects = {e[0]["subject"] for e in load.bearing.values()}
    shared = [sum(max((e[3] for e in load.bearing.values() if e[4] == SHARED
                       and e[0]["subject"] == s and e[1] <= w <= e[2]), default=0)
                  for s in subjects) for w in weeks]
    count = [sum(1 for e in load.bearing.values() if e[1] <= w <= e[2]) for w in weeks]
    return free, shared, count


@settings(max_examples=150, deadline=None)
@given(st.lists(change, max_size=80))
def test_the_load_is_what_its_definition_gives_after_any_changes(changes: list[Any]) -> None:
    """Changed one directive at a time (``bear``), and built at once from the same bearings
    (``bear_all``), the load is the definition's: a subject's shared members count their
    largest hours once in a week, whichever of them came, left or changed first."""
    load = WeeklyLoad(TERMS, PERIOD)
    for number, start, length, hours, mode, subject in changes:
        weeks = range(FIRST + start, min(FIRST + start + length, LAST) + 1)
        load.bear({"id": f"d{number:02d}", "subject": subject}, weeks, hours, mode)
        assert (load.free, load.shared_max, load.count) == by_definition(load)
    built = WeeklyLoad(TERMS, PERIOD)
    built.bear_all((e[0], range(e[1], e[2] + 1), e[3], e[4]) for e in load.bearing.values())
    assert (built.free, built.shared_max, built.count) == by_definition(load)
    twin = load.copy()
    for number in range(12):  # the copy changes alone
        twin.bear({"id": f"d{number:02d}", "subject": "a"}, range(0), 0, NONE)
    assert (load.free, load.shared_max, load.count) == by_definition(load)
    assert (twin.free, twin.shared_max, twin.count) == ([0] * len(load.free),) * 3
