"""Time windows of directives: ISO weeks, and which windows overlap.

Weeks are Monday to Sunday.  A week is numbered by how many whole weeks lie
between 0001-01-01 (a Monday) and its Monday, so consecutive weeks have
consecutive numbers across year ends and ISO years of 53 weeks need no care.
A window covers a week if it overlaps any day of it (SPEC §9).

Hours are counted in whole micro-hours (``to_micro``) wherever they are added
up: integer sums are exact and do not depend on the order of the terms, so a
view computed from directives that arrived in another order is the same view.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, timedelta
from functools import lru_cache
from operator import itemgetter
from typing import Any, NamedTuple, TypeVar

T = TypeVar("T")

MICRO = 1_000_000


def to_micro(hours: float) -> int:
    """Hours as whole micro-hours (3.6 ms): fine enough for any staff plan, and exact to add."""
    return round(hours * MICRO)


def from_micro(micro: int) -> float:
    return micro / MICRO


def week_number(day: date) -> int:
    """The number of the Monday-to-Sunday week that holds ``day``."""
    return (day.toordinal() - 1) // 7


@lru_cache(maxsize=1 << 14)
def week_label(number: int) -> str:
    """The ISO week string of a week number, e.g. ``"2008-W24"`` (remembered: a contract
    names the same few dozen weeks in every over-capacity detection)."""
    year, week, _ = date.fromordinal(number * 7 + 1).isocalendar()
    return f"{year}-W{week:02d}"


def week_dates(label: str) -> tuple[date, date]:
    """The Monday and Sunday of an ISO week label such as ``2008-W24``."""
    year, _, week = label.partition("-W")
    monday = date.fromisocalendar(int(year), int(week), 1)
    return monday, monday + timedelta(days=6)


@lru_cache(maxsize=1 << 14)
def day_ordinal(text: str) -> int:
    """The proleptic ordinal of an ISO date (remembered: a contract's thousands of windows
    start and end on a few hundred days)."""
    return date.fromisoformat(text).toordinal()


@lru_cache(maxsize=1 << 14)
def day_text(ordinal: int) -> str:
    """The ISO date of a proleptic ordinal, e.g. ``"2008-06-09"`` (remembered, as above)."""
    return date.fromordinal(ordinal).isoformat()


class Span(NamedTuple):
    """Inclusive first and last day of a window, as proleptic ordinals.

    A named tuple, so that spans sort by first day, then last day, without a key function.
    """

    first: int
    last: int

    @classmethod
    def of(cls, window: Mapping[str, str]) -> Span:
        return cls(day_ordinal(window["from"]), day_ordinal(window["to"]))

    @property
    def first_week(self) -> int:
        return (self.first - 1) // 7

    @property
    def last_week(self) -> int:
        return (self.last - 1) // 7

    def overlaps(self, other: Span) -> bool:
        return self.first <= other.last and other.first <= self.last


def period_span(terms: Mapping[str, Any]) -> Span:
    period = terms["period"]
    return Span.of({"from": period["start"], "to": period["end"]})


def covered_weeks(span: Span, period: Span) -> range:
    """Week numbers the window covers inside the contract period (maybe none)."""
    return range(max(span.first_week, period.first_week),
                 min(span.last_week, period.last_week) + 1)


@lru_cache(maxsize=1 << 14)
def window_weeks(first: str, last: str, period: Span) -> range:
    """``covered_weeks`` of a window given by its ends, in one look-up (remembered: the
    tracker's build and the ranking ask it for every directive asking hours, and a
    contract's windows repeat from one load of it to the next)."""
    return covered_weeks(Span(day_ordinal(first), day_ordinal(last)), period)


_BY_SPAN = itemgetter(0)
"""The span of a (span, item) pair: spans sort by first day, then last day."""


def overlap_groups(items: Sequence[T], span_of: Callable[[T], Span]) -> list[list[T]]:
    """Connected components of the overlap graph of ``items``' windows, by sort and sweep.

    Two items are joined when their windows share a day, and components are
    closed under chaining: if A overlaps B and B overlaps C, A, B and C form
    one group even when A and C do not overlap.  Sorting by first day and
    keeping the furthest last day seen so far finds every component in
    O(n log n) without comparing pairs.  Items keep their sorted order in each
    group (ties in input order); only groups of two or more are returned.
    """
    if len(items) == 2:  # the common case, answered without building the sweep
        one, other = items
        span, other_span = span_of(one), span_of(other)
        if span.first > other_span.last or other_span.first > span.last:
            return []
        return [[other, one]] if other_span < span else [[one, other]]
    keyed = [(span_of(item), item) for item in items]
    keyed.sort(key=_BY_SPAN)
    groups: list[list[T]] = []
    current: list[T] = []
    reach = -1
    for span, item in keyed:
        if span.first > reach:
            if len(current) > 1:
                groups.append(current)
            current = [item]
            reach = span.last
        else:
            current.append(item)
            reach = max(reach, span.last)
    if len(current) > 1:
        groups.append(current)
    return groups


def runs(numbers: Sequence[int]) -> list[tuple[int, int]]:
    """Maximal runs of consecutive integers in an ascending sequence, as (first, last)."""
    found: list[tuple[int, int]] = []
    for number in numbers:
        if found and number == found[-1][1] + 1:
            found[-1] = (found[-1][0], number)
        else:
            found.append((number, number))
    return found
