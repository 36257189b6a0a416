"""What changed in a contract between two of its versions (SPEC §7, the §9 diff shape).

A diff compares two states of one contract, each as it stood at a version:
its terms and status, its directives, its conflict view and its ranking.
Whoever replayed the two states hands them in; the comparison is pure.

- Directives are ``added`` (present at the later version, absent at the
  earlier), ``changed`` (an amendable field differs: each difference listed
  with its ``from`` and ``to``), ``withdrawn`` or ``overridden`` (their status
  became that in between).  A directive issued and withdrawn in between is
  both added and withdrawn.
- Conflicts are ``opened`` (present at the later version and absent at the
  earlier, or opened again after it), ``updated`` (directives joined or left
  them: ``member_changes`` grew), ``resolved`` or ``dissolved`` (their
  status became that in between) and ``escalated`` (their level rose: the
  entry says ``from_level`` and ``to_level``; a conflict that opened in
  between rose from level 0).
- ``ranks`` lists every directive whose rank differs, ``null`` where it was
  not ranked (not yet issued, or no longer active).

Every list has one deterministic order: directives in issue order, conflicts
in opening order, then by id; ranks by the later rank, unranked last.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.conflict_records import shown
from domain.directives import DirectivePatch

Record = Mapping[str, Any]

WITHDRAWN, OVERRIDDEN = "withdrawn", "overridden"
RESOLVED, DISSOLVED = "resolved", "dissolved"

AMENDABLE_FIELDS: tuple[str, ...] = tuple(DirectivePatch.model_fields)
"""The fields an amendment may change: the ones ``changed`` compares."""

COMPARED_TERMS: tuple[str, ...] = ("stakeholders", "policy", "escalation_chain",
                                   "resolution_sla_hours", "rules")
"""The terms that change after drafting (stakeholders added, policy changed)."""


@dataclass(frozen=True)
class ContractAt:
    """A contract as it stood at one version: the input of a diff."""

    version: int
    status: str
    terms: Mapping[str, Any]
    directives: Mapping[str, Record]
    conflicts: Mapping[str, Record]
    ranks: Mapping[str, int] = field(default_factory=dict)
    """Directive id → rank in the ranking at this version."""

    @classmethod
    def of(
        cls,
        *,
        version: int,
        status: str,
        terms: Mapping[str, Any],
        directives: Mapping[str, Record],
        conflicts: Mapping[str, Record],
        ranking: Iterable[Record],
    ) -> ContractAt:
        """A state from a ranking as ``domain.priorities`` answers it (entries in rank order)."""
        ranks = {str(entry["directive_id"]): int(entry["rank"]) for entry in ranking}
        return cls(version, status, terms, directives, conflicts, ranks)


def contract_diff(before: ContractAt, after: ContractAt) -> dict[str, Any]:
    """The changes from ``before`` to ``after`` in the SPEC §9 diff shape (plus ``terms``)."""
    return {
        "from_version": before.version,
        "to_version": after.version,
        "directives": directive_changes(before.directives, after.directives),
        "conflicts": conflict_changes(before.conflicts, after.conflicts,
                                      from_version=before.version),
        "ranks": rank_changes(before.ranks, after.ranks),
        "terms": term_changes(before, after),
    }


# --- directives -------------------------------------------------------------------


def directive_changes(
    before: Mapping[str, Record], after: Mapping[str, Record],
) -> dict[str, list[dict[str, Any]]]:
    added, changed, withdrawn, overridden = [], [], [], []
    for directive in sorted(after.values(), key=_issue_order):
        earlier = before.get(directive["id"])
        if earlier is None:
            added.append(dict(directive))
        else:
            changes = field_changes(earlier, directive)
            if changes:
                changed.append({**directive, "changes": changes})
        was = earlier["status"] if earlier is not None else None
        if directive["status"] == WITHDRAWN and was != WITHDRAWN:
            withdrawn.append(dict(directive))
        if directive["status"] == OVERRIDDEN and was != OVERRIDDEN:
            overridden.append(dict(directive))
    return {"added": added, "changed": changed, "withdrawn": withdrawn,
            "overridden": overridden}


def field_changes(before: Record, after: Record) -> dict[str, dict[str, Any]]:
    """Each amendable field whose value differs: ``{field: {"from", "to"}}``."""
    return {
        name: {"from": before.get(name), "to": after.get(name)}
        for name in AMENDABLE_FIELDS
        if before.get(name) != after.get(name)
    }


def _issue_order(directive: Record) -> tuple[int, str]:
    return directive.get("issued_version") or 0, str(directive["id"])


# --- conflicts --------------------------------------------------------------------


def conflict_changes(
    before: Mapping[str, Record], after: Mapping[str, Record], *, from_version: int,
) -> dict[str, list[dict[str, Any]]]:
    opened, updated, resolved, dissolved, escalated = [], [], [], [], []
    for conflict in sorted(after.values(), key=_opening_order):
        earlier = before.get(conflict["id"])
        reopened = conflict["opened_version"] > from_version
        if earlier is None or reopened:
            opened.append(shown(conflict))
        elif len(conflict.get("member_changes") or ()) > len(earlier.get("member_changes") or ()):
            updated.append(shown(conflict))
        was = None if earlier is None or reopened else earlier["status"]
        if conflict["status"] == RESOLVED and was != RESOLVED:
            resolved.append(shown(conflict))
        if conflict["status"] == DISSOLVED and was != DISSOLVED:
            dissolved.append(shown(conflict))
        from_level = 0 if earlier is None or reopened else int(earlier.get("level") or 0)
        to_level = int(conflict.get("level") or 0)
        if to_level > from_level:
            escalated.append({**shown(conflict), "from_level": from_level, "to_level": to_level})
    return {"opened": opened, "updated": updated, "resolved": resolved,
            "dissolved": dissolved, "escalated": escalated}


def _opening_order(conflict: Record) -> tuple[int, str]:
    return conflict["opened_version"], str(conflict["id"])


# --- ranks and terms ----------------------------------------------------------------


def rank_changes(before: Mapping[str, int], after: Mapping[str, int]) -> list[dict[str, Any]]:
    """Every directive ranked at either version whose rank differs (``None``: not ranked)."""
    moved = [
        {"directive_id": directive_id, "from": before.get(directive_id),
         "to": after.get(directive_id)}
        for directive_id in before.keys() | after.keys()
        if before.get(directive_id) != after.get(directive_id)
    ]
    return sorted(moved, key=lambda entry: (
        entry["to"] is None, entry["to"] or 0, entry["from"] or 0, entry["directive_id"],
    ))


def term_changes(before: ContractAt, after: ContractAt) -> list[dict[str, Any]]:
    """The contract's status and its changeable terms, where they differ."""
    changes: list[dict[str, Any]] = []
    if before.status != after.status:
        changes.append({"field": "status", "from": before.status, "to": after.status})
    for name in COMPARED_TERMS:
        if before.terms.get(name) != after.terms.get(name):
            changes.append({"field": name, "from": before.terms.get(name),
                            "to": after.terms.get(name)})
    return changes
