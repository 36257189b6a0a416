"""What the dashboard works out for display only: who may override whom, the weekly load.

Pure functions of what the use cases returned; nothing here
decides anything.  The contract itself still checks every decision (SPEC §6:
``ServiceContract._authority`` and ``_may_override``); the decide form shows
the same rule beforehand so that a resolver knows when to escalate instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
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


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def _day(text: Any, default: date) -> date:
    try:
        return date.fromisoformat(str(text))
    except ValueError:
        return default


def weekly_load(
    terms: Mapping[str, Any],
    directives: Iterable[Mapping[str, Any]],
    conflicts: Iterable[Mapping[str, Any]],
    max_weeks: int = 160,
) -> dict[str, Any]:
    """Hours asked per ISO week of the contract's period against its weekly capacity.

    Asked: the committed hours plus every active directive's ``hours_per_week``
    over the weeks of its window.  ``runs``: the weeks of each open
    ``over_capacity`` conflict (the domain's verdict, which may count one-side
    conflicts once); ``over``: the weeks where what is asked exceeds capacity.
    """
    period = terms.get("period") or {}
    start = _day(period.get("start"), date.today())
    end = _day(period.get("end"), start + timedelta(weeks=52))
    capacity = terms.get("capacity") or {}
    weekly_capacity = float(capacity.get("staff", 0)) * float(
        capacity.get("hours_per_staff_week", 0))
    committed = float(capacity.get("committed_hours_per_week", 0))
    monday = start - timedelta(days=start.weekday())
    weeks: list[str] = []
    while monday <= end and len(weeks) < max_weeks:
        weeks.append(iso_week(monday))
        monday += timedelta(weeks=1)
    index = {week: i for i, week in enumerate(weeks)}
    asked = [committed] * len(weeks)
    for directive in directives:
        if directive.get("status", "active") != "active":
            continue
        hours = float(directive.get("hours_per_week") or 0)
        if not hours:
            continue
        window = directive.get("window") or {}
        first = iso_week(_day(window.get("from"), start))
        last = iso_week(_day(window.get("to"), end))
        for week in weeks[index.get(first, 0): index.get(last, len(weeks) - 1) + 1]:
            asked[index[week]] += hours
    runs = []
    for conflict in conflicts:
        if conflict.get("kind") == "over_capacity" and conflict.get("status") == "open":
            marked = [w for w in (conflict.get("details") or {}).get("weeks", []) if w in index]
            if marked:
                runs.append({"first": marked[0], "last": marked[-1], "conflict": conflict["id"]})
    return {
        "weeks": weeks,
        "asked": [round(h, 2) for h in asked],
        "capacity": weekly_capacity,
        "over": [week for week, hours in zip(weeks, asked, strict=True)
                 if hours > weekly_capacity],
        "runs": runs,
    }
