"""What the dashboard works out for display only: who may override whom, the weekly load.

Pure functions of what the use cases returned; nothing here
decides anything.  The contract itself still checks every decision (SPEC §6:
``ServiceContract._authority`` and ``_may_override``); the decide form shows
the same rule beforehand so that a resolver knows when to escalate instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from domain.organisations import Caller, Role


def authority(
    chain: Sequence[str],
    conflict: Mapping[str, Any],
    directives: Mapping[str, Mapping[str, Any]],
    caller: Caller,
) -> dict[str, Any]:
    """Who may decide the conflict at its level, and who may override each member.

    ``members``: one row per member directive with its issuer, the issuer's level
    in the chain (``None``: outside it), the organisations that may override it
    and whether the caller's organisation is one of them.
    """
    level = int(conflict.get("level") or 0)
    caller_level = chain.index(caller.org) if (
        caller.role is Role.RESOLVER and caller.org in chain) else None
    may_decide = caller_level is not None and caller_level >= level
    rows = []
    for directive_id in conflict.get("members") or []:
        directive = directives.get(directive_id) or {}
        issuer = directive.get("issuer")
        issuer_level = chain.index(issuer) if issuer in chain else None
        lowest = level if issuer_level is None else max(level, issuer_level)
        rows.append({
            "id": directive_id,
            "issuer": issuer,
            "summary": directive.get("summary") or directive.get("subject") or directive_id,
            "status": directive.get("status"),
            "issuer_level": issuer_level,
            "overriders": list(chain[lowest:]),
            "caller_may_override": may_decide and (
                issuer_level is None or (caller_level or 0) >= issuer_level),
        })
    return {
        "level": level,
        "deciders": list(chain[level:]),
        "caller_level": caller_level,
        "may_decide": may_decide,
        "may_escalate": may_decide and level + 1 < len(chain),
        "members": rows,
    }


def weekly_load(
    terms: Mapping[str, Any],
    loads: Mapping[str, float],
    conflicts: Iterable[Mapping[str, Any]],
    max_weeks: int = 160,
) -> dict[str, Any]:
    """The contract's load per ISO week against its weekly capacity, for the chart.

    ``loads``: each week's load as the domain counts it (``ServiceContract.weekly_load``:
    committed hours, one side of each open contradiction or duplicate, nothing of a
    blocked directive), so the chart shows what an over-capacity run measures.
    ``runs``: the weeks of each open ``over_capacity`` conflict; ``over``: the weeks
    whose load exceeds capacity (a decided run's weeks may still be over).
    """
    capacity = terms.get("capacity") or {}
    weekly_capacity = float(capacity.get("staff", 0)) * float(
        capacity.get("hours_per_staff_week", 0))
    weeks = list(loads)[:max_weeks]
    index = set(weeks)
    runs = []
    for conflict in conflicts:
        if conflict.get("kind") == "over_capacity" and conflict.get("status") == "open":
            marked = [w for w in (conflict.get("details") or {}).get("weeks", []) if w in index]
            if marked:
                runs.append({"first": marked[0], "last": marked[-1], "conflict": conflict["id"]})
    return {
        "weeks": weeks,
        "load": [round(loads[week], 2) for week in weeks],
        "capacity": weekly_capacity,
        "over": [week for week in weeks if loads[week] > weekly_capacity],
        "runs": runs,
    }
