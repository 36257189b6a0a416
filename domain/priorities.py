"""The priority view: every active directive ranked, scored and scheduled (SPEC §5).

Every number shown can be recomputed by hand.  A directive's tier comes from
its basis (1 statute, 2 contract, 3 professional standard, 4 any other;
``client_first`` merges tiers 2 to 4 and reports them as 2), or is 5 while it
is a member of an open blocking conflict (``out_of_scope``, ``rule_violation``
…: shown, never scheduled).  Its score is ``100 × Σ weight × value`` over five
components, each in 0–1.  The ranking orders by tier, then score (highest
first), then issue order (``issued_version``), then id.  Walking the ranking,
each directive of tiers 1–4 is granted hours out of each covered week's free
capacity, except that of the members of an open one-side conflict only the
best-ranked is: the others are ``contested`` (a contradiction) or ``covered``
(a duplicate), with no hours, until the conflict is decided.

Which conflicts are open is history (a decision closes one), so the ranking
takes the contract's conflict view; without one, every conflict detected in
the state counts as open.

The reference date for urgency is an argument: the domain reads no clock.

Longer than most modules (~445 lines): the components, the policy, the ranking
and its schedule (with the memo the projection ranks with) are one calculation a reader
checks against SPEC §5 in one place; the ranking loop is written out whole because
every large contract pays for it.  What the open conflicts hold back, by member, is
``domain.conflict_sides``.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from datetime import date
from typing import Any

from domain.conflict_sides import ConflictSides
from domain.conflicts import find_conflicts, one_side_outcomes
from domain.contract_state import ContractState
from domain.directives import Basis
from domain.errors import ValidationFailed
from domain.terms import Profile, Weights
from domain.windows import MICRO, from_micro, to_micro

Directive = Mapping[str, Any]

COMPONENTS = ("need", "urgency", "indicator", "legitimacy", "efficiency")

PROFILE_WEIGHTS: dict[Profile, dict[str, float]] = {
    Profile.CONTRACT_FIRST: {
        "need": 0.35, "urgency": 0.25, "indicator": 0.20, "legitimacy": 0.10, "efficiency": 0.10,
    },
    Profile.CLIENT_FIRST: {
        "need": 0.45, "urgency": 0.25, "indicator": 0.10, "legitimacy": 0.10, "efficiency": 0.10,
    },
}

LEGITIMACY: dict[str, float] = {
    Basis.STATUTE: 1.0,
    Basis.CONTRACT: 0.9,
    Basis.PROFESSIONAL_STANDARD: 0.7,
    Basis.SUPERVISOR_REQUEST: 0.7,
    Basis.PURCHASER_REQUEST: 0.5,
    Basis.PETITION: 0.5,
    Basis.INDIVIDUAL_REQUEST: 0.3,
    Basis.NON_PARTY: 0.1,
}

BASIS_TIER: dict[str, int] = {Basis.STATUTE: 1, Basis.CONTRACT: 2, Basis.PROFESSIONAL_STANDARD: 3}
OTHER_BASIS_TIER, UNSCHEDULABLE_TIER = 4, 5

SCHEDULED, PARTIAL, DEFERRED, BLOCKED = "scheduled", "partial", "deferred", "blocked"
CONTESTED, COVERED = "contested", "covered"

Conflicts = Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]]
"""A conflict view (id → record) or its records; only the open ones count."""


# --- the five components ------------------------------------------------------


def need(directive: Directive) -> float:
    """``0.5 × vulnerability + 0.5 × min(1, people_affected / 100)``."""
    people = directive.get("people_affected") or 0
    return 0.5 * (directive.get("vulnerability") or 0) + 0.5 * min(1.0, people / 100)


def urgency(directive: Directive, reference_date: date) -> float:
    """1.0 when due within 7 days (or overdue), 0.6 within 30 days, else or undated 0.3."""
    due = directive.get("due")
    if not due:
        return 0.3
    days_left = (date.fromisoformat(due) - reference_date).days
    if days_left <= 7:
        return 1.0
    if days_left <= 30:
        return 0.6
    return 0.3


def indicator(directive: Directive, indicator_keys: frozenset[str]) -> float:
    """1.0 when the directive serves one of the contract's own indicators."""
    return 1.0 if directive.get("indicator") in indicator_keys else 0.0


def legitimacy(directive: Directive) -> float:
    return LEGITIMACY[directive["basis"]]


def efficiency(directive: Directive, free_hours: float) -> float:
    """``max(0, 1 − hours_per_week / free capacity)``; 0 when nothing is free."""
    if free_hours <= 0:
        return 0.0
    return max(0.0, 1 - (directive.get("hours_per_week") or 0) / free_hours)


def tier(directive: Directive, profile: Profile, *, blocked: bool = False) -> int:
    if blocked:
        return UNSCHEDULABLE_TIER
    by_basis = BASIS_TIER.get(directive["basis"], OTHER_BASIS_TIER)
    if profile == Profile.CLIENT_FIRST and by_basis > 1:
        return 2
    return by_basis


# --- policy -------------------------------------------------------------------


def effective_policy(
    terms: Mapping[str, Any],
    profile: str | Profile | None = None,
    weights: Mapping[str, float] | Weights | None = None,
) -> tuple[Profile, dict[str, float]]:
    """The profile and weights a ranking uses.

    Without overrides, the contract's policy: its profile, and its custom
    weights if it has any, else the profile's.  A what-if ``profile`` is a
    whole policy: that profile with its own weights, unless ``weights`` are
    given too.  ``weights`` (all five, summing to 1) always win; the profile
    still decides the tiers.
    """
    policy = terms.get("policy") or {}
    try:
        chosen = Profile(profile if profile is not None else policy.get("profile",
                                                                        "contract_first"))
    except ValueError:
        raise ValidationFailed([
            ("profile", f"must be one of {', '.join(p.value for p in Profile)}"),
        ]) from None
    custom = weights if weights is not None else (
        policy.get("weights") if profile is None else None
    )
    if custom is None:
        return chosen, dict(PROFILE_WEIGHTS[chosen])
    checked = custom if isinstance(custom, Weights) else Weights.model_validate(dict(custom))
    return chosen, {name: float(getattr(checked, name)) for name in COMPONENTS}


# --- ranking and schedule -----------------------------------------------------


def rank_directives(
    terms: Mapping[str, Any],
    directives: Iterable[Directive],
    reference_date: date,
    *,
    profile: str | Profile | None = None,
    weights: Mapping[str, float] | Weights | None = None,
    conflicts: Conflicts | None = None,
) -> list[dict[str, Any]]:
    """The ranked entries of every active directive (SPEC §9 priority entry shape)."""
    chosen, weighting = effective_policy(terms, profile, weights)
    return rank(ContractState(terms, directives), reference_date, chosen, weighting,
                conflicts=conflicts)


def conflict_records(state: ContractState,
                     conflicts: Conflicts | None) -> Iterable[Mapping[str, Any]]:
    """The conflict records of a view, or every conflict detected in the state (open)."""
    if conflicts is None:
        return [{"kind": found.kind, "members": found.members}
                for found in find_conflicts(state)]
    return conflicts.values() if isinstance(conflicts, Mapping) else conflicts


Order = tuple[int, float, int, str]
"""The ranking order: tier, minus score, issue order, id (no two directives tie)."""
Scored = tuple[Directive, int, float, dict[str, Any], int, tuple[Order, dict[str, Any]]]
"""A directive's record, tier by basis, score, components, micro-hours asked, and its place
in the order and its entry, blocked or not as it was then (``RankMemo``)."""


class RankMemo:
    """What a ranking worked out for each directive, kept for the next ranking of the same
    contract (the projection ranks a contract once per batch): a directive whose record is
    the same object (records are replaced, never changed in place) keeps its score,
    components, tier by basis and hours, as long as what they depend on besides the record
    (reference date, free capacity, profile, weights, the contract's indicators) is the
    same.  Such a directive's entry and place in the order are kept too, so a ranking made
    with a memo is changed by the next one (ranks and schedules filled in again): read it
    (the projection encodes it) before ranking again.  Only the memo's owner ranks with
    it, one ranking at a time."""

    def __init__(self) -> None:
        self.inputs: tuple[Any, ...] | None = None
        self.scored: dict[str, Scored] = {}
        """Directive id → what the last ranking worked out for it (``Scored``)."""
        self.sides = ConflictSides()
        """The open conflicts of the last ranking, by member (``ConflictSides``)."""
        self.written: Iterable[str] | None = None
        """Set by the memo's owner before a ranking whose ``conflicts`` is the conflict view
        the last one ranked with: the ids of the records written into it since
        (``ServiceContract.conflicts_written``), so that only they are counted again.
        ``None``: every record is looked at.  A ranking uses it once."""


def rank(
    state: ContractState,
    reference_date: date,
    profile: Profile,
    weights: Mapping[str, float],
    *,
    conflicts: Conflicts | None = None,
    memo: RankMemo | None = None,
) -> list[dict[str, Any]]:
    """The ranking of a prepared state under a decided profile and weights.

    The components are the functions above, written out in one loop (this is
    the loop every ranking of a large contract pays for): the same
    expressions in the same order, so every float is the one they give.
    Urgency and efficiency take few distinct inputs and are computed once each;
    with a ``memo``, a directive scored by the last ranking is not scored again.
    """
    indicator_keys = frozenset(i["key"] for i in state.terms.get("indicators") or ())
    free_hours = state.free_hours
    w_need, w_urgency, w_indicator, w_legitimacy, w_efficiency = (
        weights[name] for name in COMPONENTS
    )
    remembered: dict[str, Scored] = {}
    if memo is not None:
        depends_on = (reference_date, free_hours, profile,
                      tuple(weights[name] for name in COMPONENTS), indicator_keys)
        if memo.inputs != depends_on or len(memo.scored) > 2 * len(state.arrived) + 100:
            memo.inputs, memo.scored = depends_on, {}  # (withdrawn directives dropped too)
        remembered = memo.scored
    keep = memo is not None
    sides = memo.sides if memo is not None else ConflictSides()
    written = memo.written if memo is not None else None
    if written is not None and isinstance(conflicts, Mapping):
        sides.update_written(conflicts, written)
    else:
        sides.update(conflict_records(state, conflicts))
    if memo is not None:
        memo.written = None
    blocked, sided = sides.blocked, sides.sided
    # Entries share equal component and schedule dicts (a ranking is read, never
    # changed in place): a large contract has few distinct values of each.
    need_by_inputs: dict[tuple[Any, Any], dict[str, float]] = {}
    """(vulnerability, people affected) → the need component."""
    urgency_by_due: dict[Any, dict[str, float]] = {}
    by_hours: dict[Any, tuple[dict[str, float], int]] = {}
    """Hours a week asked → the efficiency component and those hours in micro-hours."""
    by_basis: dict[str, tuple[dict[str, float], int]] = {}
    """Basis → its legitimacy component and its tier (when not blocked)."""
    served = {"value": 1.0, "weight": w_indicator, "contribution": w_indicator * 1.0}
    not_served = {"value": 0.0, "weight": w_indicator, "contribution": w_indicator * 0.0}
    scored: list[tuple[int, float, int, str, int]] = []
    """Each directive's place in the order (``Order``), then its index in ``state.arrived``."""
    entries: list[dict[str, Any]] = []
    asking: list[int] = []
    """Micro-hours each directive asks a week, by its index in ``state.arrived``."""
    for index, directive in enumerate(state.arrived):  # scored in any order, then sorted
        key = directive["id"]
        before = remembered.get(key)
        if before is not None and before[0] is directive:  # scored by the last ranking
            again = before[5]
            if again[0][0] == (UNSCHEDULABLE_TIER if key in blocked else before[1]):
                scored.append((*again[0], index))  # blocked or not as then: its order and
                entries.append(again[1])  # entry again
                asking.append(before[4])
                continue
            placed, score, components, micro = before[1:5]
        else:
            get = directive.get
            basis = directive["basis"]
            inputs = (get("vulnerability"), get("people_affected"))
            c_need = need_by_inputs.get(inputs)
            if c_need is None:
                people = inputs[1] or 0
                n = 0.5 * (inputs[0] or 0) + 0.5 * min(1.0, people / 100)
                c_need = need_by_inputs[inputs] = {"value": n, "weight": w_need,
                                                   "contribution": w_need * n}
            due = get("due")
            c_urgency = urgency_by_due.get(due)
            if c_urgency is None:
                u = urgency(directive, reference_date)
                c_urgency = urgency_by_due[due] = {"value": u, "weight": w_urgency,
                                                   "contribution": w_urgency * u}
            c_indicator = served if get("indicator") in indicator_keys else not_served
            known = by_basis.get(basis)
            if known is None:
                lg = LEGITIMACY[basis]
                known = by_basis[basis] = (
                    {"value": lg, "weight": w_legitimacy, "contribution": w_legitimacy * lg},
                    tier(directive, profile))
            c_legitimacy, placed = known
            asked = get("hours_per_week")
            hours_known = by_hours.get(asked)
            if hours_known is None:
                e = efficiency(directive, free_hours)
                hours_known = by_hours[asked] = (
                    {"value": e, "weight": w_efficiency, "contribution": w_efficiency * e},
                    round(asked * MICRO) if asked else 0)
            c_efficiency, micro = hours_known
            components = {"need": c_need, "urgency": c_urgency, "indicator": c_indicator,
                          "legitimacy": c_legitimacy, "efficiency": c_efficiency}
            # Summed in the documented order, so a reader adding them up by hand gets this float.
            score = 100 * (c_need["contribution"] + c_urgency["contribution"]
                           + c_indicator["contribution"] + c_legitimacy["contribution"]
                           + c_efficiency["contribution"])
        asking.append(micro)
        shown = UNSCHEDULABLE_TIER if key in blocked else placed
        # The entry is made here, where the directive is at hand; its rank and schedule are
        # filled in below, once the order is known.
        entry = {"directive_id": key, "rank": 0, "tier": shown, "score": score,
                 "components": components, "schedule": None, "subject": directive["subject"],
                 "issuer": directive.get("issuer"), "basis": directive["basis"]}
        issued = directive.get("issued_version") or 0
        scored.append((shown, -score, issued, str(key), index))
        entries.append(entry)
        if keep:  # kept with its entry and order, blocked or not
            remembered[key] = (directive, placed, score, components, micro,
                               ((shown, -score, issued, str(key)), entry))
    scored.sort()
    schedule = WeeklySchedule(state)
    arrived, weeks_of = state.arrived, state.weeks
    not_scheduled = {"outcome": BLOCKED, "hours_granted": 0.0}
    left_out = {outcome: {"outcome": outcome, "hours_granted": 0.0}
                for outcome in set(one_side_outcomes().values())}
    carried: set[Hashable] = set()
    """The open one-side conflicts whose best-ranked schedulable member was reached."""
    asked_nothing: dict[int, dict[str, Any]] = {}
    ranked = []
    for position, (placed, _, _, key, index) in enumerate(scored, 1):
        entry, asked = entries[index], asking[index]
        sides_of = sided.get(key) if placed != UNSCHEDULABLE_TIER else None
        reached = None  # most directives are in no open one-side conflict: no list made
        if sides_of:
            reached = [outcome for conflict, outcome in sides_of.items() if conflict in carried]
            if not reached:
                carried.update(sides_of)
        if placed == UNSCHEDULABLE_TIER:
            granted = not_scheduled
        elif reached:
            granted = left_out[COVERED if COVERED in reached else reached[0]]
        elif asked <= 0 or not (weeks := weeks_of(arrived[index])):
            granted = asked_nothing.get(asked) or asked_nothing.setdefault(
                asked, schedule.grant_hours(asked, range(0)))
        else:
            granted = schedule.grant_hours(asked, weeks)
        entry["rank"], entry["schedule"] = position, granted
        ranked.append(entry)
    return ranked


class WeeklySchedule:
    """Free capacity of each week of the contract period, handed out in ranking order.

    Hours are whole micro-hours, so what is left of a week is exact.
    """

    def __init__(self, state: ContractState) -> None:
        free = max(0, to_micro(state.weekly_hours) - to_micro(state.committed_hours))
        self.first_week = state.period.first_week
        self.free = [free] * (state.period.last_week - self.first_week + 1)
        self.scheduled: dict[int, dict[str, Any]] = {}
        """Micro-hours → the schedule of a directive given all of them (shared: read only)."""

    def grant_hours(self, asked: int, weeks: range) -> dict[str, Any]:
        """Grant ``asked`` micro-hours a week over ``weeks`` (week numbers) what each week
        can still give; answer the schedule.

        ``hours_granted`` is the smallest weekly grant; the outcome is
        ``scheduled`` when every week gave all it asked, ``deferred`` when no
        week gave anything, else ``partial``.  Asking for no hours, or over no
        week of the period, asks nothing and is ``scheduled``.
        """
        if asked <= 0 or not weeks:
            return self._scheduled(asked)
        start, stop = weeks.start - self.first_week, weeks.stop - self.first_week
        left = self.free[start:stop]
        least = min(left)
        if least >= asked:
            self.free[start:stop] = [hours - asked for hours in left]
            return self._scheduled(asked)
        if max(left) == 0:
            return {"outcome": DEFERRED, "hours_granted": 0.0}
        # each week gives what it can: all it has left, or what is asked
        self.free[start:stop] = [hours - asked if hours > asked else 0 for hours in left]
        return {"outcome": PARTIAL, "hours_granted": from_micro(least)}


    def _scheduled(self, asked: int) -> dict[str, Any]:
        known = self.scheduled.get(asked)
        if known is None:
            known = self.scheduled[asked] = {"outcome": SCHEDULED,
                                             "hours_granted": from_micro(asked)}
        return known


def priority_view(
    terms: Mapping[str, Any],
    directives: Iterable[Directive],
    reference_date: date,
    *,
    profile: str | Profile | None = None,
    weights: Mapping[str, float] | Weights | None = None,
    conflicts: Conflicts | None = None,
    memo: RankMemo | None = None,
) -> dict[str, Any]:
    """The priority view without its address: the caller adds ``contract_id`` and
    ``position`` or ``version``.  ``profile`` and ``weights`` are what-if overrides;
    ``conflicts`` is the contract's conflict view; ``memo`` the last ranking's (``rank``)."""
    return priority_view_of(
        ContractState(terms, directives), reference_date, profile=profile, weights=weights,
        conflicts=conflicts, memo=memo,
    )


def priority_view_of(
    state: ContractState,
    reference_date: date,
    *,
    profile: str | Profile | None = None,
    weights: Mapping[str, float] | Weights | None = None,
    conflicts: Conflicts | None = None,
    memo: RankMemo | None = None,
) -> dict[str, Any]:
    """``priority_view`` of a prepared state (share one state with the detectors)."""
    chosen, weighting = effective_policy(state.terms, profile, weights)
    return {
        "profile": chosen.value,
        "weights": weighting,
        "reference_date": reference_date.isoformat(),
        "priorities": rank(state, reference_date, chosen, weighting, conflicts=conflicts,
                           memo=memo),
    }
