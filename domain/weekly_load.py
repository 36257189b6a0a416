"""What counts as load (SPEC §4), week by week: the input of ``over_capacity``.

A week's load is the contract's committed hours, plus, for each subject with
open one-side conflicts (``contradiction``, ``duplicate``: only one side can be
carried out), the largest ``hours_per_week`` among their members covering the
week, plus the hours of every other active directive covering it.  Members of
open blocking conflicts (tier 5) add nothing.

Each directive bears load in one of three ways: ``FREE`` (its own hours),
``SHARED`` (one of its subject's shared members: the week counts the largest
of them) or not at all.  ``WeeklyLoad`` keeps, per week, the sum of free
hours, the sum over subjects of the largest shared hours, and how many
directives bear load there, so that changing one directive costs the weeks it
covers.  Hours are whole micro-hours, so sums are exact in any order.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from domain.windows import Span, to_micro

if TYPE_CHECKING:
    from domain.contract_state import ContractState
    from domain.detection import Detection

Directive = Mapping[str, Any]

NONE, FREE, SHARED = 0, 1, 2

LoadEntry = tuple[Directive, range, int, int]
"""What ``bear_all`` takes for each directive: (directive, weeks, micro-hours, mode)."""

Bearing = tuple[Directive, int, int, int, int]
"""How a directive bears load: (directive, first week, last week, micro-hours, mode)."""

REMEMBERED_RUNS = 8
"""How many stretches' members ``WeeklyLoad.involved`` keeps up to date (a contract has a
few over-capacity runs at a time; a run that grows or shrinks is a new stretch)."""


class WeeklyLoad:
    def __init__(self, terms: Mapping[str, Any], period: Span) -> None:
        capacity = terms["capacity"]
        self.weekly = to_micro(capacity["staff"] * capacity["hours_per_staff_week"])
        self.committed = to_micro(capacity["committed_hours_per_week"])
        self.first_week, self.last_week = period.first_week, period.last_week
        size = self.last_week - self.first_week + 1
        self.free = [0] * size
        self.count = [0] * size
        self.shared_max = [0] * size
        self.shared: dict[str, SharedHours] = {}
        """Subject → the hours its shared members ask, week by week (``SharedHours``)."""
        self.bearing: dict[str, tuple[Directive, int, int, int, int]] = {}
        """Directive id → (directive, first week, last week, micro-hours, mode)."""
        self.runs: dict[tuple[int, int], RunMembers] = {}
        """The members of the stretches ``involved`` was last asked about (the over-capacity
        runs), kept up to date by ``bear``: a long run's thousands of members are not
        looked for again each time one of them moves."""

    @classmethod
    def of_state(
        cls, state: ContractState, *, blocked: set[str], sharing: Iterable[Detection],
    ) -> WeeklyLoad:
        """The load of a whole state whose open conflicts are the ones detected in it."""
        load = cls(state.terms, state.period)
        shared = {key for detection in sharing for key in detection.members} - blocked
        covered, hours = state.covered, state.hours
        load.bear_all(
            (directive, covered[key], hours[key],
             NONE if key in blocked else SHARED if key in shared else FREE)
            for directive in state.asking for key in (directive["id"],)
        )
        return load

    def bear_all(self, entries: Iterable[LoadEntry]) -> None:
        """``bear`` for many directives at once, on a load that bears nothing yet.

        Free hours are added up with difference arrays: the cost is one step per
        directive and per week, not per directive-week.
        """
        size = len(self.free)
        free_delta, count_delta = [0] * (size + 1), [0] * (size + 1)
        base = self.first_week
        for directive, weeks, hours, mode in entries:
            if hours <= 0 or not weeks or mode == NONE:
                continue
            entry = (directive, weeks.start, weeks.stop - 1, hours, mode)
            self.bearing[directive["id"]] = entry
            if mode == SHARED:
                self._take(entry, +1)
                continue
            start, stop = weeks.start - base, weeks.stop - base
            free_delta[start] += hours
            free_delta[stop] -= hours
            count_delta[start] += 1
            count_delta[stop] -= 1
        free = count = 0
        for week in range(size):
            free += free_delta[week]
            count += count_delta[week]
            self.free[week] += free
            self.count[week] += count
        self.runs.clear()

    def copy(self) -> WeeklyLoad:
        """An independent twin (for a copy of the contract's tracker)."""
        twin = object.__new__(WeeklyLoad)
        twin.__dict__.update(self.__dict__)
        twin.free, twin.count = list(self.free), list(self.count)
        twin.shared_max = list(self.shared_max)
        twin.shared = {subject: hours.copy() for subject, hours in self.shared.items()}
        twin.bearing = dict(self.bearing)
        twin.runs = {run: members.copy() for run, members in self.runs.items()}
        return twin

    # --- changes ----------------------------------------------------------------

    def bear(self, directive: Directive, weeks: range, hours: int, mode: int) -> range | None:
        """Make the directive bear ``hours`` over ``weeks`` in ``mode`` (``NONE``: nothing).

        Answers the weeks whose load may have changed (the old and new weeks), or
        ``None`` when nothing changed.
        """
        key = directive["id"]
        old = self.bearing.get(key)
        if hours <= 0 or not weeks:
            mode = NONE
        if old is None and mode == NONE:
            return None
        if old is not None and mode != NONE and old[1:] == (
                weeks.start, weeks.stop - 1, hours, mode) and _named_alike(old[0], directive):
            self.bearing[key] = entry = (directive, *old[1:])
            for members in self.runs.values():
                members.replace(key, entry)
            return None
        touched = []
        if old is not None:
            self._take(old, -1)
            del self.bearing[key]
            touched.append((old[1], old[2]))
            for members in self.runs.values():
                members.discard(key)
        if mode != NONE:
            entry = (directive, weeks.start, weeks.stop - 1, hours, mode)
            self.bearing[key] = entry
            self._take(entry, +1)
            touched.append((weeks.start, weeks.stop - 1))
            for (first, last), members in self.runs.items():
                if entry[1] <= last and first <= entry[2]:
                    members.add(key, entry)
        return range(min(t[0] for t in touched), max(t[1] for t in touched) + 1)

    def _take(self, entry: tuple[Directive, int, int, int, int], sign: int) -> None:
        """Add (``sign`` +1) or remove (-1) one bearing's hours, a slice of weeks at a time
        (list comprehensions over the weeks it covers: no Python step per week)."""
        directive, first, last, hours, mode = entry
        start, stop = first - self.first_week, last - self.first_week + 1
        count = self.count
        count[start:stop] = [n + sign for n in count[start:stop]]
        if mode == FREE:
            free = self.free
            moved = sign * hours
            free[start:stop] = [h + moved for h in free[start:stop]]
            return
        subject = directive["subject"]
        shared = self.shared.get(subject)
        if shared is None:
            shared = self.shared[subject] = SharedHours(len(self.free))
        before = shared.top[start:stop]
        if sign > 0:
            shared.add(hours, start, stop)
        else:
            shared.remove(hours, start, stop)
            if not shared.counts:
                del self.shared[subject]
        after = shared.top[start:stop]
        if after != before:
            shared_max = self.shared_max
            shared_max[start:stop] = [total + new - old for total, new, old
                                      in zip(shared_max[start:stop], after, before, strict=True)]

    # --- questions ----------------------------------------------------------------

    def load(self, week: int) -> int:
        index = week - self.first_week
        return self.committed + self.free[index] + self.shared_max[index]

    def excess(self, week: int) -> int:
        return self.load(week) - self.weekly

    def over(self, week: int) -> bool:
        """Some directive bears load in the week, and the load exceeds weekly capacity."""
        index = week - self.first_week
        return bool(self.count[index]) and (
            self.committed + self.free[index] + self.shared_max[index] > self.weekly)

    def over_weeks(self, first: int, last: int) -> list[int]:
        """The weeks from ``first`` to ``last`` that are ``over`` capacity, in one pass."""
        base, weekly, committed = self.first_week, self.weekly, self.committed
        free, shared_max, count = self.free, self.shared_max, self.count
        return [week for week in range(first, last + 1) if count[week - base] and (
            committed + free[week - base] + shared_max[week - base] > weekly)]

    def excesses(self, first: int, last: int) -> dict[int, int]:
        """The ``excess`` of each week from ``first`` to ``last``, in one pass."""
        base, weekly, committed = self.first_week, self.weekly, self.committed
        free, shared_max = self.free, self.shared_max
        return {week: committed + free[week - base] + shared_max[week - base] - weekly
                for week in range(first, last + 1)}

    def involved(self, first: int, last: int) -> RunMembers:
        """The directives bearing load in weeks ``first`` to ``last``, and how (``Bearing``);
        remembered for the last few stretches asked about (``runs``) and kept up to date."""
        members = self.runs.get((first, last))
        if members is None:
            if len(self.runs) >= REMEMBERED_RUNS:
                del self.runs[next(iter(self.runs))]  # the one asked about first
            members = self.runs[first, last] = RunMembers(
                entry for entry in self.bearing.values()
                if entry[1] <= last and first <= entry[2])
        return members

    def widened(self, stretches: Iterable[range]) -> list[tuple[int, int]]:
        """The stretches widened to the ends of the over-capacity runs touching them, merged."""
        spans = []
        for stretch in stretches:
            first = max(stretch.start, self.first_week)
            last = min(stretch.stop - 1, self.last_week)
            if first > last:
                continue
            while first > self.first_week and self.over(first - 1):
                first -= 1
            while last < self.last_week and self.over(last + 1):
                last += 1
            spans.append((first, last))
        merged: list[tuple[int, int]] = []
        for first, last in sorted(spans):
            if merged and first <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], last))
            else:
                merged.append((first, last))
        return merged


class RunMembers:
    """The directives bearing load in a stretch of weeks: their ids in order, and their ids
    in order by the hours they ask (for the heaviest demands), each changed in place as one
    directive comes or goes, with no pass over the others."""

    def __init__(self, entries: Iterable[Bearing]) -> None:
        self.entries: dict[str, Bearing] = {entry[0]["id"]: entry for entry in entries}
        self.ids: list[str] = sorted(self.entries)
        self.by_hours: dict[int, list[str]] = {}
        """Micro-hours → the ids of the members asking that many, in order."""
        for key in self.ids:
            hours = self.entries[key][3]
            same = self.by_hours.get(hours)
            if same is None:
                self.by_hours[hours] = [key]
            else:
                same.append(key)

    def copy(self) -> RunMembers:
        twin = object.__new__(RunMembers)
        twin.entries, twin.ids = dict(self.entries), list(self.ids)
        twin.by_hours = {hours: list(ids) for hours, ids in self.by_hours.items()}
        return twin

    def add(self, key: str, entry: Bearing) -> None:
        self.entries[key] = entry
        insort(self.ids, key)
        insort(self.by_hours.setdefault(entry[3], []), key)

    def discard(self, key: str) -> None:
        entry = self.entries.pop(key, None)
        if entry is None:
            return
        del self.ids[bisect_left(self.ids, key)]
        same = self.by_hours[entry[3]]
        del same[bisect_left(same, key)]
        if not same:
            del self.by_hours[entry[3]]

    def replace(self, key: str, entry: Bearing) -> None:
        """The same bearing with a newer record of its directive."""
        if key in self.entries:
            self.entries[key] = entry

    def heaviest(self, count: int) -> list[tuple[Directive, int]]:
        """The ``count`` largest demands (directive, micro-hours), ties by id."""
        chosen: list[tuple[Directive, int]] = []
        for hours in sorted(self.by_hours, reverse=True):
            for key in self.by_hours[hours]:
                if len(chosen) == count:
                    return chosen
                chosen.append((self.entries[key][0], hours))
        return chosen


class SharedHours:
    """The hours one subject's shared members ask, week by week: how many ask each number of
    micro-hours in each week (``counts``) and the largest asked in each week (``top``, 0
    where none), which is what the subject adds to a week's load.  Changed a slice of
    weeks at a time."""

    def __init__(self, size: int) -> None:
        self.top = [0] * size
        self.counts: dict[int, list[int]] = {}
        """Micro-hours → how many shared members ask that many, in each week."""

    def copy(self) -> SharedHours:
        twin = object.__new__(SharedHours)
        twin.top = list(self.top)
        twin.counts = {hours: list(weeks) for hours, weeks in self.counts.items()}
        return twin

    def add(self, hours: int, start: int, stop: int) -> None:
        counted = self.counts.get(hours)
        if counted is None:
            counted = self.counts[hours] = [0] * len(self.top)
        counted[start:stop] = [n + 1 for n in counted[start:stop]]
        top = self.top[start:stop]
        if min(top) < hours:
            self.top[start:stop] = [hours if largest < hours else largest for largest in top]

    def remove(self, hours: int, start: int, stop: int) -> None:
        counted = self.counts[hours]
        left = counted[start:stop] = [n - 1 for n in counted[start:stop]]
        if not any(counted):
            del self.counts[hours]
        top = self.top[start:stop]
        if hours < min(top) or all(left):
            return  # every week's largest stays: others ask more, or as much
        # Weeks where these hours were the largest and nobody else asks them: the next
        # largest hours asked there, tried from the largest down.
        lowered = [largest if largest != hours or still else 0
                   for largest, still in zip(top, left, strict=True)]
        for lower in sorted((h for h in self.counts if h < hours), reverse=True):
            asked = self.counts[lower][start:stop]
            lowered = [largest or (lower if asking else 0)
                       for largest, asking in zip(lowered, asked, strict=True)]
        self.top[start:stop] = lowered


def _named_alike(old: Directive, new: Directive) -> bool:
    """Whether an over-capacity run's ``details`` would name the directive as before (its
    subject and summary): if not, the weeks it bears count as moved, and are detected again."""
    return old["subject"] == new["subject"] and old.get("summary") == new.get("summary")
