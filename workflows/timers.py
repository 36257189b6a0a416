"""Deadlines: find the conflicts whose due time has passed and escalate each one level.

Deadlines are stored data — each open conflict's ``due`` in its contract — and
this is the periodic sweep that acts on them (beat runs it every
``NEEDLE_TIMER_INTERVAL_SECONDS``).  ``now`` is an argument, so the sweep is
tested without waiting.

Each lapse is escalated with the same command a resolver uses, naming the
level it escalates from and ``reason: "sla_expired"``, as the ``SLA_TIMER``
principal.  A sweep that runs twice, or on two processes at once, escalates
once: the second escalation from the same level is refused by the contract
(``LevelMismatch`` or ``NotLapsed``, after a reload if both wrote at once), and
a refusal is not an error here — someone else already did it.  A conflict at
the last level of its chain stays overdue; only a decision settles it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from domain.conflict_records import lapsed
from domain.contract import ACTIVE, ServiceContract
from domain.errors import (
    ConflictNotOpen,
    ContractNotActive,
    LevelMismatch,
    NoHigherLevel,
    NotLapsed,
)
from workflows import contracts, resolution
from workflows.identities import SLA_TIMER
from workflows.ledger import Ledger

log = logging.getLogger(__name__)

# What a sweep meets when another sweep, a resolver or a decision got there first.
ALREADY_HANDLED = (ConflictNotOpen, ContractNotActive, LevelMismatch, NoHigherLevel, NotLapsed)


@dataclass(frozen=True)
class Lapse:
    """An open conflict past its due time, and the level it is to escalate from."""

    contract_id: str
    conflict_id: str
    level: int
    due: str


@dataclass(frozen=True)
class Escalated:
    contract_id: str
    conflict_id: str
    from_level: int
    to_level: int
    version: int
    position: int


def lapses(contract: ServiceContract, now: datetime) -> list[Lapse]:
    """The contract's conflicts that lapsed by ``now`` and have a level to go to.

    Only an active contract's deadlines run (directives and decisions need an
    active contract too); earliest due first.
    """
    if contract.status != ACTIVE:
        return []
    last = len(contract.escalation_chain) - 1
    found = [
        Lapse(str(contract.id), record["id"], record["level"], record["due"])
        for record in contract.conflicts.values()
        if lapsed(record, now) and record["level"] < last
    ]
    return sorted(found, key=lambda lapse: (datetime.fromisoformat(lapse.due), lapse.conflict_id))


def find_lapses(app: Ledger, now: datetime) -> list[Lapse]:
    """Every lapse across the directory's contracts (current aggregates, from the cache)."""
    found: list[Lapse] = []
    for contract_id in sorted(contracts.readable_contract_ids(app, SLA_TIMER)):
        found += lapses(contracts.read_contract(app, SLA_TIMER, contract_id), now)
    return found


def escalate_lapsed(app: Ledger, now: datetime) -> list[Escalated]:
    """Escalate every conflict that lapsed by ``now`` one level; answer what was escalated."""
    done: list[Escalated] = []
    for lapse in find_lapses(app, now):
        try:
            result = resolution.escalate_lapsed_conflict(app,
                lapse.contract_id, lapse.conflict_id, lapse.level, now=now,
            )
        except ALREADY_HANDLED as refusal:
            log.info("conflict %s not escalated from level %s: %s",
                     lapse.conflict_id, lapse.level, refusal.detail)
            continue
        done.append(Escalated(lapse.contract_id, lapse.conflict_id, lapse.level,
                              lapse.level + 1, result.version, result.position))
    return done
