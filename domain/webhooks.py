"""What a webhook tells a stakeholder, and which subscriptions are told (SPEC §8).

Each recorded contract event becomes zero or more *messages*, each a §8 type
and the ``data`` about the record it concerns: the contract, a directive or a
conflict, flattened into ``data`` with its ``id`` beside ``contract_id`` and
the ``contract_version`` of the event.  Conflict changes are not events of
their own: an issued directive may open conflicts, a decision may dissolve
others, so they are found by comparing the contract's conflict view before
and after the event.

A subscription names the types it wants (``"*"``, exact types, or a group
glob such as ``conflict.*``) and optionally the contracts; its organisation
receives only messages of contracts it may read (``domain.access``).

The dispatcher numbers each subscription's messages per contract
(``sequence``, from 1, without gaps) and builds the body with
``message_body``; the body is compact UTF-8 JSON, stored once and sent as is
on every attempt.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from domain.access import can_read
from domain.chain import ChainedAggregate
from domain.contract import ServiceContract
from domain.diff import conflict_changes, field_changes
from domain.errors import ValidationFailed
from domain.organisations import Caller

CONTRACT_CREATED, CONTRACT_UPDATED = "contract.created", "contract.updated"
DIRECTIVE_ISSUED, DIRECTIVE_AMENDED = "directive.issued", "directive.amended"
DIRECTIVE_WITHDRAWN, DIRECTIVE_OVERRIDDEN = "directive.withdrawn", "directive.overridden"
CONFLICT_OPENED, CONFLICT_ESCALATED = "conflict.opened", "conflict.escalated"
CONFLICT_UPDATED = "conflict.updated"
CONFLICT_RESOLVED, CONFLICT_DISSOLVED = "conflict.resolved", "conflict.dissolved"
DIRECTIVE_CLASSIFIED, DIRECTIVE_CORRECTED = "directive.classified", "directive.corrected"
CONFLICT_PROPOSED = "conflict.proposed"

EVENT_TYPES: tuple[str, ...] = (
    CONTRACT_CREATED, CONTRACT_UPDATED,
    DIRECTIVE_ISSUED, DIRECTIVE_AMENDED, DIRECTIVE_WITHDRAWN, DIRECTIVE_OVERRIDDEN,
    DIRECTIVE_CLASSIFIED, DIRECTIVE_CORRECTED,
    CONFLICT_OPENED, CONFLICT_UPDATED, CONFLICT_ESCALATED, CONFLICT_PROPOSED, CONFLICT_RESOLVED,
    CONFLICT_DISSOLVED,
)
EVERY_TYPE = "*"
GROUPS = frozenset(event_type.split(".")[0] for event_type in EVENT_TYPES)

# The contract events that change the contract itself, and the word ``data.change`` says.
CONTRACT_CHANGES: dict[type[ChainedAggregate.Event], str] = {
    ServiceContract.StakeholderAdded: "stakeholder_added",
    ServiceContract.PolicyChanged: "policy_changed",
    ServiceContract.Activated: "activated",
    ServiceContract.Suspended: "suspended",
    ServiceContract.Terminated: "terminated",
    ServiceContract.Closed: "closed",
    ServiceContract.AdmissionChanged: "admission_changed",
}
DIRECTIVE_EVENTS: dict[type[ChainedAggregate.Event], str] = {
    ServiceContract.DirectiveIssued: DIRECTIVE_ISSUED,
    ServiceContract.DirectiveAmended: DIRECTIVE_AMENDED,
    ServiceContract.DirectiveWithdrawn: DIRECTIVE_WITHDRAWN,
    ServiceContract.DirectiveClassified: DIRECTIVE_CLASSIFIED,
    ServiceContract.DirectiveCorrected: DIRECTIVE_CORRECTED,
}


class Message(NamedTuple):
    """One thing to tell subscribers: its §8 type and its ``data`` (without ``sequence``)."""

    type: str
    data: dict[str, Any]


# --- from events to messages ------------------------------------------------------


def messages_for(
    event: object,
    before: ServiceContract | None,
    after: ServiceContract,
) -> list[Message]:
    """The messages one contract event gives, in the order a receiver should read them.

    ``before`` is the contract as it stood before ``event`` (``None`` for the
    draft) and ``after`` the contract with ``event`` applied; an event of
    another kind (a snapshot, an organisation's event) gives none.  The order is:
    the conflicts the event itself decided or escalated, then the contract or
    directive change the event records (a decision's overridden directives
    included), then the conflicts that opened or dissolved as a consequence.
    """
    if not isinstance(event, ChainedAggregate.Event) or event.originator_id != after.id:
        return []
    context = {"contract_id": str(after.id), "contract_version": event.originator_version}
    conflicts = _conflict_messages(before, after, context)
    own: list[Message] = []
    if isinstance(event, ServiceContract.Drafted):
        own.append(Message(CONTRACT_CREATED, {**context, **_contract_record(after)}))
    elif type(event) in CONTRACT_CHANGES:
        own.append(Message(CONTRACT_UPDATED, {
            **context, "change": CONTRACT_CHANGES[type(event)], **_contract_record(after),
        }))
    elif type(event) in DIRECTIVE_EVENTS:
        directive_id = str(event.data["id"])
        record: dict[str, Any] = {**context, **after.directives[directive_id]}
        if (isinstance(event, ServiceContract.DirectiveAmended | ServiceContract.DirectiveCorrected)
                and before is not None):
            record["changes"] = field_changes(before.directives[directive_id],
                                              after.directives[directive_id])
        own.append(Message(DIRECTIVE_EVENTS[type(event)], record))
    elif isinstance(event, ServiceContract.DecisionProposed):
        record = after.conflicts[str(event.data["conflict_id"])]
        own.append(Message(CONFLICT_PROPOSED, {**context, **record}))
    elif isinstance(event, ServiceContract.ConflictResolved):
        own.extend(
            Message(DIRECTIVE_OVERRIDDEN, {**context, **after.directives[str(directive_id)]})
            for directive_id in event.data.get("overridden", [])
        )
    return [
        *conflicts[CONFLICT_RESOLVED], *conflicts[CONFLICT_ESCALATED], *own,
        *conflicts[CONFLICT_OPENED], *conflicts[CONFLICT_UPDATED], *conflicts[CONFLICT_DISSOLVED],
    ]


def _conflict_messages(
    before: ServiceContract | None, after: ServiceContract, context: Mapping[str, Any],
) -> dict[str, list[Message]]:
    earlier: Mapping[str, Mapping[str, Any]] = before.conflicts if before is not None else {}
    # Appliers replace the records they change and copies share the rest, so a
    # record that is the very same object is unchanged: only the others are compared.
    changed = {key: record for key, record in after.conflicts.items()
               if earlier.get(key) is not record}
    changes = conflict_changes(earlier, changed,
                               from_version=before.version if before is not None else 0)
    return {
        f"conflict.{kind}": [Message(f"conflict.{kind}", {**context, **record})
                             for record in records]
        for kind, records in changes.items()
    }


def _contract_record(contract: ServiceContract) -> dict[str, Any]:
    """The contract as ``GET`` shows it, less its directives (they have messages of their own)."""
    return {key: value for key, value in contract.as_dict().items() if key != "directives"}


# --- the body ---------------------------------------------------------------------


def message_body(message: Message, *, sequence: int, timestamp: datetime) -> bytes:
    """The JSON body: ``{"type", "timestamp", "data": {"contract_id", "sequence", ...}}``.

    ``timestamp`` is when the event was recorded (the attempt's time travels
    in the ``webhook-timestamp`` header); ``sequence`` counts this
    subscription's messages of this contract, from 1.
    """
    if sequence < 1:
        raise ValueError(f"a message sequence starts at 1, not {sequence}")
    if timestamp.tzinfo is None:
        raise ValueError("a message timestamp must be timezone-aware")
    data = {"contract_id": message.data["contract_id"], "sequence": sequence, **message.data}
    body = {"type": message.type, "timestamp": timestamp.isoformat(), "data": data}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# --- who is told ------------------------------------------------------------------


def check_event_types(patterns: Iterable[str]) -> list[str]:
    """``patterns`` as a subscription stores them, or ``ValidationFailed`` naming the bad ones."""
    wanted = list(dict.fromkeys(patterns))
    if not wanted:
        raise ValidationFailed([("event_types", 'name at least one type, or "*" for all')])
    unknown = [pattern for pattern in wanted if not _known_pattern(pattern)]
    if unknown:
        raise ValidationFailed([(
            "event_types",
            f"unknown {', '.join(unknown)}: use \"*\", a group such as \"conflict.*\" "
            f"or one of {', '.join(EVENT_TYPES)}",
        )])
    return wanted


def _known_pattern(pattern: str) -> bool:
    if pattern == EVERY_TYPE or pattern in EVENT_TYPES:
        return True
    group, _, rest = pattern.partition(".")
    return rest == "*" and group in GROUPS


def type_matches(pattern: str, event_type: str) -> bool:
    """Whether one subscribed pattern (``*``, ``conflict.*`` or an exact type) covers a type."""
    if pattern in (EVERY_TYPE, event_type):
        return True
    group, _, rest = pattern.partition(".")
    return rest == "*" and event_type.split(".")[0] == group


def organisation_may_read(owner: Caller, contract: ServiceContract) -> bool:
    """Whether the subscription's owner may read ``contract``: the API's own rule
    (``access.can_read``) for the organisation *and role* of the key that subscribed.

    A stakeholder key reads the contracts its organisation is a stakeholder of
    (SPEC §3), so its subscription hears of those only; an organisation that is
    only in a contract's escalation chain gets 404 on it and no webhook of it
    (issue 11; ``docs/decisions.md``).  Admins and supervisors read everything.
    """
    return can_read(owner, contract)


@dataclass(frozen=True)
class SubscriptionFilter:
    """What a subscription wants: types, contracts (``None``: all it may read), its owner."""

    owner: Caller
    event_types: tuple[str, ...]
    contracts: frozenset[str] | None = None

    def receives(self, message_type: str, contract: ServiceContract) -> bool:
        """Whether a message of ``message_type`` about ``contract`` (as it now stands) is sent.

        Access is judged on the contract after the event: an organisation
        added as a stakeholder hears of it, one never on the contract hears
        nothing, whatever the subscription names.
        """
        if self.contracts is not None and str(contract.id) not in self.contracts:
            return False
        if not any(type_matches(pattern, message_type) for pattern in self.event_types):
            return False
        return organisation_may_read(self.owner, contract)
