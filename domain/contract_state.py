"""A contract's terms and active directives, prepared once for detectors and ranking.

Conflict detection and the ranking read the same facts about each directive:
its window, the weeks it covers, what of it lies outside the contract's
scope and which rules block it.  ``ContractState`` works them out once, so
that the two views of a 5,000-directive contract cost one preparation.  It
takes plain inputs (the contract's ``terms`` dict and directive dicts, as a
``ServiceContract`` holds them or replay rebuilds them) and ignores any
directive that is not ``active``.  Directives are kept in id order, so nothing
downstream depends on the order in which they arrived.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date
from functools import cached_property
from operator import itemgetter
from typing import Any

from domain.scope import ContractScope, Outside
from domain.windows import Span, covered_weeks, period_span

Directive = Mapping[str, Any]

NOTHING_OUTSIDE = Outside((), ())


class ContractState:
    def __init__(self, terms: Mapping[str, Any], directives: Iterable[Directive]) -> None:
        self.terms = terms
        self.period = period_span(terms)
        self.directives: list[Directive] = sorted(
            (d for d in directives if d.get("status", "active") == "active"),
            key=itemgetter("id"),
        )
        self.spans: dict[str, Span] = spans_of(self.directives, self.period)
        self.scope = ContractScope(terms)
        self._canonical: dict[str, str] = {}
        self._covered: dict[str, range] = {}
        capacity = terms["capacity"]
        self.weekly_hours: float = capacity["staff"] * capacity["hours_per_staff_week"]
        self.committed_hours: float = capacity["committed_hours_per_week"]

    @property
    def free_hours(self) -> float:
        """Weekly capacity less the hours the contract's own indicators already consume."""
        return self.weekly_hours - self.committed_hours

    def span(self, directive: Directive) -> Span:
        return self.spans[directive["id"]]

    def weeks(self, directive: Directive) -> range:
        """The week numbers of the contract period that the directive's window covers."""
        key = directive["id"]
        weeks = self._covered.get(key)
        if weeks is None:
            weeks = self._covered[key] = covered_weeks(self.spans[key], self.period)
        return weeks

    def canonical(self, directive: Directive) -> str:
        """The directive's value as canonical JSON (see ``canonical_json``)."""
        key = directive["id"]
        text = self._canonical.get(key)
        if text is None:
            text = self._canonical[key] = canonical_json(directive.get("value"))
        return text

    @cached_property
    def subjects_in_common(self) -> list[tuple[str, list[Directive]]]:
        """Subjects named by two or more directives, in subject order, with those directives."""
        groups: dict[str, list[Directive]] = defaultdict(list)
        for directive in self.directives:
            groups[directive["subject"]].append(directive)
        return sorted((s, ds) for s, ds in groups.items() if len(ds) > 1)

    @cached_property
    def outside(self) -> dict[str, Outside]:
        """For each directive naming a target group or place the contract does not
        cover, what lies outside."""
        found = {}
        for directive in self.directives:
            outside = self.scope.outside(directive)
            if outside is not None:
                found[directive["id"]] = outside
        return found

    @cached_property
    def broken_rules(self) -> dict[str, list[Mapping[str, Any]]]:
        """For each directive some contract rule blocks, those rules in the contract's order."""
        found = {}
        for directive in self.directives:
            broken = self.scope.broken_rules(directive)
            if broken:
                found[directive["id"]] = broken
        return found

    def outside_of(self, directive: Directive) -> Outside | None:
        return self.outside.get(directive["id"])

    def rules_broken_by(self, directive: Directive) -> list[Mapping[str, Any]]:
        return self.broken_rules.get(directive["id"], [])

    def unschedulable(self, directive: Directive) -> bool:
        """Out of scope or blocked by a rule: ranked in tier 5, never given hours."""
        key = directive["id"]
        return key in self.outside or key in self.broken_rules


def spans_of(directives: Iterable[Directive], period: Span) -> dict[str, Span]:
    """Each directive's window as a span; a directive without one applies for the whole period.

    Written out rather than calling ``window_span`` per directive: this is the
    one loop every view of a large contract pays for.
    """
    ordinal = date.toordinal
    parse = date.fromisoformat
    spans = {}
    for directive in directives:
        window = directive.get("window")
        spans[directive["id"]] = Span(ordinal(parse(window["from"])),
                                      ordinal(parse(window["to"]))) if window else period
    return spans


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_encode_string = json.encoder.encode_basestring  # what json.dumps(text, ensure_ascii=False) does


def canonical_json(value: Any) -> str:
    """The JSON text two equal values share: sorted keys, no spaces, 1.0 written as 1."""
    if isinstance(value, str):
        return _encode_string(value)
    if value is None or isinstance(value, bool | int):
        return _ENCODER.encode(value)
    return _ENCODER.encode(_normal(value))


def _normal(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _normal(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_normal(item) for item in value]
    return value
