"""Use cases of a contract's past: its history, audit and export, and its views
replayed from the event store (now, at a version, or at a time).

The diff and the timeline of a contract are in ``workflows/replay.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

from domain import access
from domain.chain import ChainedAggregate, ChainReport
from domain.conflict_records import listed
from domain.contract import ServiceContract
from domain.organisations import Caller
from domain.shanghai_calendar import shanghai_date
from workflows.audit import audit_aggregate
from workflows.collector import collection_paused
from workflows.contracts import read_contract, readable
from workflows.directory import organisation_names
from workflows.explanations import explained
from workflows.ledger import Ledger


def event_record(event: ChainedAggregate.Event) -> dict[str, Any]:
    """One history entry, as ``GET /history`` and ``export`` show it."""
    return {
        "version": event.originator_version,
        "type": event.type_name(),
        "recorded_at": event.timestamp.isoformat(),
        "actor": dict(event.actor),
        "data": event.data,
        "hash": event.hash,
        "prev_hash": event.prev_hash,
    }


def history(ledger: Ledger, caller: Caller, contract_id: str, *, after_version: int = 0,
            limit: int = 100) -> dict[str, Any]:
    contract = readable(ledger, caller, contract_id)
    access.require_history(caller, contract)
    events = ledger.events_of(contract.id, gt=after_version, limit=limit + 1)
    page = [event_record(e) for e in events[:limit]]
    more = len(events) > limit
    return {"events": page, "next_after_version": page[-1]["version"] if more else None}


def audit(ledger: Ledger, caller: Caller, contract_id: str) -> ChainReport:
    contract = readable(ledger, caller, contract_id)
    access.require_audit(caller, contract)
    return audit_aggregate(ledger, contract.id)


def export(ledger: Ledger, caller: Caller, contract_id: str) -> Iterator[dict[str, Any]]:
    contract = readable(ledger, caller, contract_id)
    access.require_audit(caller, contract)
    for event in ledger.events_of(contract.id):
        yield event_record(event)


def conflict_view_at(ledger: Ledger, caller: Caller, contract_id: str, *,
                     version: int | None = None, as_of: datetime | None = None,
                     status: str | None = None) -> dict[str, Any]:
    """The conflict view replayed from the event store, now or at a version or a time.

    ``status`` filters as the live view does (open and resolved by default).
    """
    with collection_paused():  # the replayed state is freed before the collector resumes
        contract = read_contract(ledger, caller, contract_id, version=version, as_of=as_of)
        return _conflict_view(ledger, contract, status)


def priority_view_at(ledger: Ledger, caller: Caller, contract_id: str, *,
                     version: int | None = None, as_of: datetime | None = None,
                     profile: str | None = None) -> dict[str, Any]:
    """The priority view replayed from the event store; ``profile`` makes it a what-if.

    Urgency is reckoned against the Asia/Shanghai date of ``as_of``, or of the
    last replayed event when only ``version`` is given, or of today when
    neither is (a what-if on the current state).
    """
    with collection_paused():  # the replayed state is freed before the collector resumes
        contract = read_contract(ledger, caller, contract_id, version=version, as_of=as_of)
        return _priority_view(ledger, contract, _reference(ledger, contract, version, as_of),
                              profile)


def state_at(ledger: Ledger, caller: Caller, contract_id: str, *, version: int,
             profile: str | None = None) -> dict[str, Any]:
    """The contract as of ``version`` with its conflicts (every status) and priorities, from
    one replay: what the timeline shows, where the three views would replay it thrice."""
    with collection_paused():  # the replayed state is freed before the collector resumes
        contract = read_contract(ledger, caller, contract_id, version=version)
        return {
            "contract": contract.as_dict(),
            "conflicts": _conflict_view(ledger, contract, "all"),
            "priorities": _priority_view(ledger, contract,
                                         _reference(ledger, contract, version, None), profile),
        }


def _reference(ledger: Ledger, contract: ServiceContract, version: int | None,
               as_of: datetime | None) -> date:
    if as_of is not None:
        return shanghai_date(as_of)
    if version is not None:
        return shanghai_date(contract.modified_on)
    return shanghai_date(ledger.clock())


def _conflict_view(ledger: Ledger, contract: ServiceContract,
                   status: str | None) -> dict[str, Any]:
    names = organisation_names(ledger)
    return {
        "contract_id": str(contract.id),
        "version": contract.version,
        "conflicts": [explained(record, names)
                      for record in listed(dict(getattr(contract, "conflicts", {})), status)],
    }


def _priority_view(ledger: Ledger, contract: ServiceContract, reference: date,
                   profile: str | None) -> dict[str, Any]:
    view = contract.priority_view(reference, profile=profile)
    return {"contract_id": str(contract.id), "version": contract.version, **view}
