"""The audit of one aggregate: its chain, its anchor and its snapshots, read from the store.

``GET /audit`` and ``needle verify`` answer with this.  It catches, besides an
altered event (``verify_chain``):

- a history rewritten with every hash after the change recomputed: the chain
  links, but its head is not the anchored one (``check_anchor``);
- deleted last events: fewer events than the anchored version, or a snapshot
  newer than the last event;
- an altered snapshot: its seal does not match its content, or it was taken at
  another head than the event at its version.  The audit reads the latest
  snapshot (the one a load of the current state uses); every load checks the
  seal of the snapshot it uses and skips an altered one, so ``?version=``
  never serves an older altered snapshot either.  Reading every snapshot
  would cost the audit of a long contract gigabytes (100 MB and more each).

The anchor is read before the events: a save that lands between the two reads
makes the events run past the anchor, and the anchor is read again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

from domain.chain import ChainReport, check_anchor, verify_chain
from workflows.anchoring import marker_problem, read_anchor
from workflows.directory import listed_contracts
from workflows.ledger import Ledger

READS = 5
"""Attempts at reading an anchor and events that agree, while saves land in between."""


def audit_aggregate(app: Any, aggregate_id: UUID) -> ChainReport:
    try:
        return _audit(app, aggregate_id)
    except Exception as error:  # a stored record that no longer even decodes
        return ChainReport(False, 0, "", None, f"a stored record could not be read: {error}")


def _audit(app: Any, aggregate_id: UUID) -> ChainReport:
    key: bytes = app.chain_key
    for attempt in range(READS):
        anchor = read_anchor(app.recorder, aggregate_id)
        events = list(app.repository.event_store.get(aggregate_id))
        report = verify_chain(events)
        if not report.verified:
            return report
        if problem := marker_problem(app.recorder, key):
            return ChainReport(False, report.events, report.head, None, problem)
        failed = check_anchor(key, aggregate_id, events, anchor)
        overtaken = (failed is not None and anchor is not None and len(events) > anchor.version
                     and events[anchor.version - 1].hash == anchor.head_hash)
        if overtaken and attempt < READS - 1:
            continue  # a save landed between the two reads: read both again
        if failed is not None:
            return failed
        return _check_snapshots(app, aggregate_id, events) or report
    raise AssertionError("unreachable")  # pragma: no cover


def _check_snapshots(app: Any, aggregate_id: UUID, events: list[Any]) -> ChainReport | None:
    if app.snapshots is None:
        return None
    count, head = len(events), events[-1].hash if events else ""
    versions = app.snapshots.versions(aggregate_id)
    if versions and versions[-1] > count:
        return ChainReport(False, count, head, count + 1,
                           f"a snapshot was taken at version {versions[-1]}, but the history "
                           f"ends at {count}: events were deleted")
    latest = app.snapshots.latest_checked(aggregate_id) if versions else None
    if latest is None:
        return None
    snapshot, sealed = latest
    version = snapshot.originator_version
    if not sealed:
        return ChainReport(False, count, head, version,
                           f"the snapshot at version {version} was altered: its seal does "
                           "not match its content")
    if snapshot.state.get("head_hash") != events[version - 1].hash:
        return ChainReport(False, count, head, version,
                           f"the snapshot at version {version} was taken at another head "
                           "than the event at that version")
    return None


def every_contract(ledger: Ledger) -> Iterator[tuple[UUID, str]]:
    """(id, code) of every contract the directory lists, in drafting order."""
    for contract_id, code in listed_contracts(ledger).items():
        yield UUID(contract_id), code
