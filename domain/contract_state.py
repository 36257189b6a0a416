"""A contract's terms and active directives, prepared once for detectors and ranking.

Conflict detection and the ranking read the same facts about each directive:
its window, the weeks it covers, what of it lies outside the contract's
scope and which rules block it.  ``ContractState`` works each out once, when
first asked for, so that the two views of a 5,000-directive contract cost one
preparation and the ranking alone (a contract read as of a version) pays only
for the weeks and hours it reads.  It
takes plain inputs (the contract's ``terms`` dict and directive dicts, as a
``ServiceContract`` holds them or replay rebuilds them) and ignores any
directive that is not ``active``.  Directives are kept in id order, so nothing
downstream depends on the order in which they arrived (loops that give the same
answer in any order read them as they arrived, the order they lie in memory).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import cached_property
from operator import itemgetter
from typing import Any, NamedTuple

from domain.scope import ContractScope, Outside, disputed_fields, tags_of, task_type_of
from domain.windows import MICRO, Span, period_span, window_weeks

Directive = Mapping[str, Any]


class _Judgements(NamedTuple):
    outside: dict[str, Outside]
    broken_rules: dict[str, list[Mapping[str, Any]]]
    unadmitted: dict[str, list[str]]


class ContractState:
    """The facts every view reads, worked out once, when first asked for.

    Per directive (by id): the micro-hours it asks a week and, if it asks
    some, the weeks of the period it covers (as a ``range`` of week numbers;
    ``_measured``, for the weekly load); what of it lies outside the
    contract's scope and which rules block it (``_judged``); its span and its
    canonical value.  The ranking reads only the weeks of the directives it
    gives hours (``weeks``: it reckons their hours as it scores them), so a
    state built to rank works out nothing else; the detectors read all of
    them.  Scope and
    rule answers are looked up once per distinct combination of named groups,
    places, tags and basis: a large contract names the same few again and
    again.
    """

    def __init__(self, terms: Mapping[str, Any], directives: Iterable[Directive], *,
                 active: bool = False) -> None:
        """``directives``: every directive (the active ones are kept), or, with ``active``,
        only active ones, taken as they are."""
        self.terms = terms
        self.period = period_span(terms)
        self.arrived: list[Directive] = list(directives) if active else [
            d for d in directives if d.get("status", "active") == "active"]
        """The active directives in the order given: the order they lie in memory, quicker to
        read in a loop whose result does not depend on the order."""
        capacity = terms["capacity"]
        self.weekly_hours: float = capacity["staff"] * capacity["hours_per_staff_week"]
        self.committed_hours: float = capacity["committed_hours_per_week"]
        self._spans: dict[str, Span] = {}
        self._canonical: dict[str, str] = {}
        self._canonical_by_value: dict[tuple[tuple[str, str], ...], str] = {}

    @cached_property
    def directives(self) -> list[Directive]:
        """The active directives in id order."""
        return sorted(self.arrived, key=itemgetter("id"))

    @cached_property
    def scope(self) -> ContractScope:
        return ContractScope(self.terms)

    # --- hours and weeks (``_measured``) ------------------------------------------------

    @property
    def hours(self) -> dict[str, int]:
        """Micro-hours each directive asks a week (0 for none)."""
        return self._measured[0]

    @property
    def covered(self) -> dict[str, range]:
        """The weeks each directive asking hours covers (only those: no other bears load or
        is given hours)."""
        return self._measured[1]

    @cached_property
    def asking(self) -> list[Directive]:
        """The directives asking some hours a week, in id order (only they can bear load)."""
        covered = self.covered
        return [directive for directive in self.directives if directive["id"] in covered]

    def weeks(self, directive: Directive) -> range:
        """The weeks of the period the directive's window covers."""
        window = directive.get("window")
        if not window:
            return range(self.period.first_week, self.period.last_week + 1)
        return window_weeks(window["from"], window["to"], self.period)

    @cached_property
    def _measured(self) -> tuple[dict[str, int], dict[str, range]]:
        """Each directive's hours and, if it asks some, its weeks: one pass in the order the
        directives arrived (nothing filled depends on it)."""
        hours_of: dict[str, int] = {}
        covered: dict[str, range] = {}
        for directive in self.arrived:
            key = directive["id"]
            asked = directive.get("hours_per_week")
            hours_of[key] = hours = round(asked * MICRO) if asked else 0
            if hours > 0:
                covered[key] = self.weeks(directive)
        return hours_of, covered

    @cached_property
    def by_id(self) -> dict[str, Directive]:
        return {directive["id"]: directive for directive in self.arrived}

    # --- scope, rules and admission (``_judged``) ------------------------------------------

    @property
    def outside(self) -> dict[str, Outside]:
        """For each directive naming a target group or place the contract does not cover,
        what lies outside."""
        return self._judged.outside

    @property
    def broken_rules(self) -> dict[str, list[Mapping[str, Any]]]:
        """For each directive some contract rule blocks, those rules in the contract's order."""
        return self._judged.broken_rules

    @property
    def unadmitted(self) -> dict[str, list[str]]:
        """For each directive the admission list does not admit, the kinds its issuer may ask."""
        return self._judged.unadmitted

    @cached_property
    def _judged(self) -> _Judgements:
        """What the contract's scope, rules and admission list say of each directive, read
        in the order the directives arrived (the memos are keyed by all they read)."""
        scope = self.scope
        judged = _Judgements({}, {}, {})
        outside, broken_rules, unadmitted = judged
        scoped: dict[tuple[Any, ...], Outside | None] = {}
        ruled: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
        admission = bool(scope.admission)
        untagged_rules = scope.untagged_match
        for directive in self.arrived:
            key = directive["id"]
            named_groups = directive.get("target_groups") or ()
            named_places = directive.get("locations") or ()
            said = directive.get("classification") or directive.get("disputes")
            kind = task_type_of(directive) if said else directive.get("task_type")
            if not scope.covers(named_groups, named_places, kind):
                scope_key = (tuple(named_groups), tuple(named_places), kind)
                if scope_key not in scoped:
                    scoped[scope_key] = scope.outside(directive)
                found = scoped[scope_key]
                if found is not None:
                    outside[key] = found
            if admission:
                gap = scope.unadmitted(directive)
                if gap is not None:
                    unadmitted[key] = gap
            tags = tags_of(directive) if said else directive.get("tags") or ()
            if tags or untagged_rules:
                rule_key = (tuple(tags), directive.get("basis"),
                            bool(said) and "tags" in disputed_fields(directive))
                broken = ruled.get(rule_key)
                if broken is None:
                    broken = ruled[rule_key] = scope.broken_rules(directive)
                if broken:
                    broken_rules[key] = broken
        return judged

    @property
    def free_hours(self) -> float:
        """Weekly capacity less the hours the contract's own indicators already consume."""
        return self.weekly_hours - self.committed_hours

    def span(self, directive: Directive) -> Span:
        """The days of the directive's window (the contract period without one); worked out
        when first asked for: only directives sharing a subject are asked."""
        key = directive["id"]
        span = self._spans.get(key)
        if span is None:
            window = directive.get("window")
            span = self._spans[key] = Span.of(window) if window else self.period
        return span

    def canonical(self, directive: Directive) -> str:
        """The directive's value as canonical JSON (see ``canonical_json``)."""
        key = directive["id"]
        text = self._canonical.get(key)
        if text is None:
            text = self._canonical[key] = self._canonical_of(directive.get("value"))
        return text

    def _canonical_of(self, value: Any) -> str:
        """``canonical_json``, remembered for the flat string-valued objects directives repeat."""
        if type(value) is not dict or not all(type(item) is str for item in value.values()):
            return canonical_json(value)
        flat = tuple(value.items())
        text = self._canonical_by_value.get(flat)
        if text is None:
            text = self._canonical_by_value[flat] = canonical_json(value)
        return text

    @cached_property
    def subjects_in_common(self) -> list[tuple[str, list[Directive]]]:
        """Subjects named by two or more directives, in subject order, with those directives."""
        groups: dict[str, list[Directive]] = {}
        for directive in self.directives:
            subject = directive["subject"]
            group = groups.get(subject)
            if group is None:
                groups[subject] = [directive]
            else:
                group.append(directive)
        return sorted(((s, ds) for s, ds in groups.items() if len(ds) > 1), key=itemgetter(0))

    def directives_in(self, keyed: Iterable[str]) -> list[Directive]:
        """The directives of the ids in ``keyed`` (one of the dicts above), in id order."""
        return [self.by_id[key] for key in sorted(keyed)]

    def outside_of(self, directive: Directive) -> Outside | None:
        return self.outside.get(directive["id"])

    def rules_broken_by(self, directive: Directive) -> list[Mapping[str, Any]]:
        return self.broken_rules.get(directive["id"], [])

    def unadmitted_by(self, directive: Directive) -> list[str] | None:
        return self.unadmitted.get(directive["id"])


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
