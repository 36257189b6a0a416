"""Conflict records: the episodes a contract's conflict view holds, and how each one changes.

The view is a JSON-native dict from conflict id to its record, the SPEC §9
conflict shape (less the explanations, which are written from ``details`` in
each language outside the domain) plus ``member_changes``, ``escalations``,
``resolution`` and the versions and times of dissolving and resolving.

A conflict is an episode (SPEC §4): it opens when its condition first holds,
keeps its ``id``, ``opened_version``, ``level``, ``due`` and escalations while
directives join or leave it, and dissolves when the condition no longer
holds.  Its id is derived from the contract, the kind, the version of the
event that opened it and an ordinal among the conflicts that event opened, so
a replay gives the same ids.  Records are replaced, never changed in place:
the functions here answer the next record.  ``domain.conflict_tracker``
decides which of them applies after each event.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from hashlib import sha1
from typing import Any
from uuid import UUID

from domain.errors import ValidationFailed

OPEN, RESOLVED, DISSOLVED = "open", "resolved", "dissolved"
STATUSES = (OPEN, RESOLVED, DISSOLVED)
LISTED_BY_DEFAULT = frozenset({OPEN, RESOLVED})

CONFLICT_NAMESPACE = UUID("6f1d3c2a-5b7e-5a1f-9c3d-2e4b6a8c0d17")

ConflictView = dict[str, dict[str, Any]]
Record = Mapping[str, Any]


def episode_id(contract_id: str, kind: str, version: int, ordinal: int) -> str:
    """``uuid5(CONFLICT_NAMESPACE, "<contract>|<kind>|<version>|<ordinal>")`` as a string."""
    return _uuid5(f"{contract_id}|{kind}|{version}|{ordinal}")


def legacy_id(kind: str, members: list[str], *qualifiers: str) -> str:
    """The id the first conflict fold gave a member set (events recorded before episodes).

    ``"<kind>|<sorted members>"``, then ``"|<first week>..<last week>"`` for
    ``over_capacity`` and ``"|<rule>"`` for ``rule_violation``.
    """
    return _uuid5("|".join([kind, ",".join(sorted(members)), *qualifiers]))


def _uuid5(name: str) -> str:
    digest = bytearray(sha1(CONFLICT_NAMESPACE.bytes + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def opened(
    conflict_id: str,
    kind: str,
    members: list[str],
    details: dict[str, Any],
    *,
    version: int,
    at: datetime,
    sla_hours: float,
    level: int = 0,
    due: str | None = None,
) -> dict[str, Any]:
    """A conflict opening at ``version``: level 0, due ``sla_hours`` after ``at``, unless a
    split hands it the level and due of the conflict it split from."""
    return {
        "id": conflict_id,
        "kind": kind,
        "members": members,
        "status": OPEN,
        "level": level,
        "opened_version": version,
        "opened_at": at.isoformat(),
        "due": due or (at + timedelta(hours=sla_hours)).isoformat(),
        "details": details,
    }


SHOWN_EMPTY: dict[str, Any] = {
    "member_changes": [], "escalations": [], "dissolved_version": None, "dissolved_at": None,
    "resolution": None, "resolved_version": None, "resolved_at": None,
}
"""Fields a record holds only once they say something (a snapshot of a contract with
thousands of conflicts stays small); ``shown`` puts them back for readers."""


def shown(record: Record) -> dict[str, Any]:
    """The record as the API and webhooks show it: every field, empty ones included."""
    return {**SHOWN_EMPTY, **record}


def continued(
    record: Record,
    members: list[str],
    details: dict[str, Any],
    *,
    version: int,
    level: int | None = None,
    due: str | None = None,
) -> dict[str, Any]:
    """An open conflict as a change leaves it: current members and details, the change of
    members kept; ``level`` and ``due`` only ever rise and fall, respectively (a merge)."""
    changes = record.get("member_changes", [])
    if record["members"] != members:  # a list compare first: most changes keep the members
        before = set(record["members"])
        moved = before.symmetric_difference(members)
        if moved:
            changes = [*changes, {"version": version,
                                  "joined": sorted(m for m in moved if m not in before),
                                  "left": sorted(m for m in moved if m in before)}]
    return {
        **record,
        "members": members,
        "details": details,
        **({"member_changes": changes} if changes else {}),
        "level": max(record["level"], level if level is not None else record["level"]),
        "due": min(record["due"], due, key=_moment) if due else record["due"],
    }


def dissolved(
    record: Record, *, version: int, at: datetime, merged_into: str | None = None,
) -> dict[str, Any]:
    """A conflict whose condition no longer holds (or that a merge folded into another)."""
    details = dict(record["details"])
    if merged_into is not None:
        details["merged_into"] = merged_into
    return {**record, "status": DISSOLVED, "details": details,
            "dissolved_version": version, "dissolved_at": at.isoformat()}


def resolved(
    record: Record, decision: Mapping[str, Any], *, version: int, at: datetime,
) -> dict[str, Any]:
    """A conflict a decision settled at ``version``."""
    return {**record, "status": RESOLVED, "resolution": dict(decision),
            "resolved_version": version, "resolved_at": at.isoformat()}


def escalated(
    record: Record,
    *,
    to_level: int,
    reason: str,
    by: str,
    version: int,
    at: datetime,
    sla_hours: float,
) -> dict[str, Any]:
    """A conflict escalated at ``version``: due ``sla_hours`` after ``at``."""
    step = {"from_level": record["level"], "to_level": to_level, "reason": reason, "by": by,
            "version": version, "at": at.isoformat()}
    return {
        **record,
        "level": to_level,
        "due": (at + timedelta(hours=sla_hours)).isoformat(),
        "escalations": [*record.get("escalations", []), step],
    }


def precedent(record: Record) -> dict[str, Any]:
    """A resolved conflict as a later conflict cites it (``details.precedents``)."""
    decision = record.get("resolution") or {}
    return {"conflict_id": record["id"], "outcome": decision.get("outcome"),
            "rationale": decision.get("rationale"), "decided_by": decision.get("resolver"),
            "version": record.get("resolved_version")}


def lapsed(record: Record, now: datetime) -> bool:
    """Whether a conflict is open and its due time has passed at ``now``."""
    return record["status"] == OPEN and datetime.fromisoformat(record["due"]) <= now


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def listed(view: Mapping[str, Record], status: str | None = None) -> list[dict[str, Any]]:
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
        shown(record)
        for record in sorted(view.values(), key=lambda r: (r["opened_version"], r["id"]))
        if record["status"] in wanted
    ]
