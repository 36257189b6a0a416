"""Decisions and escalations of conflicts (SPEC §6): what a resolver sends, and its rules.

A decision names an ``outcome`` and sorts members of the conflict into
``upheld`` (they stand) and ``overridden`` (they leave the active set):

- ``upheld``: at least one member is upheld; overriding others is optional.
- ``merged``: the members are merged into those upheld; at least one member
  is upheld and at least one overridden (folded into them).
- ``deferred``: the matter is settled as "not now": nothing is overridden.
- ``rejected_all``: every member is overridden and none upheld; ``overridden``
  may be left empty (it then means every member) or list every member.
- ``corrected`` (a ``disputed`` conflict, SPEC §13): the member stands with
  ``corrections``, new values of the disputed fields only (the contract checks
  which); nothing is overridden.

In every outcome ``upheld`` and ``overridden`` name members only, each at
most once, never one directive in both.  These are pure rules over a
conflict's members; the aggregate applies them before it records anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, StrictBool, field_validator

from domain.directives import Correction
from domain.errors import ValidationFailed
from domain.primitives import Strict, WholeNumber

SLA_EXPIRED = "sla_expired"
"""The reason the timer gives when it escalates a conflict whose due time passed."""

DirectiveIds = Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]],
                         Field(max_length=500)]


class Outcome(StrEnum):
    UPHELD = "upheld"
    MERGED = "merged"
    DEFERRED = "deferred"
    REJECTED_ALL = "rejected_all"
    CORRECTED = "corrected"


class Decision(Strict):
    """The body of ``POST .../conflicts/{cid}/resolution``."""

    outcome: Outcome
    upheld: DirectiveIds = Field(default_factory=list)
    overridden: DirectiveIds = Field(default_factory=list)
    rationale: str = Field(min_length=1, max_length=4000)
    corrections: Correction | None = None
    """For ``corrected`` (a ``disputed`` conflict only): new values of disputed fields."""

    @field_validator("rationale")
    @classmethod
    def _said_something(cls, rationale: str) -> str:
        if not rationale.strip():
            raise ValueError("a rationale is required: say why")
        return rationale


class Escalation(Strict):
    """The body of ``POST .../conflicts/{cid}/escalation``: the level it escalates from."""

    from_level: WholeNumber = Field(ge=0, le=100)  # 1.0 is an integer in JSON Schema
    reason: str = Field(min_length=1, max_length=500)


class Approval(Strict):
    """``POST …/conflicts/{cid}/resolution/approvals``: a listed organisation's answer to a
    proposed decision (SPEC §13)."""

    approve: StrictBool
    note: str = Field(default="", max_length=2000)


def settled(decision: Decision, members: Sequence[str]) -> dict[str, Any]:
    """The decision as it is recorded, once it is consistent with the conflict's ``members``.

    Raises ``ValidationFailed`` naming every field that breaks a rule.
    """
    errors: list[tuple[str, str]] = []
    known = set(members)
    for field in ("upheld", "overridden"):
        named: list[str] = getattr(decision, field)
        outside = [key for key in named if key not in known]
        if outside:
            errors.append((field, f"{', '.join(outside)} not among the conflict's members"))
        if len(set(named)) != len(named):
            errors.append((field, "names a directive more than once"))
    both = set(decision.upheld) & set(decision.overridden)
    if both:
        errors.append(("overridden", f"{', '.join(sorted(both))} cannot be both upheld "
                                     "and overridden"))
    overridden = list(decision.overridden)
    match decision.outcome:
        case Outcome.UPHELD:
            if not decision.upheld:
                errors.append(("upheld", "an upheld outcome upholds at least one member"))
        case Outcome.MERGED:
            if not decision.upheld:
                errors.append(("upheld", "a merge keeps at least one member"))
            if not decision.overridden:
                errors.append(("overridden", "a merge folds at least one member into another"))
        case Outcome.DEFERRED:
            if decision.overridden:
                errors.append(("overridden", "a deferred conflict overrides nothing"))
        case Outcome.CORRECTED:
            if decision.overridden:
                errors.append(("overridden", "a correction overrides nothing"))
            if decision.corrections is None:
                errors.append(("corrections", "a corrected outcome gives the corrections"))
        case Outcome.REJECTED_ALL:
            if decision.upheld:
                errors.append(("upheld", "rejected_all upholds nothing"))
            if overridden and set(overridden) != known:
                errors.append(("overridden", "rejected_all overrides every member: "
                                             "list them all or none"))
            overridden = list(members)
    if decision.corrections is not None and decision.outcome is not Outcome.CORRECTED:
        errors.append(("corrections", "only a corrected outcome gives corrections"))
    if errors:
        raise ValidationFailed(errors)
    if decision.outcome is Outcome.CORRECTED:
        return {
            "outcome": decision.outcome.value,
            "upheld": list(decision.upheld) or list(members),
            "overridden": [],
            "rationale": decision.rationale,
            "corrections": decision.corrections.changes() if decision.corrections else {},
        }
    return {
        "outcome": decision.outcome.value,
        "upheld": list(decision.upheld),
        "overridden": overridden,
        "rationale": decision.rationale,
    }


__all__ = ["SLA_EXPIRED", "Approval", "Decision", "Escalation", "Outcome", "settled"]
