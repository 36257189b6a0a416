"""Replay for supervisors: what changed between two versions, and how a contract got here.

Both are computed from the event store, never from the live views in Redis.

- ``diff`` loads the contract at two versions (a snapshot and a few events
  each) and compares them with ``domain.diff``; each version is ranked with
  its own replay reference date, the Asia/Shanghai date of its last event.
- ``timeline`` folds the contract's events once, in order, into one
  aggregate, and after each event notes how the open conflicts and the top of
  the ranking moved (under the contract's policy, or under another profile:
  a what-if of the whole past).  It ranks again only when an event can move
  the ranking or the reference date has changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from eventsourcing.application import project_aggregate

from domain import access
from domain.contract import ServiceContract
from domain.diff import ContractAt, conflict_changes, contract_diff
from domain.errors import NotFound, ValidationFailed
from domain.organisations import Caller
from domain.priorities import effective_policy, rank_directives
from workflows.application import Threadneedle, shanghai_date

TOP = 3

# Events after which the ranking is what it was (on the same reference date).
RANK_NEUTRAL = frozenset({
    "ServiceContract.Activated", "ServiceContract.Suspended", "ServiceContract.Terminated",
    "ServiceContract.Closed", "ServiceContract.StakeholderAdded",
    "ServiceContract.ConflictEscalated",
})


def ranking_of(
    contract: ServiceContract, reference: date, profile: str | None = None,
) -> list[dict[str, Any]]:
    """The ranking of the contract's active directives, as its priority view orders them."""
    return rank_directives(contract.terms, contract.active_directives(), reference,
                           profile=profile)


def contract_at(contract: ServiceContract) -> ContractAt:
    """The contract as a diff sees it, ranked on the date of its last event."""
    return ContractAt.of(
        version=contract.version,
        status=contract.status,
        terms=contract.terms,
        directives=contract.directives,
        conflicts=contract.conflicts,
        ranking=ranking_of(contract, shanghai_date(contract.modified_on)),
    )


# --- diff ---------------------------------------------------------------------------


def diff(
    app: Threadneedle, caller: Caller, contract_id: str, *, from_version: int, to_version: int,
) -> dict[str, Any]:
    """What changed from ``from_version`` to ``to_version`` (SPEC §9 diff shape)."""
    if from_version > to_version:
        raise ValidationFailed([("from_version", "must not be after to_version")])
    head = app.contract(caller, contract_id)
    access.require_history(caller, head)
    if to_version > head.version:
        raise NotFound(f"contract {head.code} has no version {to_version} yet")
    before = contract_at(app.contract(caller, contract_id, version=from_version))
    after = before if to_version == from_version else contract_at(
        app.contract(caller, contract_id, version=to_version))
    return {"contract_id": str(head.id), **contract_diff(before, after)}


# --- timeline -----------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One event of the timeline and what it moved."""

    version: int
    recorded_at: datetime
    type: str
    actor: Mapping[str, str]
    data: Mapping[str, Any]
    conflicts: Mapping[str, list[dict[str, Any]]]
    """``opened``, ``resolved``, ``dissolved`` and ``escalated`` at this event (diff shape)."""
    open_conflicts: int
    top_before: list[dict[str, Any]]
    top_after: list[dict[str, Any]]

    @property
    def top_changed(self) -> bool:
        return _ids(self.top_before) != _ids(self.top_after)


@dataclass(frozen=True)
class Timeline:
    contract: ServiceContract
    """The contract at the end of the timeline."""
    profile: str
    """The profile every step was ranked under."""
    what_if: bool
    steps: list[Step] = field(default_factory=list)


def timeline(
    app: Threadneedle,
    caller: Caller,
    contract_id: str,
    *,
    version: int | None = None,
    as_of: datetime | None = None,
    profile: str | None = None,
    top: int = TOP,
) -> Timeline:
    """Every event up to ``version`` or ``as_of`` with the conflicts and ranking it moved.

    ``profile`` ranks every step under that profile instead of the contract's
    policy at the time (a what-if of the past).
    """
    end = app.contract(caller, contract_id, version=version, as_of=as_of)
    access.require_history(caller, end)
    if profile is not None:
        effective_policy(end.terms, profile)  # refuse an unknown profile before any work
    events = app.repository.event_store.get(end.id, lte=end.version)
    steps = list(fold_steps(events, profile=profile, top=top))
    chosen, _ = effective_policy(end.terms, profile)
    return Timeline(end, chosen.value, profile is not None, steps)


def fold_steps(
    events: Iterable[Any], *, profile: str | None = None, top: int = TOP,
) -> Iterable[Step]:
    """Apply each event in turn to one aggregate; answer a ``Step`` per event."""
    contract: ServiceContract | None = None
    ranked: list[dict[str, Any]] = []
    ranked_on: date | None = None
    for event in events:
        conflicts_before = {} if contract is None else {
            key: dict(record) for key, record in contract.conflicts.items()}
        contract = project_aggregate(contract, [event])
        assert isinstance(contract, ServiceContract)
        reference = shanghai_date(event.timestamp)
        type_name = event.type_name()
        top_before = ranked[:top]
        if type_name not in RANK_NEUTRAL or reference != ranked_on:
            ranked = [_brief(entry, contract) for entry in
                      ranking_of(contract, reference, profile)[:top]]
            ranked_on = reference
        yield Step(
            version=event.originator_version,
            recorded_at=event.timestamp,
            type=type_name,
            actor=dict(event.actor),
            data=event.data,
            conflicts=conflict_changes(conflicts_before, contract.conflicts,
                                       from_version=event.originator_version - 1),
            open_conflicts=sum(1 for c in contract.conflicts.values() if c["status"] == "open"),
            top_before=top_before,
            top_after=list(ranked),
        )


def _brief(entry: Mapping[str, Any], contract: ServiceContract) -> dict[str, Any]:
    directive = contract.directives[entry["directive_id"]]
    return {
        "directive_id": entry["directive_id"],
        "rank": entry["rank"],
        "tier": entry["tier"],
        "score": entry["score"],
        "subject": directive["subject"],
        "issuer": directive["issuer"],
        "summary": directive["summary"],
    }


def _ids(entries: list[dict[str, Any]]) -> list[str]:
    return [entry["directive_id"] for entry in entries]
