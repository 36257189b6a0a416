"""Conflict detectors: which active directives of a contract cannot all be honoured.

Each kind of conflict (SPEC §4) is one function from the contract's state to
the conflicts of that kind, registered under its name with ``@detector``; a
new kind is one new function.  ``detect_conflicts`` runs every registered
detector.  Detectors are pure and never compare all pairs of directives:
directives are grouped by subject, windows are swept in date order, and
weekly load is added up with a difference array over the contract's weeks.

Conflict ids are deterministic: ``uuid5(CONFLICT_NAMESPACE, name)`` where
``name`` is ``"<kind>|<member ids, sorted, comma-separated>"``, followed by
``"|<first week>..<last week>"`` for ``over_capacity`` (e.g.
``"|2008-W24..2008-W25"``, a run is fixed by its ends) and ``"|<rule id>"`` for
``rule_violation``.  The same members (and weeks, and rule) always give the
same id, in a live projection and in replay alike; a new member set is a new
conflict.

Membership when windows chain: directives on one subject are joined when
their windows share a day, and a group is a connected component of that
overlap graph (A overlaps B and B overlaps C puts A, B and C in one group even
when A and C do not overlap).  A ``contradiction`` is such a group of the
subject's non-null directives holding two or more distinct values, and every
directive of the group is a member: deciding the subject's value for that
stretch of time concerns them all.  A ``duplicate`` is such a group among the
directives with one and the same non-null value, issued by two or more
organisations.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from hashlib import sha1
from typing import Any, Protocol
from uuid import UUID

from domain.contract_state import ContractState
from domain.scope import Outside
from domain.windows import Span, from_micro, overlap_groups, runs, to_micro, week_label

Directive = Mapping[str, Any]

CONFLICT_NAMESPACE = UUID("6f1d3c2a-5b7e-5a1f-9c3d-2e4b6a8c0d17")
MENTIONED_AT_MOST = 6


@dataclass(frozen=True)
class Detection:
    """A conflict as a detector finds it; its lifecycle is kept by ``domain.conflict_view``."""

    id: str
    kind: str
    members: tuple[str, ...]
    explanation: str
    details: dict[str, Any] = field(hash=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "members": list(self.members),
            "explanation": self.explanation,
            "details": self.details,
        }


def conflict_id(kind: str, members: Iterable[str], *qualifiers: str) -> str:
    """The deterministic id of a conflict (see the module docstring).

    Equal to ``str(uuid.uuid5(CONFLICT_NAMESPACE, name))``, computed without
    building a ``UUID`` object, which costs more than the hash itself.
    """
    name = "|".join([kind, ",".join(sorted(members)), *qualifiers])
    digest = bytearray(sha1(CONFLICT_NAMESPACE.bytes + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


Detector = Callable[[ContractState], list[Detection]]
DETECTORS: dict[str, Detector] = {}


def detector(kind: str) -> Callable[[Detector], Detector]:
    """Register a detector under the conflict kind it finds."""

    def register(find: Detector) -> Detector:
        DETECTORS[kind] = find
        return find

    return register


def detect_conflicts(terms: Mapping[str, Any], directives: Iterable[Directive]) -> list[Detection]:
    """Every conflict the registered detectors find among the active directives."""
    return find_conflicts(ContractState(terms, directives))


def find_conflicts(state: ContractState) -> list[Detection]:
    """Every conflict in a prepared state (share one state with the ranking).

    Listed kind by kind in registration order, each kind in a fixed order of
    its own, so the result does not depend on the order the directives came in.
    """
    return [found for find in DETECTORS.values() for found in find(state)]


# --- contradiction and duplicate: same subject, overlapping windows ---------
#
# Each kind is a detector over the whole state and a function over one
# locality (a subject's group, one directive, a stretch of weeks), which the
# detector runs for every locality and ``domain.conflict_tracker`` runs only
# where an event changed something.


class DirectiveFacts(Protocol):
    """What the locality functions ask about directives (``ContractState`` answers)."""

    terms: Mapping[str, Any]

    def span(self, directive: Directive) -> Span: ...

    def canonical(self, directive: Directive) -> str: ...

    def outside_of(self, directive: Directive) -> Outside | None: ...

    def rules_broken_by(self, directive: Directive) -> list[Mapping[str, Any]]: ...


@detector("contradiction")
def contradiction(state: ContractState) -> list[Detection]:
    return [found for subject, group in state.subjects_in_common
            for found in contradictions_on(state, subject, group)]


def contradictions_on(
    facts: DirectiveFacts, subject: str, group: list[Directive],
) -> list[Detection]:
    """The contradictions among one subject's directives (given in id order)."""
    valued = [d for d in group if d.get("value") is not None]
    if len({facts.canonical(d) for d in valued}) < 2:
        return []  # one value (or none) cannot contradict itself
    found = []
    for component in overlap_groups(valued, facts.span):
        sides = _sides(facts, component)
        if len(sides) < 2:
            continue
        members = sorted(d["id"] for d in component)
        span = _hull(facts, component)
        demands = "; ".join(
            f"{_and(side['issuers'])} {_require(side['issuers'])} {value}"
            for value, side in sides.items()
        )
        found.append(Detection(
            id=conflict_id("contradiction", members),
            kind="contradiction",
            members=tuple(members),
            explanation=(
                f"Contradictory directives on {subject} over overlapping windows "
                f"({span.label()}): {demands}."
            ),
            details={
                "subject": subject,
                "values": [side["value"] for side in sides.values()],
                "sides": list(sides.values()),
                "window": _window(span),
            },
        ))
    return found


@detector("duplicate")
def duplicate(state: ContractState) -> list[Detection]:
    return [found for subject, group in state.subjects_in_common
            for found in duplicates_on(state, subject, group)]


def duplicates_on(facts: DirectiveFacts, subject: str, group: list[Directive]) -> list[Detection]:
    """The duplicates among one subject's directives (given in id order)."""
    if len({d["issuer"] for d in group}) < 2:
        return []  # one issuer cannot duplicate itself
    same_value: dict[str, list[Directive]] = defaultdict(list)
    for directive in group:
        if directive.get("value") is not None:
            same_value[facts.canonical(directive)].append(directive)
    found = []
    for value, alike in sorted(same_value.items()):
        if len({d["issuer"] for d in alike}) < 2:
            continue
        for component in overlap_groups(alike, facts.span):
            issuers = sorted({d["issuer"] for d in component})
            if len(issuers) < 2:
                continue
            members = sorted(d["id"] for d in component)
            span = _hull(facts, component)
            found.append(Detection(
                id=conflict_id("duplicate", members),
                kind="duplicate",
                members=tuple(members),
                explanation=(
                    f"Duplicate directives on {subject}: {_and(issuers)} each require "
                    f"{value} over overlapping windows ({span.label()}), "
                    f"so the same work is demanded {_times(len(members))}."
                ),
                details={
                    "subject": subject,
                    "values": [component[0].get("value")],
                    "issuers": issuers,
                    "window": _window(span),
                },
            ))
    return found


def _sides(facts: DirectiveFacts, component: list[Directive]) -> dict[str, dict[str, Any]]:
    """The distinct values of a group, in canonical order, each with its directives and issuers."""
    sides: dict[str, dict[str, Any]] = {}
    for directive in sorted(component, key=lambda d: (facts.canonical(d), str(d["id"]))):
        side = sides.setdefault(facts.canonical(directive), {
            "value": directive.get("value"), "directives": [], "issuers": [],
        })
        side["directives"].append(directive["id"])
        if directive["issuer"] not in side["issuers"]:
            side["issuers"].append(directive["issuer"])
    for side in sides.values():
        side["issuers"].sort()
    return sides


def _hull(facts: DirectiveFacts, directives: list[Directive]) -> Span:
    spans = [facts.span(d) for d in directives]
    return Span(min(s.first for s in spans), max(s.last for s in spans))


def _window(span: Span) -> dict[str, str]:
    first, _, last = span.label().partition(" to ")
    return {"from": first, "to": last}


# --- over_capacity: a sweep over the contract's weeks -------------------------


@detector("over_capacity")
def over_capacity(state: ContractState) -> list[Detection]:
    """Maximal runs of weeks in which committed plus directed hours exceed weekly capacity.

    A week counts only when some directive demanding hours covers it: a
    contract whose own commitments exceed its capacity is not a conflict
    between directives.
    """
    weekly = to_micro(state.weekly_hours)
    committed = to_micro(state.committed_hours)
    first_week = state.period.first_week
    size = state.period.last_week - first_week + 1
    hours_delta = [0] * (size + 1)
    count_delta = [0] * (size + 1)
    demanding: list[tuple[int, int, int, Directive]] = []
    for directive in state.directives:
        hours = to_micro(directive.get("hours_per_week") or 0)
        if hours <= 0:
            continue
        weeks = state.weeks(directive)
        if not weeks:
            continue
        start, stop = weeks.start - first_week, weeks.stop - first_week
        hours_delta[start] += hours
        hours_delta[stop] -= hours
        count_delta[start] += 1
        count_delta[stop] -= 1
        demanding.append((start, stop - 1, hours, directive))
    load, count, excess = 0, 0, [0] * size
    for week in range(size):
        load += hours_delta[week]
        count += count_delta[week]
        excess[week] = committed + load - weekly if count else 0
    over_runs = runs([week for week in range(size) if excess[week] > 0])
    if not over_runs:
        return []
    involved: list[list[tuple[int, Directive]]] = [[] for _ in over_runs]
    run_lasts = [last for _, last in over_runs]
    for start, last, hours, directive in demanding:
        index = bisect_left(run_lasts, start)
        while index < len(over_runs) and over_runs[index][0] <= last:
            involved[index].append((hours, directive))
            index += 1
    return [
        over_capacity_run(first_week, run, excess, involved[index], weekly, committed)
        for index, run in enumerate(over_runs)
    ]


def over_capacity_run(
    first_week: int,
    run: tuple[int, int],
    excess: Sequence[int] | Mapping[int, int],
    involved: list[tuple[int, Directive]],
    weekly: int,
    committed: int,
) -> Detection:
    """The conflict of one maximal run of over-capacity weeks.

    Weeks are counted from ``first_week`` (the contract period's first);
    ``excess`` holds each week's excess in micro-hours, ``involved`` the
    micro-hours and directive of every directive demanding hours in the run.
    """
    weeks = [week_label(first_week + week) for week in range(run[0], run[1] + 1)]
    peak = max(range(run[0], run[1] + 1), key=lambda week: (excess[week], -week))
    members = sorted(d["id"] for _, d in involved)
    heaviest = sorted(involved, key=lambda entry: (-entry[0], str(entry[1]["id"])))
    named = ", ".join(
        f"{d['issuer']} on {d['subject']} ({_hours(from_micro(hours))} h)"
        for hours, d in heaviest[:MENTIONED_AT_MOST]
    )
    if len(heaviest) > MENTIONED_AT_MOST:
        named += f" and {len(heaviest) - MENTIONED_AT_MOST} more"
    stretch = weeks[0] if len(weeks) == 1 else f"{weeks[0]} to {weeks[-1]} ({len(weeks)} weeks)"
    largest = from_micro(excess[peak])
    return Detection(
        id=conflict_id("over_capacity", members, f"{weeks[0]}..{weeks[-1]}"),
        kind="over_capacity",
        members=tuple(members),
        explanation=(
            f"Over capacity in {stretch}: {_hours(from_micro(committed))} committed hours a week "
            f"plus the directives of {named} exceed the weekly capacity of "
            f"{_hours(from_micro(weekly))} h by up to {_hours(largest)} h "
            f"(in {week_label(first_week + peak)})."
        ),
        details={
            "weeks": weeks,
            "excess_hours": largest,
            "peak_week": week_label(first_week + peak),
            "excess_by_week": {
                week_label(first_week + week): from_micro(excess[week])
                for week in range(run[0], run[1] + 1)
            },
            "weekly_capacity_hours": from_micro(weekly),
            "committed_hours_per_week": from_micro(committed),
        },
    )


# --- out_of_scope and rule_violation: one directive against the contract ----


@detector("out_of_scope")
def out_of_scope(state: ContractState) -> list[Detection]:
    return [found for directive in state.directives
            if directive["id"] in state.outside
            for found in out_of_scope_of(state, directive)]


def out_of_scope_of(facts: DirectiveFacts, directive: Directive) -> list[Detection]:
    outside = facts.outside_of(directive)
    if outside is None:
        return []
    reasons = []
    if outside.target_groups:
        reasons.append(
            f"target group {_and(list(outside.target_groups))}, which the contract does not "
            f"serve (it serves {_and(list(facts.terms.get('target_groups') or ['no one']))})"
        )
    if outside.locations:
        reasons.append(
            f"{_and(list(outside.locations))}, outside the contract's service area"
        )
    return [Detection(
        id=conflict_id("out_of_scope", [directive["id"]]),
        kind="out_of_scope",
        members=(directive["id"],),
        explanation=(
            f"Out of scope: {directive['issuer']}'s directive on {directive['subject']} "
            f"names {' and '.join(reasons)}."
        ),
        details={
            "subject": directive["subject"],
            "outside": outside.listed,
            "outside_target_groups": list(outside.target_groups),
            "outside_locations": list(outside.locations),
        },
    )]


@detector("rule_violation")
def rule_violation(state: ContractState) -> list[Detection]:
    return [found for directive in state.directives
            if directive["id"] in state.broken_rules
            for found in rule_violations_of(state, directive)]


def rule_violations_of(facts: DirectiveFacts, directive: Directive) -> list[Detection]:
    found = []
    for rule in facts.rules_broken_by(directive):
        when = _and(list(rule.get("when_tags") or ()))
        unless = list(rule.get("unless_tags") or ())
        without = f" without {_or(unless)}" if unless else ""
        found.append(Detection(
            id=conflict_id("rule_violation", [directive["id"]], rule["id"]),
            kind="rule_violation",
            members=(directive["id"],),
            explanation=(
                f"Rule {rule['id']} blocks {directive['issuer']}'s directive on "
                f"{directive['subject']}: it is tagged {when}{without}, and its basis "
                f"{directive.get('basis')} is not exempt ({rule.get('citation')})."
            ),
            details={
                "subject": directive["subject"],
                "rule": rule["id"],
                "citation": rule.get("citation"),
                "verdict": rule.get("verdict", "blocked"),
            },
        ))
    return found


# --- wording ------------------------------------------------------------------


def _hours(hours: float) -> str:
    return f"{hours:.6f}".rstrip("0").rstrip(".")


def _require(issuers: list[str]) -> str:
    return "requires" if len(issuers) == 1 else "require"


def _times(count: int) -> str:
    return "twice" if count == 2 else f"{count} times"


def _and(items: list[str]) -> str:
    return _join(items, "and")


def _or(items: list[str]) -> str:
    return _join(items, "or")


def _join(items: list[str], word: str) -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {word} {items[-1]}"
