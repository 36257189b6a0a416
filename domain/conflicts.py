"""Conflict kinds: what makes active directives of a contract impossible to honour together.

Each kind (SPEC §4) is registered once with ``@conflict_kind``: its name, its
*locality* (where a change can make or unmake it) and its locality function,
which finds the kind's conflicts in one locality.  A new kind is one
registration; ``domain.conflict_tracker`` reads the registry to know what to
re-detect after a change, and ``find_conflicts`` runs every kind over a whole
state.  Localities:

- ``subject``: the directives on one subject (``contradiction``,
  ``duplicate``); the function takes the subject's active directives;
- ``directive``: one directive against the contract (``out_of_scope``,
  ``rule_violation``); the function takes the directive;
- ``weeks``: a stretch of the contract's weeks (``over_capacity``); the
  function takes the weekly load (``domain.weekly_load``) and a stretch no
  over-capacity run crosses the ends of.

A kind may also say ``blocks=True`` (its members rank in tier 5: shown, never
scheduled, adding no load) or ``one_side="<outcome>"`` (only one of its members
can be carried out: the best-ranked is scheduled, the others are given no
hours under that schedule outcome, and only the largest of them counts as load).

A ``Detection`` (``domain.detection``) is what a locality function finds: the kind, the members
(sorted ids), the ``details`` a person needs, and the locality ``key`` that
tells which open conflict it may continue.  Detections carry no id and no
text: which episode a detection continues is the fold's business
(``domain.conflict_tracker``), and explanations are written from ``details``
in each language outside the domain.  Detectors never compare all pairs of
directives: directives are grouped by subject, windows are swept in date
order, and weekly load is kept per week.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Protocol

from domain.contract_state import ContractState
from domain.detection import Detection
from domain.scope import OPEN_DISPUTE, Outside, task_type_of
from domain.weekly_load import WeeklyLoad
from domain.windows import Span, day_text, from_micro, overlap_groups, runs, week_label

Directive = Mapping[str, Any]

SUBJECT, DIRECTIVE, WEEKS = "subject", "directive", "weeks"
MENTIONED_AT_MOST = 6


class DirectiveFacts(Protocol):
    """What locality functions ask about directives (``ContractState`` and the tracker answer)."""

    terms: Mapping[str, Any]

    def span(self, directive: Directive) -> Span: ...

    def canonical(self, directive: Directive) -> str: ...

    def outside_of(self, directive: Directive) -> Outside | None: ...

    def rules_broken_by(self, directive: Directive) -> list[Mapping[str, Any]]: ...

    def unadmitted_by(self, directive: Directive) -> list[str] | None: ...


@dataclass(frozen=True)
class ConflictKind:
    name: str
    locality: str
    find: Callable[..., list[Detection]]
    blocks: bool = False
    one_side: str | None = None
    suspects: Callable[[ContractState], Iterable[Directive]] | None = None
    """A ``directive`` kind's shortcut over a whole state: the only directives it can find
    something in, in id order (``None``: every directive must be asked)."""


KINDS: dict[str, ConflictKind] = {}


def conflict_kind(
    name: str, *, locality: str, blocks: bool = False, one_side: str | None = None,
    suspects: Callable[[ContractState], Iterable[Directive]] | None = None,
) -> Callable[[Callable[..., list[Detection]]], Callable[..., list[Detection]]]:
    """Register a kind of conflict with its locality and the function that finds it there."""

    def register(find: Callable[..., list[Detection]]) -> Callable[..., list[Detection]]:
        KINDS[name] = ConflictKind(name, locality, find, blocks, one_side, suspects)
        return find

    return register


def kinds_at(locality: str) -> list[ConflictKind]:
    return [kind for kind in KINDS.values() if kind.locality == locality]


def blocking_kinds() -> frozenset[str]:
    return frozenset(kind.name for kind in KINDS.values() if kind.blocks)


def one_side_outcomes() -> dict[str, str]:
    """Each one-side kind and the schedule outcome of its members that are not carried out."""
    return {kind.name: kind.one_side for kind in KINDS.values() if kind.one_side}


# --- the whole state ------------------------------------------------------------


def detect_conflicts(terms: Mapping[str, Any], directives: Iterable[Directive]) -> list[Detection]:
    """Every conflict among the active directives, as if none had been decided."""
    return find_conflicts(ContractState(terms, directives))


def find_conflicts(
    state: ContractState, opened: Iterable[Mapping[str, Any]] | None = None,
) -> list[Detection]:
    """Every conflict of a prepared state, kind by kind in registration order.

    Without ``opened`` this is detection without history: every conflict found
    counts as open, so one-side conflicts share their load and blocking ones add
    none (the fold of a history with no decisions finds exactly these).  With
    ``opened`` (the open conflict records of a contract's view), the load is the
    one those open conflicts imply, as the fold reckons it after decisions.
    """
    found: list[Detection] = []
    for kind in kinds_at(SUBJECT):
        for subject, group in state.subjects_in_common:
            found += kind.find(state, subject, group)
    for kind in kinds_at(DIRECTIVE):
        for directive in kind.suspects(state) if kind.suspects else state.directives:
            found += kind.find(state, directive)
    sharing: Iterable[Any]
    if opened is None:
        blocked = {key for d in found if KINDS[d.kind].blocks for key in d.members}
        sharing = [d for d in found if KINDS[d.kind].one_side]
    else:
        opened = list(opened)
        blocked = {key for r in opened if KINDS[r["kind"]].blocks for key in r["members"]}
        sharing = [Detection(r["kind"], tuple(r["members"]), {})
                   for r in opened if KINDS[r["kind"]].one_side]
    load = WeeklyLoad.of_state(state, blocked=blocked, sharing=sharing)
    for kind in kinds_at(WEEKS):
        found += kind.find(load, load.first_week, load.last_week)
    order = {name: index for index, name in enumerate(KINDS)}
    return sorted(found, key=lambda d: (order[d.kind], d.key, d.members))


# --- contradiction and duplicate: same subject, overlapping windows ---------------


@conflict_kind("contradiction", locality=SUBJECT, one_side="contested")
def contradictions_on(
    facts: DirectiveFacts, subject: str, group: list[Directive],
) -> list[Detection]:
    """Groups of one subject's directives whose windows chain and whose values differ.

    Directives on one subject are joined when their windows share a day, and a
    group is a connected component of that overlap graph; every directive of a
    group holding two or more distinct non-null values is a member.
    """
    canonical = facts.canonical
    valued, values = [], set()
    for directive in group:  # loops, not comprehensions: most groups hold two directives
        if directive.get("value") is not None:
            valued.append(directive)
            values.add(canonical(directive))
    if len(values) < 2:
        return []  # one value (or none) cannot contradict itself
    found = []
    for component in overlap_groups(valued, facts.span):
        sides = _sides(canonical, component)
        if len(sides) < 2:
            continue
        found.append(Detection(
            kind="contradiction",
            members=tuple(sorted([d["id"] for d in component])),
            details={
                "subject": subject,
                "values": [side["value"] for side in sides.values()],
                "sides": list(sides.values()),
                "window": _window(facts, component),
            },
            key=(subject,),
        ))
    return found


@conflict_kind("duplicate", locality=SUBJECT, one_side="covered")
def duplicates_on(facts: DirectiveFacts, subject: str, group: list[Directive]) -> list[Detection]:
    """Groups of directives from two or more issuers asking the same value over chained windows."""
    canonical = facts.canonical
    same_value: dict[str, list[Directive]] = {}
    repeated = False
    for directive in group:
        if directive.get("value") is not None:
            text = canonical(directive)
            alike = same_value.get(text)
            if alike is None:
                same_value[text] = [directive]
            else:
                alike.append(directive)
                repeated = True
    if not repeated:
        return []  # no value is asked twice
    found = []
    for text in sorted(same_value):
        alike = same_value[text]
        if len(alike) < 2 or len({d["issuer"] for d in alike}) < 2:
            continue  # one issuer cannot duplicate itself
        for component in overlap_groups(alike, facts.span):
            issuers = sorted({d["issuer"] for d in component})
            if len(issuers) < 2:
                continue
            found.append(Detection(
                kind="duplicate",
                members=tuple(sorted([d["id"] for d in component])),
                details={
                    "subject": subject,
                    "values": [component[0].get("value")],
                    "issuers": issuers,
                    "summaries": sorted({d["summary"] for d in component if d.get("summary")}),
                    "window": _window(facts, component),
                },
                key=(subject,),
            ))
    return found


def _sides(
    canonical: Callable[[Directive], str], component: list[Directive],
) -> dict[str, dict[str, Any]]:
    """The distinct values of a group, in canonical order, each with its directives and issuers."""
    sides: dict[str, dict[str, Any]] = {}
    for text, _, directive in sorted([(canonical(d), str(d["id"]), d) for d in component],
                                     key=_TEXT_AND_ID):
        side = sides.get(text)
        if side is None:
            side = sides[text] = {"value": directive.get("value"), "directives": [],
                                  "issuers": [], "summaries": []}
        side["directives"].append(directive["id"])
        if directive["issuer"] not in side["issuers"]:
            side["issuers"].append(directive["issuer"])
        summary = directive.get("summary")
        if summary and summary not in side["summaries"]:
            side["summaries"].append(summary)
    for side in sides.values():
        side["issuers"].sort()
        side["summaries"].sort()
    return sides


_TEXT_AND_ID = itemgetter(0, 1)


def _window(facts: DirectiveFacts, component: list[Directive]) -> dict[str, str]:
    """The days from the first to the last of a group's windows (sorted by first day, as
    ``overlap_groups`` gives them)."""
    span = facts.span
    return {"from": day_text(span(component[0]).first),
            "to": day_text(max([span(d).last for d in component]))}


# --- out_of_scope and rule_violation: one directive against the contract ----------


@conflict_kind("out_of_scope", locality=DIRECTIVE, blocks=True,
               suspects=lambda state: state.directives_in(state.outside))
def out_of_scope_of(facts: DirectiveFacts, directive: Directive) -> list[Detection]:
    outside = facts.outside_of(directive)
    if outside is None:
        return []
    return [Detection(
        kind="out_of_scope",
        members=(directive["id"],),
        details={
            "subject": directive["subject"],
            "summary": directive.get("summary"),
            "issuer": directive["issuer"],
            "outside": outside.listed,
            "outside_target_groups": list(outside.target_groups),
            "outside_locations": list(outside.locations),
            "outside_task_types": list(outside.task_types),
        },
        key=(directive["id"], ""),
    )]


@conflict_kind("rule_violation", locality=DIRECTIVE, blocks=True,
               suspects=lambda state: state.directives_in(state.broken_rules))
def rule_violations_of(facts: DirectiveFacts, directive: Directive) -> list[Detection]:
    return [Detection(
        kind="rule_violation",
        members=(directive["id"],),
        details={
            "subject": directive["subject"],
            "summary": directive.get("summary"),
            "issuer": directive["issuer"],
            "basis": directive.get("basis"),
            "rule": rule["id"],
            "when_tags": list(rule.get("when_tags") or ()),
            "unless_tags": list(rule.get("unless_tags") or ()),
            "citation": rule.get("citation"),
            "verdict": rule.get("verdict", "blocked"),
        },
        key=(directive["id"], rule["id"]),
    ) for rule in facts.rules_broken_by(directive)]


# --- not_admitted and disputed (SPEC §13): one directive against the contract --------


@conflict_kind("not_admitted", locality=DIRECTIVE, blocks=True,
               suspects=lambda state: state.directives_in(state.unadmitted))
def not_admitted_of(facts: DirectiveFacts, directive: Directive) -> list[Detection]:
    """A directive from an organisation the admission list does not admit for its kind of
    work (or, naming no kind, not admitted for any)."""
    admitted = facts.unadmitted_by(directive)
    if admitted is None:
        return []
    return [Detection(
        kind="not_admitted",
        members=(directive["id"],),
        details={
            "subject": directive["subject"],
            "summary": directive.get("summary"),
            "issuer": directive["issuer"],
            "task_type": task_type_of(directive),
            "admitted_task_types": admitted,
        },
        key=(directive["id"], ""),
    )]


@conflict_kind("disputed", locality=DIRECTIVE,
               suspects=lambda state: [d for d in state.directives if d.get("disputes")])
def disputes_of(facts: DirectiveFacts, directive: Directive) -> list[Detection]:
    """One conflict per open dispute of the directive (it keeps its rank while disputed)."""
    return [Detection(
        kind="disputed",
        members=(directive["id"],),
        details={
            "subject": directive["subject"],
            "summary": directive.get("summary"),
            "issuer": directive["issuer"],
            "dispute": dispute["id"],
            "disputed_by": dispute["by"],
            "fields": list(dispute["fields"]),
            "reason": dispute["reason"],
        },
        key=(directive["id"], dispute["id"]),
    ) for dispute in directive.get("disputes") or () if dispute.get("status") == OPEN_DISPUTE]


# --- over_capacity: runs of weeks whose load exceeds capacity ----------------------


@conflict_kind("over_capacity", locality=WEEKS)
def over_capacity_in(load: WeeklyLoad, first: int, last: int) -> list[Detection]:
    """The maximal runs of over-capacity weeks from week ``first`` to ``last`` (week numbers).

    ``first`` and ``last`` are ends no run crosses: the whole period, or a
    stretch the tracker widened to the ends of the runs touching a change.
    """
    found = []
    for run in runs(load.over_weeks(first, last)):
        involved = load.involved(run[0], run[1])
        weeks = [week_label(week) for week in range(run[0], run[1] + 1)]
        excess = load.excesses(run[0], run[1])
        peak = max(excess, key=lambda week: (excess[week], -week))
        heaviest = involved.heaviest(MENTIONED_AT_MOST)
        found.append(Detection(
            kind="over_capacity",
            members=tuple(involved.ids),
            details={
                "weeks": weeks,
                "excess_hours": from_micro(excess[peak]),
                "peak_week": week_label(peak),
                "excess_by_week": {week_label(week): from_micro(hours)
                                   for week, hours in excess.items()},
                "weekly_capacity_hours": from_micro(load.weekly),
                "committed_hours_per_week": from_micro(load.committed),
                "heaviest": [
                    {"directive": d["id"], "issuer": d["issuer"], "subject": d["subject"],
                     "summary": d.get("summary"), "hours": from_micro(hours)}
                    for d, hours in heaviest
                ],
            },
            key=run,
        ))
    return found
