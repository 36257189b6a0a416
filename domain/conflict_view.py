"""The conflict view and its lifecycle: how detected conflicts open and dissolve.

The view is a JSON-native dict from conflict id to its record, the SPEC §9
conflict shape plus ``dissolved_version`` and ``dissolved_at``, ``resolution``
with ``resolved_version`` and ``resolved_at``, and ``escalations`` (the
history of its levels).  It changes
only through pure folds, one contract version at a time:
``advance_conflicts(view, detected, version=v, at=t, sla_hours=h)`` takes the
conflicts detected on the state at version ``v`` (recorded at time ``t``)
and answers the next view.  The live projection and replay both fold every
version of a contract in order with this one function, so the live view at
version ``v`` equals the view replayed to ``v`` by construction.  Folding the
same version twice changes nothing, so a repeated delivery is harmless.

Resolution and escalation (SPEC §6) change one record each: ``resolved``
and ``escalated`` answer the record after a ``ConflictResolved`` or a
``ConflictEscalated`` event.  ``advance_conflicts`` keeps a resolved record
as it is, and keeps the ``level`` and ``due`` of an open one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from domain.conflicts import Detection
from domain.errors import ValidationFailed

OPEN, RESOLVED, DISSOLVED = "open", "resolved", "dissolved"
STATUSES = (OPEN, RESOLVED, DISSOLVED)
LISTED_BY_DEFAULT = frozenset({OPEN, RESOLVED})

ConflictView = dict[str, dict[str, Any]]


def advance_conflicts(
    previous: Mapping[str, Mapping[str, Any]],
    detected: Iterable[Detection],
    *,
    version: int,
    at: datetime,
    sla_hours: float,
) -> ConflictView:
    """The conflict view after version ``version``, recorded at ``at``.

    - A detected conflict the view does not hold opens: at ``version`` and
      ``at``, level 0, due ``sla_hours`` after ``at``.
    - A detected conflict that is open stays open with its level and due
      time; its explanation and details are refreshed (an amendment may
      change a value without changing the members).
    - A detected conflict that had dissolved opens again, as new: the same
      members in conflict again are a fresh matter with a fresh deadline.
    - A resolved conflict stays resolved.
    - An open conflict that is no longer detected dissolves at ``version``.
    """
    found = {detection.id: detection for detection in detected}
    view: ConflictView = {}
    for conflict_id, record in previous.items():
        detection = found.get(conflict_id)
        status = record["status"]
        if detection is not None and status == OPEN:
            view[conflict_id] = {
                **record,
                "explanation": detection.explanation,
                "details": detection.details,
            }
        elif detection is not None and status == DISSOLVED:
            view[conflict_id] = opened(detection, version=version, at=at, sla_hours=sla_hours)
        elif detection is None and status == OPEN:
            view[conflict_id] = {
                **record,
                "status": DISSOLVED,
                "dissolved_version": version,
                "dissolved_at": at.isoformat(),
            }
        else:
            view[conflict_id] = dict(record)
    for conflict_id, detection in found.items():
        if conflict_id not in view:
            view[conflict_id] = opened(detection, version=version, at=at, sla_hours=sla_hours)
    return view


def opened(detection: Detection, *, version: int, at: datetime, sla_hours: float) -> dict[str, Any]:
    """The record of a conflict that opens at ``version``: level 0, due after the SLA."""
    return {
        **detection.as_dict(),
        "status": OPEN,
        "level": 0,
        "opened_version": version,
        "opened_at": at.isoformat(),
        "due": (at + timedelta(hours=sla_hours)).isoformat(),
        "dissolved_version": None,
        "dissolved_at": None,
        "resolution": None,
        "resolved_version": None,
        "resolved_at": None,
        "escalations": [],
    }


def resolved(
    record: Mapping[str, Any], decision: Mapping[str, Any], *, version: int, at: datetime,
) -> dict[str, Any]:
    """The record of a conflict a decision settled at ``version``."""
    return {
        **record,
        "status": RESOLVED,
        "resolution": dict(decision),
        "resolved_version": version,
        "resolved_at": at.isoformat(),
    }


def escalated(
    record: Mapping[str, Any],
    *,
    to_level: int,
    reason: str,
    by: str,
    version: int,
    at: datetime,
    sla_hours: float,
) -> dict[str, Any]:
    """The record of a conflict escalated at ``version``: due ``sla_hours`` after ``at``."""
    step = {"from_level": record["level"], "to_level": to_level, "reason": reason, "by": by,
            "version": version, "at": at.isoformat()}
    return {
        **record,
        "level": to_level,
        "due": (at + timedelta(hours=sla_hours)).isoformat(),
        "escalations": [*record.get("escalations", []), step],
    }


def lapsed(record: Mapping[str, Any], now: datetime) -> bool:
    """Whether a conflict is open and its due time has passed at ``now``."""
    return record["status"] == OPEN and datetime.fromisoformat(record["due"]) <= now


def fold_history(
    steps: Iterable[tuple[int, datetime, Iterable[Detection]]],
    *,
    sla_hours: float,
    start: Mapping[str, Mapping[str, Any]] | None = None,
) -> ConflictView:
    """Fold ``(version, at, detected)`` steps in order, from ``start`` or an empty view."""
    view: ConflictView = {key: dict(record) for key, record in (start or {}).items()}
    for version, at, detected in steps:
        view = advance_conflicts(view, detected, version=version, at=at, sla_hours=sla_hours)
    return view


def listed(
    view: Mapping[str, Mapping[str, Any]], status: str | None = None,
) -> list[dict[str, Any]]:
    """The conflicts a view shows for ``?status=``: open and resolved unless told otherwise.

    ``status`` is ``open``, ``resolved``, ``dissolved``, ``all`` or ``None``
    (the default listing).  Oldest first, then by id.
    """
    if status is None:
        wanted = LISTED_BY_DEFAULT
    elif status == "all":
        wanted = frozenset(STATUSES)
    elif status in STATUSES:
        wanted = frozenset({status})
    else:
        raise ValidationFailed([("status", f"must be one of {', '.join((*STATUSES, 'all'))}")])
    return [
        dict(record)
        for record in sorted(view.values(), key=lambda r: (r["opened_version"], r["id"]))
        if record["status"] in wanted
    ]
