"""Replay for supervisors: what changed between two versions, and how a contract got here.

Both are computed from the event store, never from the live views in Redis.

- ``diff`` loads the contract at two versions (a snapshot and a few events
  each) and compares them with ``domain.diff``; each version is ranked with
  its own replay reference date, the Asia/Shanghai date of its last event.
  Its conflicts carry their explanations, as every conflict the API shows.
- ``timeline`` folds the contract's events once, in order, into one
  aggregate, and after each event notes how the open conflicts and the top of
  the ranking moved (under the contract's policy, or under another profile:
  a what-if of the whole past).  Only the directives an event changed are
  scored again, unless the terms or the reference date changed.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from domain import access
from domain.contract import ServiceContract
from domain.diff import ContractAt, conflict_changes, contract_diff
from domain.errors import ValidationFailed
from domain.organisations import Caller
from domain.priorities import effective_policy, rank_directives
from domain.shanghai_calendar import shanghai_date
from workflows.contracts import applied, read_contract, require_version
from workflows.directory import organisation_names
from workflows.explanations import explained
from workflows.ledger import Ledger

TOP = 3

DIRECTIVE_EVENTS = frozenset({
    "ServiceContract.DirectiveIssued", "ServiceContract.DirectiveAmended",
    "ServiceContract.DirectiveWithdrawn",
})
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
    ranked: list[dict[str, Any]] = contract.priority_view(reference, profile=profile)[
        "priorities"]
    return ranked


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
    ledger: Ledger, caller: Caller, contract_id: str, *, from_version: int, to_version: int,
) -> dict[str, Any]:
    """What changed from ``from_version`` to ``to_version`` (SPEC §9 diff shape)."""
    if from_version > to_version:
        raise ValidationFailed([("from_version", "must not be after to_version")])
    head = read_contract(ledger, caller, contract_id)
    access.require_history(caller, head)
    require_version(head, to_version)  # (before either version is replayed)
    before = contract_at(read_contract(ledger, caller, contract_id, version=from_version))
    after = before if to_version == from_version else contract_at(
        read_contract(ledger, caller, contract_id, version=to_version))
    changes = contract_diff(before, after)
    names = organisation_names(ledger)
    changes["conflicts"] = {part: [explained(record, names) for record in records]
                            for part, records in changes["conflicts"].items()}
    return {"contract_id": str(head.id), **changes}


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


def timeline(ledger: Ledger, caller: Caller, contract_id: str, *, version: int | None = None,
             as_of: datetime | None = None, profile: str | None = None, top: int = TOP) -> Timeline:
    """Every event up to ``version`` or ``as_of`` with the conflicts and ranking it moved.

    ``profile`` ranks every step under that profile instead of the contract's
    policy at the time (a what-if of the past).
    """
    end = read_contract(ledger, caller, contract_id, version=version, as_of=as_of)
    access.require_history(caller, end)
    if profile is not None:
        effective_policy(end.terms, profile)  # refuse an unknown profile before any work
    events = ledger.repository.event_store.get(end.id, lte=end.version)
    steps = list(fold_steps(events, profile=profile, top=top))
    chosen, _ = effective_policy(end.terms, profile)
    return Timeline(end, chosen.value, profile is not None, steps)


def fold_steps(
    events: Iterable[Any], *, profile: str | None = None, top: int = TOP,
) -> Iterable[Step]:
    """Apply each event in turn to one aggregate; answer a ``Step`` per event."""
    contract: ServiceContract | None = None
    leaders = TopOfRanking(profile)
    for event in events:
        conflicts_before = {} if contract is None else dict(contract.conflicts)
        contract = applied(contract, [event])
        assert isinstance(contract, ServiceContract)
        top_before = leaders.top(top)
        leaders.follow(contract, event.type_name(), event.data, shanghai_date(event.timestamp))
        yield Step(
            version=event.originator_version,
            recorded_at=event.timestamp,
            type=event.type_name(),
            actor=dict(event.actor),
            data=event.data,
            conflicts=_conflicts_moved(conflicts_before, contract.conflicts,
                                       version=event.originator_version),
            open_conflicts=sum(1 for c in contract.conflicts.values() if c["status"] == "open"),
            top_before=top_before,
            top_after=leaders.top(top),
        )


class TopOfRanking:
    """The head of a contract's ranking, kept up to date event by event.

    A directive's place in the ranking (tier, score, issue order, id) depends on
    the directive, the terms and the reference date only — never on the other
    directives — so after an event only the directives it changed are scored
    again (by ``domain.priorities`` itself, on a state of that one directive),
    unless the terms or the reference date changed: then all are.
    """

    def __init__(self, profile: str | None) -> None:
        self.profile = profile
        self.keys: dict[str, tuple[int, float, int, str]] = {}
        self.entries: dict[str, dict[str, Any]] = {}
        self.reference: date | None = None

    def follow(self, contract: ServiceContract, type_name: str, data: Mapping[str, Any],
               reference: date) -> None:
        changed = _directives_changed_by(type_name, data)
        if changed is None or reference != self.reference:
            self.keys.clear()
            self.entries.clear()
            changed = list(contract.directives)
            self.reference = reference
        for directive_id in changed:
            self.keys.pop(directive_id, None)
            self.entries.pop(directive_id, None)
            directive = contract.directives[directive_id]
            if directive["status"] != "active":
                continue
            [entry] = rank_directives(contract.terms, [directive], reference,
                                      profile=self.profile, conflicts=contract.conflicts)
            self.keys[directive_id] = (entry["tier"], -entry["score"],
                                       directive.get("issued_version") or 0, directive_id)
            self.entries[directive_id] = _brief(entry, directive)

    def top(self, count: int) -> list[dict[str, Any]]:
        leading = heapq.nsmallest(count, self.keys.values())
        return [{**self.entries[key[3]], "rank": rank}
                for rank, key in enumerate(leading, start=1)]


def _directives_changed_by(type_name: str, data: Mapping[str, Any]) -> list[str] | None:
    """The directives an event changed, or ``None`` when it may have changed any ranking."""
    if type_name in DIRECTIVE_EVENTS:
        return [data["id"]]
    if type_name in RANK_NEUTRAL:
        return []
    return None


def _conflicts_moved(
    before: Mapping[str, Any], after: Mapping[str, Any], *, version: int,
) -> dict[str, list[dict[str, Any]]]:
    """What one event did to the conflict view, comparing only the records it replaced.

    The view's folds replace a record that changes and never change one in
    place, so an unchanged record is the very same object before and after.
    """
    moved = [key for key, record in after.items() if before.get(key) is not record]
    return conflict_changes({key: before[key] for key in moved if key in before},
                            {key: after[key] for key in moved}, from_version=version - 1)


def _brief(entry: Mapping[str, Any], directive: Mapping[str, Any]) -> dict[str, Any]:
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
