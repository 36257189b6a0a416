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
from functools import cached_property
from typing import Any

from domain.scope import Outside, rule_applies
from domain.windows import Span, covered_weeks, period_span, window_span

Directive = Mapping[str, Any]

NOTHING_OUTSIDE = Outside((), ())


class ContractState:
    def __init__(self, terms: Mapping[str, Any], directives: Iterable[Directive]) -> None:
        self.terms = terms
        self.period = period_span(terms)
        self.directives: list[Directive] = sorted(
            (d for d in directives if d.get("status", "active") == "active"),
            key=lambda d: str(d["id"]),
        )
        self.spans: dict[str, Span] = {d["id"]: window_span(d, terms) for d in self.directives}
        self._canonical: dict[str, str] = {}
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
        return self.covered[directive["id"]]

    @cached_property
    def covered(self) -> dict[str, range]:
        period = self.period
        return {key: covered_weeks(span, period) for key, span in self.spans.items()}

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
        groups = frozenset(self.terms.get("target_groups") or ())
        area = frozenset(self.terms.get("service_area") or ())
        found = {}
        for directive in self.directives:
            named_groups = directive.get("target_groups") or ()
            named_places = directive.get("locations") or ()
            if groups.issuperset(named_groups) and area.issuperset(named_places):
                continue
            found[directive["id"]] = Outside(
                target_groups=tuple(dict.fromkeys(g for g in named_groups if g not in groups)),
                locations=tuple(dict.fromkeys(p for p in named_places if p not in area)),
            )
        return found

    @cached_property
    def broken_rules(self) -> dict[str, list[Mapping[str, Any]]]:
        """For each directive some contract rule blocks, those rules in the contract's order."""
        rules = list(self.terms.get("rules") or ())
        untagged_match = [rule for rule in rules if rule_applies(rule, {"tags": [], "basis": None})]
        found = {}
        for directive in self.directives:
            if not directive.get("tags") and not untagged_match:
                continue  # every rule needs a tag this directive lacks
            broken = [rule for rule in rules if rule_applies(rule, directive)]
            if broken:
                found[directive["id"]] = broken
        return found

    def unschedulable(self, directive: Directive) -> bool:
        """Out of scope or blocked by a rule: ranked in tier 5, never given hours."""
        key = directive["id"]
        return key in self.outside or key in self.broken_rules


def canonical_json(value: Any) -> str:
    """The JSON text two equal values share: sorted keys, no spaces, 1.0 written as 1."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(_normal(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _normal(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _normal(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_normal(item) for item in value]
    return value
