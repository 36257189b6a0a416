"""Folding the conflict view one event at a time, detecting only where the event changed something.

``advance_conflicts(view, find_conflicts(state), ...)`` at every version is
the definition of the conflict view; this module computes the same view
without running every detector over every directive at every version.  Each
kind of conflict lives in a *locality*, and an event that changes some
directives changes only the localities those directives are in:

- ``contradiction`` and ``duplicate``: the directive's subject (before and
  after an amendment: both the old and the new subject);
- ``out_of_scope`` and ``rule_violation``: the directive itself;
- ``over_capacity``: the weeks the directive demands hours in (before and
  after), widened to the ends of the runs of over-capacity weeks touching
  them.  Runs are maximal, so adding hours can join two runs into one and
  taking them away can split one; the widened stretch holds every old and new
  run that the change can touch, because outside the changed weeks nothing
  moved.

The tracker re-runs the detectors' locality functions (``domain.conflicts``)
on those localities only, then folds only that part of the view, by the rules
of ``advance_conflicts``: a conflict of an affected locality that is open and
no longer detected dissolves; a detected one opens (or opens again), or, if
open, has its explanation and details refreshed; a resolved one stays as it
is.  Everywhere else detection would find exactly what it found before, and
folding that changes nothing.

Everything the tracker keeps (directives by subject, their spans, weekly
loads, which open conflicts sit in which locality) is derived: it is built
from the contract's directives and conflict view when first needed and is
never stored.  A new kind of conflict needs its locality here too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from datetime import date, datetime
from operator import itemgetter
from typing import Any

from domain.conflict_view import DISSOLVED, OPEN, opened
from domain.conflicts import (
    Detection,
    contradictions_on,
    duplicates_on,
    out_of_scope_of,
    over_capacity_run,
    rule_violations_of,
)
from domain.contract_state import canonical_json
from domain.scope import ContractScope, Outside
from domain.windows import Span, covered_weeks, period_span, runs, to_micro, week_number

Directive = Mapping[str, Any]
Record = dict[str, Any]

SUBJECT_KINDS = frozenset({"contradiction", "duplicate"})
DIRECTIVE_KINDS = frozenset({"out_of_scope", "rule_violation"})
WEEK_KINDS = frozenset({"over_capacity"})

# Fields no detector reads: changing only these changes no conflict.
UNDETECTED_FIELDS = frozenset({
    "summary", "due", "people_affected", "vulnerability", "indicator",
    "issued_version", "issued_at", "amended_version",
})


class ConflictTracker:
    """Derived indices over a contract's active directives and its open conflicts."""

    def __init__(
        self,
        terms: Mapping[str, Any],
        directives: Iterable[Directive],
        view: Mapping[str, Mapping[str, Any]],
    ) -> None:
        self.terms = terms
        self.scope = ContractScope(terms)
        self.period = period_span(terms)
        self.first_week = self.period.first_week
        self.size = self.period.last_week - self.first_week + 1
        capacity = terms["capacity"]
        self.weekly = to_micro(capacity["staff"] * capacity["hours_per_staff_week"])
        self.committed = to_micro(capacity["committed_hours_per_week"])
        self.sla_hours = float(terms["resolution_sla_hours"])
        self.active: dict[str, Directive] = {}
        self.spans: dict[str, Span] = {}
        self.by_subject: dict[str, set[str]] = {}
        self.load = [0] * self.size
        self.demanders: list[dict[str, int]] = [{} for _ in range(self.size)]
        self._canonical: dict[str, str] = {}
        self.open_on_subject: dict[str, set[str]] = {}
        self.open_of_directive: dict[str, set[str]] = {}
        self.open_runs: dict[str, tuple[int, int]] = {}
        for directive in directives:
            if directive.get("status", "active") == "active":
                self._add(directive)
        for record in view.values():
            if record["status"] == OPEN:
                self._index_open(record)

    def copy(self, terms: Mapping[str, Any]) -> ConflictTracker:
        """An independent twin for a copy of the contract: far cheaper than a rebuild.

        Directive records and spans are immutable and shared; every index that
        the fold changes in place gets a copy of its own.
        """
        twin = object.__new__(ConflictTracker)
        twin.__dict__.update(self.__dict__)
        twin.terms = terms
        twin.active = dict(self.active)
        twin.spans = dict(self.spans)
        twin.by_subject = {subject: set(keys) for subject, keys in self.by_subject.items()}
        twin.load = list(self.load)
        twin.demanders = [dict(week) for week in self.demanders]
        twin._canonical = dict(self._canonical)
        twin.open_on_subject = {key: set(ids) for key, ids in self.open_on_subject.items()}
        twin.open_of_directive = {key: set(ids) for key, ids in self.open_of_directive.items()}
        twin.open_runs = dict(self.open_runs)
        return twin

    # --- the facts the locality functions ask for (``DirectiveFacts``) --------

    def span(self, directive: Directive) -> Span:
        return self.spans[directive["id"]]

    def canonical(self, directive: Directive) -> str:
        key = directive["id"]
        text = self._canonical.get(key)
        if text is None:
            text = self._canonical[key] = canonical_json(directive.get("value"))
        return text

    def outside_of(self, directive: Directive) -> Outside | None:
        return self.scope.outside(directive)

    def rules_broken_by(self, directive: Directive) -> list[Mapping[str, Any]]:
        return self.scope.broken_rules(directive)

    # --- the fold ---------------------------------------------------------------

    def directives_changed(
        self,
        view: MutableMapping[str, Record],
        changes: Iterable[tuple[Directive | None, Directive | None]],
        *,
        version: int,
        at: datetime,
    ) -> None:
        """Fold ``(before, after)`` directive changes recorded at ``version`` into ``view``.

        ``before`` is ``None`` for a new directive; a directive that is not
        ``active`` counts as absent.  ``view`` is updated in place; records
        are replaced, never mutated.
        """
        subjects: set[str] = set()
        touched: set[str] = set()
        weeks: list[tuple[int, int]] = []
        for before, after in changes:
            old = before if before and before.get("status", "active") == "active" else None
            new = after if after and after.get("status", "active") == "active" else None
            if (old is None and new is None) or _same_to_detectors(old, new):
                continue
            for directive in (old, new):
                if directive is None:
                    continue
                subjects.add(directive["subject"])
                touched.add(directive["id"])
            if old is not None:
                weeks += self._demanded_weeks(old)
                self._remove(old)
            if new is not None:
                self._add(new)
                weeks += self._demanded_weeks(new)
        if not subjects:
            return
        detected: dict[str, Detection] = {}
        candidates: set[str] = set()
        for subject in subjects:
            candidates |= self.open_on_subject.get(subject, set())
            group = sorted((self.active[key] for key in self.by_subject.get(subject, ())),
                           key=itemgetter("id"))
            if len(group) > 1:
                for found in (*contradictions_on(self, subject, group),
                              *duplicates_on(self, subject, group)):
                    detected[found.id] = found
        for key in touched:
            candidates |= self.open_of_directive.get(key, set())
            directive = self.active.get(key)
            if directive is not None:
                for found in (*out_of_scope_of(self, directive),
                              *rule_violations_of(self, directive)):
                    detected[found.id] = found
        for first, last in self._widened(weeks):
            candidates |= {conflict for conflict, (start, end) in self.open_runs.items()
                           if start <= last and first <= end}
            for found in self._over_capacity_in(first, last):
                detected[found.id] = found
        self._fold(view, detected, candidates, version=version, at=at)

    def conflict_changed(self, record: Mapping[str, Any]) -> None:
        """Re-index one conflict whose status another fold changed (resolution, escalation)."""
        self._unindex_open(record)
        if record["status"] == OPEN:
            self._index_open(record)

    def _fold(
        self,
        view: MutableMapping[str, Record],
        detected: Mapping[str, Detection],
        candidates: set[str],
        *,
        version: int,
        at: datetime,
    ) -> None:
        for conflict in candidates - detected.keys():
            record = view[conflict]
            self._unindex_open(record)
            view[conflict] = {**record, "status": DISSOLVED, "dissolved_version": version,
                              "dissolved_at": at.isoformat()}
        for conflict, detection in detected.items():
            current = view.get(conflict)
            if current is None or current["status"] == DISSOLVED:
                view[conflict] = opened(detection, version=version, at=at,
                                        sla_hours=self.sla_hours)
                self._index_open(view[conflict])
            elif current["status"] == OPEN:
                view[conflict] = {**current, "explanation": detection.explanation,
                                  "details": detection.details}

    # --- directives -------------------------------------------------------------

    def _add(self, directive: Directive) -> None:
        key = directive["id"]
        self.active[key] = directive
        window = directive.get("window")
        span = self.spans[key] = Span.of(window) if window else self.period
        self.by_subject.setdefault(directive["subject"], set()).add(key)
        hours = to_micro(directive.get("hours_per_week") or 0)
        if hours > 0:
            for week in self._weeks(span):
                self.load[week] += hours
                self.demanders[week][key] = hours

    def _remove(self, directive: Directive) -> None:
        key = directive["id"]
        span = self.spans.pop(key)
        del self.active[key]
        self._canonical.pop(key, None)
        group = self.by_subject[directive["subject"]]
        group.discard(key)
        if not group:
            del self.by_subject[directive["subject"]]
        hours = to_micro(directive.get("hours_per_week") or 0)
        if hours > 0:
            for week in self._weeks(span):
                self.load[week] -= hours
                del self.demanders[week][key]

    def _weeks(self, span: Span) -> range:
        """The span's weeks as indices from the contract period's first week."""
        weeks = covered_weeks(span, self.period)
        return range(weeks.start - self.first_week, weeks.stop - self.first_week)

    def _demanded_weeks(self, directive: Directive) -> list[tuple[int, int]]:
        if to_micro(directive.get("hours_per_week") or 0) <= 0:
            return []
        weeks = self._weeks(self.spans[directive["id"]])
        return [(weeks.start, weeks.stop - 1)] if weeks else []

    # --- over capacity ----------------------------------------------------------

    def _over(self, week: int) -> bool:
        return bool(self.demanders[week]) and self.committed + self.load[week] > self.weekly

    def _widened(self, stretches: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """The stretches widened to the ends of the over-capacity runs touching them, merged."""
        widened = []
        for first, last in stretches:
            while first > 0 and self._over(first - 1):
                first -= 1
            while last < self.size - 1 and self._over(last + 1):
                last += 1
            widened.append((first, last))
        merged: list[tuple[int, int]] = []
        for first, last in sorted(widened):
            if merged and first <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], last))
            else:
                merged.append((first, last))
        return merged

    def _over_capacity_in(self, first: int, last: int) -> list[Detection]:
        """The over-capacity runs inside a stretch no run crosses the ends of."""
        found = []
        for run in runs([week for week in range(first, last + 1) if self._over(week)]):
            excess = {week: self.committed + self.load[week] - self.weekly
                      for week in range(run[0], run[1] + 1)}
            involved: dict[str, int] = {}
            for week in range(run[0], run[1] + 1):
                involved.update(self.demanders[week])
            found.append(over_capacity_run(
                self.first_week, run, excess,
                [(hours, self.active[key]) for key, hours in involved.items()],
                self.weekly, self.committed,
            ))
        return found

    # --- open conflicts by locality ----------------------------------------------

    def _index_open(self, record: Mapping[str, Any]) -> None:
        kind, conflict = record["kind"], record["id"]
        if kind in SUBJECT_KINDS:
            self.open_on_subject.setdefault(record["details"]["subject"], set()).add(conflict)
        elif kind in DIRECTIVE_KINDS:
            self.open_of_directive.setdefault(record["members"][0], set()).add(conflict)
        elif kind in WEEK_KINDS:
            weeks = record["details"]["weeks"]
            self.open_runs[conflict] = (self._week_index(weeks[0]), self._week_index(weeks[-1]))
        else:
            raise ValueError(f"the conflict tracker does not know the locality of {kind!r}")

    def _unindex_open(self, record: Mapping[str, Any]) -> None:
        kind, conflict = record["kind"], record["id"]
        if kind in SUBJECT_KINDS:
            self.open_on_subject.get(record["details"]["subject"], set()).discard(conflict)
        elif kind in DIRECTIVE_KINDS:
            self.open_of_directive.get(record["members"][0], set()).discard(conflict)
        else:
            self.open_runs.pop(conflict, None)

    def _week_index(self, label: str) -> int:
        year, _, week = label.partition("-W")
        return week_number(date.fromisocalendar(int(year), int(week), 1)) - self.first_week


def _same_to_detectors(old: Directive | None, new: Directive | None) -> bool:
    """Whether a change leaves every field a detector reads as it was."""
    if old is None or new is None:
        return False
    keys = (old.keys() | new.keys()) - UNDETECTED_FIELDS - {"value"}
    return (all(old.get(key) == new.get(key) for key in keys)
            and canonical_json(old.get("value")) == canonical_json(new.get("value")))
