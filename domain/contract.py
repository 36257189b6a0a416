"""The service contract: the aggregate every directive is recorded on.

Commands check their invariants first and raise named errors before anything
changes; events carry everything replay needs (state is JSON-native so that
snapshots and the hash chain see exactly what was stored).  Time comes in as
an argument: the domain never reads a clock.

Long (~880 lines) because the aggregate's events and the commands
that record them must live on one class (the event classes nest in it, and
replay finds them there); the rules themselves live beside it (conflicts,
scope, resolution, terms, directives).  Section 13's commands (admission, classification,
disputes, joint decisions) are short methods here for the same reason.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import date, datetime
from itertools import islice
from typing import TYPE_CHECKING, Any
from uuid import UUID

from domain.chain import ChainedAggregate
from domain.conflict_records import OPEN, escalated, lapsed, legacy_id, resolved
from domain.conflict_tracker import ConflictTracker, Cursor
from domain.contract_state import ContractState
from domain.directives import Basis, Classification, DirectiveFields, DirectivePatch, Dispute
from domain.errors import (
    AlreadyExists,
    ConflictNotOpen,
    ContractFinished,
    ContractNotActive,
    DirectiveNotActive,
    Forbidden,
    IllegalTransition,
    InsufficientAuthority,
    LevelMismatch,
    NoHigherLevel,
    NoPendingProposal,
    NotFound,
    NotLapsed,
    ProposalPending,
    ValidationFailed,
)
from domain.organisations import Actor
from domain.priorities import RankMemo, priority_view_of
from domain.resolution import SLA_EXPIRED, Decision, Escalation, Outcome, settled
from domain.scope import OPEN_DISPUTE
from domain.terms import (
    CONFIDENTIALITY_RULE,
    Admission,
    ContractTerms,
    Policy,
    StakeholderSpec,
    Standing,
)
from domain.windows import from_micro, week_label

DRAFT, ACTIVE, SUSPENDED, TERMINATED, CLOSED = (
    "draft", "active", "suspended", "terminated", "closed",
)
FINISHED = frozenset({TERMINATED, CLOSED})

# Which statuses each lifecycle command may start from.  A suspended contract
# is resumed with ``activate``; a draft that will never start is terminated.
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "activate": (frozenset({DRAFT, SUSPENDED}), ACTIVE),
    "suspend": (frozenset({ACTIVE}), SUSPENDED),
    "terminate": (frozenset({DRAFT, ACTIVE, SUSPENDED}), TERMINATED),
    "close": (frozenset({ACTIVE, SUSPENDED}), CLOSED),
}

WITHDRAWN, OVERRIDDEN = "withdrawn", "overridden"
PENDING = "pending"
PROPOSED_FIELDS = ("outcome", "upheld", "overridden", "rationale", "corrections",
                   "resolver", "resolver_level", "level")
# Terms added after the first contracts were recorded (SPEC §13): absent means no restriction.
NEW_TERMS: dict[str, Any] = {"service_types": [], "admission": [], "joint_decision": []}
CITED_BASES = frozenset({Basis.STATUTE.value, Basis.CONTRACT.value})

# Attributes derived from stored state: rebuilt when first needed, never
# snapshotted, never deep-copied.
DERIVED = frozenset({"_tracker"})
# Maps of records that appliers replace but never change in place (see __deepcopy__).
SHARED_RECORDS = frozenset({"directives", "conflicts"})


class ServiceContract(ChainedAggregate):
    """A purchased service contract and the directives its stakeholders place on it.

    ``conflicts`` is the conflict view (``domain.conflict_records``) as of this
    version, folded by each directive event as it is applied, so a contract
    loaded as of any version (a snapshot and a few events) carries its
    conflicts with it.  The fold is incremental (``domain.conflict_tracker``);
    its indices are derived state, kept out of snapshots and deep copies.

    ``class_version`` 2 is the episode fold (conflicts keep their identity while
    directives join and leave them).  A snapshot taken under the first fold
    holds conflict records of the old shape: ``upcast_v1_v2`` marks it stale,
    and the application loads such a contract from its events instead
    (``workflows/repository.py``).  Events need no upcasting: conflicts are
    derived from them, and decisions recorded under the old ids find their
    episode by those ids (``_recorded_conflict``).

    ``class_version`` 3 names each directive by its summary in a conflict's
    ``details`` (so that explanations can): a snapshot of version 2 is stale
    in the same way (``upcast_v2_v3``).
    """

    class_version = 3

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["stale_conflicts"] = True

    upcast_v2_v3 = upcast_v1_v2  # (the same mark: loaded from its events instead)

    if TYPE_CHECKING:  # set by the Drafted event
        terms: dict[str, Any]
        status: str
        created_at: str

    def __init__(self) -> None:
        self.directives: dict[str, dict[str, Any]] = {}
        self.conflicts: dict[str, dict[str, Any]] = {}

    class Snapshot(ChainedAggregate.Snapshot):
        """A snapshot of the stored state only: derived indices are rebuilt after loading.

        Chained (``domain/chain.py``, ``ChainedSnapshot``): it records the head hash
        it was taken at, and the application seals it and checks the seal on load.
        """

        @classmethod
        def take(cls, aggregate: Any) -> Any:
            snapshot = super().take(aggregate)
            for name in DERIVED:
                snapshot.state.pop(name, None)
            for name in SHARED_RECORDS:
                snapshot.state[name] = _listed(snapshot.state[name])
            return snapshot

        def mutate(self, _: None) -> Any:
            contract = super().mutate(_)
            for name in SHARED_RECORDS:
                contract.__dict__[name] = _restored(contract.__dict__[name])
            return contract

    def __deepcopy__(self, memo: dict[int, Any]) -> ServiceContract:
        """A copy that shares the directive and conflict records with the original.

        The repository copies a cached contract on every load, and copying
        thousands of records each time would dominate the command path.  It is
        safe because records are never changed in place: every applier puts a
        new record in their place (``_directives_changed``, ``_conflict_changed``).
        """
        copied = object.__new__(type(self))
        memo[id(self)] = copied
        copied.__dict__.update({
            name: dict(value) if name in SHARED_RECORDS else copy.deepcopy(value, memo)
            for name, value in self.__dict__.items() if name not in DERIVED
        })
        tracker: ConflictTracker | None = self.__dict__.get("_tracker")
        if tracker is not None:
            copied.__dict__["_tracker"] = tracker.copy(copied.terms)
        return copied

    # --- events -------------------------------------------------------------

    class Drafted(ChainedAggregate.Created):
        def apply(self, contract: ServiceContract) -> None:
            contract.terms = dict(self.data)
            contract.status = DRAFT
            contract.conflicts = {}
            contract.created_at = self.timestamp.isoformat()

    class StakeholderAdded(ChainedAggregate.Event):
        def apply(self, contract: ServiceContract) -> None:
            contract.terms["stakeholders"] = [*contract.terms["stakeholders"], dict(self.data)]

    class PolicyChanged(ChainedAggregate.Event):
        def apply(self, contract: ServiceContract) -> None:
            contract.terms["policy"] = dict(self.data)

    class Activated(ChainedAggregate.Event):
        def apply(self, contract: ServiceContract) -> None:
            contract.status = ACTIVE

    class Suspended(ChainedAggregate.Event):
        def apply(self, contract: ServiceContract) -> None:
            contract.status = SUSPENDED

    class Terminated(ChainedAggregate.Event):
        def apply(self, contract: ServiceContract) -> None:
            contract.status = TERMINATED

    class Closed(ChainedAggregate.Event):
        def apply(self, contract: ServiceContract) -> None:
            contract.status = CLOSED

    class DirectiveIssued(ChainedAggregate.Event):
        def apply(self, contract: ServiceContract) -> None:
            directive = dict(self.data)
            directive["issued_version"] = self.originator_version
            directive["issued_at"] = self.timestamp.isoformat()
            contract._directives_changed([directive], self.originator_version, self.timestamp)

    class DirectiveAmended(ChainedAggregate.Event):
        def apply(self, contract: ServiceContract) -> None:
            directive = dict(contract.directives[self.data["id"]])
            directive.update(self.data["changes"])
            directive["amended_version"] = self.originator_version
            contract._directives_changed([directive], self.originator_version, self.timestamp)

    class DirectiveWithdrawn(ChainedAggregate.Event):
        def apply(self, contract: ServiceContract) -> None:
            directive = dict(contract.directives[self.data["id"]])
            directive["status"] = WITHDRAWN
            contract._directives_changed([directive], self.originator_version, self.timestamp)

    class AdmissionChanged(ChainedAggregate.Event):
        """A new admission list (SPEC §13): every active directive is checked against it."""

        def apply(self, contract: ServiceContract) -> None:
            tracker = contract._conflict_tracker()
            contract.terms["admission"] = list(self.data["admission"])
            tracker.terms_changed(contract.conflicts, contract.terms,
                                  version=self.originator_version, at=self.timestamp)

    class DirectiveClassified(ChainedAggregate.Event):
        """The provider's classification: a kind of work and tags added, the issuer's kept."""

        def apply(self, contract: ServiceContract) -> None:
            directive = dict(contract.directives[self.data["id"]])
            earlier = directive.get("classification") or {}
            directive["classification"] = {
                "task_type": self.data.get("task_type") or earlier.get("task_type"),
                "tags": list(dict.fromkeys([*earlier.get("tags", []),
                                            *self.data.get("add_tags", [])])),
                "note": self.data["note"],
                "by": self.actor["org"],
                "version": self.originator_version,
            }
            contract._directives_changed([directive], self.originator_version, self.timestamp)

    class DirectiveDisputed(ChainedAggregate.Event):
        """A party's dispute of some fields of a directive: it opens a ``disputed`` conflict."""

        def apply(self, contract: ServiceContract) -> None:
            directive = dict(contract.directives[self.data["id"]])
            dispute = {**self.data["dispute"], "status": OPEN_DISPUTE,
                       "version": self.originator_version, "at": self.timestamp.isoformat()}
            directive["disputes"] = [*directive.get("disputes", []), dispute]
            contract._directives_changed([directive], self.originator_version, self.timestamp)

    class DirectiveCorrected(ChainedAggregate.Event):
        """A ``corrected`` decision's new values, recorded with the resolver as actor."""

        def apply(self, contract: ServiceContract) -> None:
            directive = dict(contract.directives[self.data["id"]])
            directive.update(self.data["changes"])
            directive["corrected_version"] = self.originator_version
            contract._directives_changed([directive], self.originator_version, self.timestamp)

    class DecisionProposed(ChainedAggregate.Event):
        """A decision awaiting the approval of the contract's ``joint_decision`` organisations."""

        def apply(self, contract: ServiceContract) -> None:
            record = contract.conflicts[self.data["conflict_id"]]
            proposal = {key: value for key, value in self.data.items() if key != "conflict_id"}
            proposal.update(status=PENDING, approvals=[], proposed_version=self.originator_version,
                            proposed_at=self.timestamp.isoformat(), proposed_by=self.actor["org"])
            contract._conflict_changed({**record, "proposal": proposal},
                                       self.originator_version, self.timestamp)

    class DecisionApproved(ChainedAggregate.Event):
        def apply(self, contract: ServiceContract) -> None:
            record = contract.conflicts[self.data["conflict_id"]]
            proposal = dict(record["proposal"])
            proposal["approvals"] = [*proposal["approvals"], {
                "org": self.data["org"], "approve": True, "note": self.data["note"],
                "version": self.originator_version}]
            contract._conflict_changed({**record, "proposal": proposal},
                                       self.originator_version, self.timestamp)

    class DecisionRejected(ChainedAggregate.Event):
        """A listed organisation's rejection: the conflict is open again, the proposal kept."""

        def apply(self, contract: ServiceContract) -> None:
            record = contract.conflicts[self.data["conflict_id"]]
            contract._conflict_changed(_proposal_closed(record, "rejected", {
                "org": self.data["org"], "approve": False, "note": self.data["note"],
                "version": self.originator_version}), self.originator_version, self.timestamp)

    class ConflictResolved(ChainedAggregate.Event):
        """A resolver's decision: the conflict is resolved; its overridden members leave.

        The conflict is marked resolved first, so the fold that follows the
        overridden directives out of the active set cannot touch it; other
        conflicts that depended on them dissolve.
        """

        def apply(self, contract: ServiceContract) -> None:
            version, at = self.originator_version, self.timestamp
            record = contract._recorded_conflict(self.data["conflict_id"])
            decision = {key: value for key, value in self.data.items() if key != "conflict_id"}
            if record is not None and record.get("proposal"):
                record = {**record, "proposal": {**record["proposal"], "status": "approved"}}
            if record is not None:
                contract._conflict_changed(resolved(record, decision, version=version, at=at),
                                           version, at)
            overridden = [
                {**contract.directives[key], "status": OVERRIDDEN, "overridden_version": version,
                 "overridden_by": record["id"] if record else self.data["conflict_id"]}
                for key in self.data["overridden"]
                if contract.directives[key]["status"] == "active"
            ]
            if overridden:
                contract._directives_changed(overridden, version, at)
            if record is not None and record["kind"] == "disputed":
                contract._dispute_closed(record, self.data["outcome"], version, at)

    class ConflictEscalated(ChainedAggregate.Event):
        """One level up the escalation chain, due ``resolution_sla_hours`` after this event."""

        def apply(self, contract: ServiceContract) -> None:
            record = contract._recorded_conflict(self.data["conflict_id"])
            if record is None:
                return  # recorded under the first fold, on a run it no longer finds
            if (record.get("proposal") or {}).get("status") == PENDING:
                record = _proposal_closed(record, "withdrawn", None)
            contract._conflict_changed(escalated(
                record, to_level=self.data["to_level"], reason=self.data["reason"],
                by=self.actor["org"], version=self.originator_version, at=self.timestamp,
                sla_hours=float(contract.terms["resolution_sla_hours"]),
            ), self.originator_version, self.timestamp)

    def _directives_changed(
        self, updated: list[dict[str, Any]], version: int, at: datetime,
    ) -> None:
        """Store new or changed directives and fold the conflicts they change at ``version``.

        Every event that adds, changes, withdraws or overrides directives goes
        through here, so the conflict view is folded at every such version.
        """
        tracker = self._conflict_tracker()  # built on the directives before the change
        changes = [(self.directives.get(directive["id"]), directive) for directive in updated]
        for directive in updated:
            self.directives[directive["id"]] = directive
        tracker.directives_changed(self.conflicts, changes, version=version, at=at)

    def _dispute_closed(self, record: Mapping[str, Any], outcome: str, version: int,
                        at: datetime) -> None:
        """A decided dispute is closed on its directive (still active: not overridden)."""
        directive = self.directives.get(record["members"][0])
        if directive is None or directive["status"] != "active":
            return
        dispute_id = record["details"]["dispute"]
        disputes = [{**d, "status": "decided", "outcome": outcome, "decided_version": version}
                    if d["id"] == dispute_id else d for d in directive.get("disputes", [])]
        self._directives_changed([{**directive, "disputes": disputes}], version, at)

    def _conflict_changed(self, record: dict[str, Any], version: int, at: datetime) -> None:
        """Store a conflict record a resolution or escalation event changed."""
        self._conflict_tracker().conflict_changed(self.conflicts, record, version=version, at=at)

    def _recorded_conflict(self, conflict_id: str) -> dict[str, Any] | None:
        """The conflict a decision or escalation event names.

        Events recorded under the first fold name a conflict by its member set
        (``legacy_id``): the open episode with those members is that conflict.
        """
        record = self.conflicts.get(conflict_id)
        if record is not None:
            return record
        for candidate in self.conflicts.values():
            if candidate["status"] != OPEN:
                continue
            details = candidate["details"]
            qualifiers = (
                [f"{details['weeks'][0]}..{details['weeks'][-1]}"]
                if candidate["kind"] == "over_capacity"
                else [details["rule"]] if candidate["kind"] == "rule_violation" else []
            )
            if legacy_id(candidate["kind"], candidate["members"], *qualifiers) == conflict_id:
                return candidate
        return None

    def priority_view(self, reference_date: date, *, profile: str | None = None,
                      memo: RankMemo | None = None) -> dict[str, Any]:
        """The priority view (``domain.priorities.priority_view_of``) of the active
        directives under the contract's conflict view: ``profile`` a what-if, ``memo`` the
        last ranking's (``RankMemo``).  The active directives are the conflict tracker's
        when it is built (the projection's contracts: no pass over the withdrawn ones),
        else those picked from all; their order differs, and no ranking depends on it."""
        tracker: ConflictTracker | None = self.__dict__.get("_tracker")
        state = ContractState(self.terms, self.directives.values()) if tracker is None \
            else ContractState(self.terms, tracker.active.values(), active=True)
        return priority_view_of(state, reference_date, profile=profile,
                                conflicts=self.conflicts, memo=memo)

    def weekly_load(self) -> dict[str, float]:
        """Each ISO week of the period (``"2008-W24"``) and its load in hours as SPEC §4
        counts it: the committed hours, one side of each open contradiction or duplicate,
        nothing of a blocked directive; what an over-capacity run exceeds the capacity by."""
        load = self._conflict_tracker().load
        return {week_label(week): from_micro(load.load(week))
                for week in range(load.first_week, load.last_week + 1)}

    def conflicts_written(self, since: Cursor | None) -> tuple[list[str] | None,
                                                               Cursor | None]:
        """The ids of the conflicts whose records were written since ``since`` (a cursor
        this contract answered, or ``None``), and the cursor to ask with next time
        (``ConflictTracker.written_since``: ``None`` for the ids when it cannot tell).
        A contract whose tracker is not built (nothing applied since it was loaded) logs
        nothing and is not made to build one: no ids, no cursor."""
        tracker: ConflictTracker | None = self.__dict__.get("_tracker")
        if tracker is None:
            return None, None
        return tracker.written_since(since)

    def _conflict_tracker(self) -> ConflictTracker:
        tracker: ConflictTracker | None = self.__dict__.get("_tracker")
        if tracker is None:
            tracker = ConflictTracker(str(self.id), self.terms, self.directives.values(),
                                      self.conflicts)
            self.__dict__["_tracker"] = tracker
        return tracker

    # --- commands -----------------------------------------------------------

    @classmethod
    def draft(
        cls,
        *,
        contract_id: UUID,
        terms: ContractTerms,
        actor: Actor,
        at: datetime,
    ) -> ServiceContract:
        data = terms.model_dump(mode="json", by_alias=True)
        if not data["escalation_chain"]:
            data["escalation_chain"] = [terms.provider, terms.purchaser]
        data["rules"] = [CONFIDENTIALITY_RULE.model_dump(mode="json"), *data["rules"]]
        contract: ServiceContract = cls._start(
            cls.Drafted, id=contract_id, actor=actor, at=at, data=data
        )
        return contract

    def add_stakeholder(self, spec: StakeholderSpec, *, actor: Actor, at: datetime) -> None:
        self._refuse_if_finished()
        if spec.org in self.stakeholder_orgs:
            raise AlreadyExists(f"{spec.org} is already a stakeholder of {self.code}")
        self._record(self.StakeholderAdded, actor=actor, at=at, data=spec.model_dump(mode="json"))

    def change_policy(self, policy: Policy, *, actor: Actor, at: datetime) -> None:
        self._refuse_if_finished()
        self._record(
            self.PolicyChanged, actor=actor, at=at,
            data=policy.model_dump(mode="json", exclude_none=True),
        )

    def transition(self, command: str, *, actor: Actor, at: datetime) -> None:
        """Apply a lifecycle command: ``activate``, ``suspend``, ``terminate`` or ``close``."""
        allowed_from, target = TRANSITIONS[command]
        if self.status not in allowed_from:
            raise IllegalTransition(
                f"cannot {command} contract {self.code}: it is {self.status}, and {command} "
                f"applies only to a contract that is {' or '.join(sorted(allowed_from))}"
            )
        self._record(LIFECYCLE_EVENTS[target], actor=actor, at=at, data={})

    def issue_directive(
        self,
        fields: DirectiveFields,
        *,
        directive_id: UUID,
        issuer: str,
        actor: Actor,
        at: datetime,
    ) -> None:
        self._require_active("issue a directive")
        key = str(directive_id)
        if key in self.directives:
            raise AlreadyExists(f"directive {key} already exists")
        data = fields.model_dump(mode="json", by_alias=True)
        data["window"] = data["window"] or {
            "from": self.terms["period"]["start"], "to": self.terms["period"]["end"],
        }
        self._check_window(data["window"])
        if self.standing_of(issuer) == Standing.NON_PARTY:
            data["basis"] = Basis.NON_PARTY.value
        directive = {"id": key, "issuer": issuer, **data, "status": "active"}
        self._check_citation(directive)
        self._record(self.DirectiveIssued, actor=actor, at=at, data=directive)

    def amend_directive(
        self, directive_id: str, patch: DirectivePatch, *, actor: Actor, at: datetime
    ) -> None:
        self._require_active("amend a directive")
        directive = self._active_directive(directive_id, "amended")
        changes = patch.changes()
        if "window" in changes:
            changes["window"] = changes["window"] or {
                "from": self.terms["period"]["start"], "to": self.terms["period"]["end"],
            }
            self._check_window(changes["window"])
        if "basis" in changes and self.standing_of(directive["issuer"]) == Standing.NON_PARTY:
            changes["basis"] = Basis.NON_PARTY.value
        self._check_citation({**directive, **changes})
        self._record(
            self.DirectiveAmended, actor=actor, at=at,
            data={"id": directive_id, "changes": changes},
        )

    def withdraw_directive(self, directive_id: str, *, actor: Actor, at: datetime) -> None:
        self._require_active("withdraw a directive")
        self._active_directive(directive_id, "withdrawn")
        self._record(self.DirectiveWithdrawn, actor=actor, at=at, data={"id": directive_id})

    def resolve_conflict(
        self, conflict_id: str, decision: Decision, *, resolver: str, actor: Actor, at: datetime,
    ) -> None:
        """Record ``resolver``'s decision on an open conflict (its overridden members leave).

        On a contract with ``joint_decision`` organisations the decision is only
        proposed: it takes effect when all of them approve (``answer_proposal``).
        """
        self._require_active("resolve a conflict")
        record = self._open_conflict(conflict_id, "decided")
        if (record.get("proposal") or {}).get("status") == PENDING:
            raise ProposalPending(f"conflict {conflict_id} has a decision awaiting approval by "
                                  f"{', '.join(self.joint_deciders)}; escalate to withdraw it")
        resolver_level = self._authority(resolver, record, "decide")
        outcome = settled(decision, record["members"])
        self._check_decision(record, outcome, resolver, resolver_level)
        data = {"conflict_id": conflict_id, **outcome,
                "resolver": resolver, "resolver_level": resolver_level,
                "level": record["level"]}
        if set(self.joint_deciders) - {resolver}:
            self._record(self.DecisionProposed, actor=actor, at=at, data=data)
        else:
            self._decide(data, actor=actor, at=at)

    def answer_proposal(
        self, conflict_id: str, *, org: str, approve: bool, note: str, actor: Actor, at: datetime,
    ) -> None:
        """A ``joint_decision`` organisation approves or rejects a proposed decision; the last
        approval makes it take effect (recorded with the approver as actor)."""
        self._require_active("answer a proposed decision")
        if org not in self.joint_deciders:
            raise Forbidden(f"{org} is not among the organisations whose approval decisions on "
                            f"{self.code} need ({', '.join(self.joint_deciders) or 'none'})")
        record = self._open_conflict(conflict_id, "decided")
        proposal = record.get("proposal") or {}
        if proposal.get("status") != PENDING:
            raise NoPendingProposal(f"conflict {conflict_id} has no decision awaiting approval")
        if org == proposal["resolver"] or any(a["org"] == org for a in proposal["approvals"]):
            raise AlreadyExists(f"{org} has already approved this proposal")
        data = {"conflict_id": conflict_id, "org": org, "note": note}
        if not approve:
            self._record(self.DecisionRejected, actor=actor, at=at, data=data)
            return
        decided = {key: proposal[key] for key in PROPOSED_FIELDS if key in proposal}
        approved = {a["org"] for a in proposal["approvals"]} | {org, proposal["resolver"]}
        if approved >= set(self.joint_deciders):
            members = set(record["members"])
            gone = [key for key in (*decided["upheld"], *decided["overridden"])
                    if key not in members]
            if gone:
                raise ValidationFailed([("approve", f"{', '.join(gone)} left the conflict since "
                                                    "the proposal; reject it and decide again")])
        self._record(self.DecisionApproved, actor=actor, at=at, data=data)
        if approved >= set(self.joint_deciders):
            self._decide({"conflict_id": conflict_id, **decided,
                          "approved_by": sorted(approved & set(self.joint_deciders))},
                         actor=actor, at=at)

    def _check_decision(self, record: Mapping[str, Any], outcome: Mapping[str, Any],
                        resolver: str, resolver_level: int) -> None:
        """Authority (SPEC §6) over what is overridden, endorsed or corrected (SPEC §13)."""
        for directive_id in outcome["overridden"]:
            self._may_override(resolver, resolver_level, directive_id)
        if record["kind"] == "not_admitted":
            for directive_id in outcome["upheld"]:  # an endorsement
                self._may_override(resolver, resolver_level, directive_id, verb="endorse")
        if outcome["outcome"] == Outcome.CORRECTED.value:
            if record["kind"] != "disputed":
                raise ValidationFailed([("outcome", "only a disputed conflict can be corrected")])
            fields = set(record["details"]["fields"])
            undisputed = sorted(set(outcome["corrections"]) - fields)
            if undisputed:
                raise ValidationFailed([("corrections", f"{', '.join(undisputed)} not disputed "
                                                        f"(disputed: {', '.join(sorted(fields))})",
                                         )])
            directive_id = record["members"][0]
            self._may_override(resolver, resolver_level, directive_id, verb="correct")
            self._check_citation({**self.directives[directive_id],
                                  **self._corrected(directive_id, outcome["corrections"])})

    def _decide(self, data: dict[str, Any], *, actor: Actor, at: datetime) -> None:
        """The decision takes effect; a correction is recorded after it, by the same actor."""
        self._record(self.ConflictResolved, actor=actor, at=at, data=data)
        if data["outcome"] == Outcome.CORRECTED.value:
            record = self.conflicts[data["conflict_id"]]
            directive_id = record["members"][0]
            self._record(self.DirectiveCorrected, actor=actor, at=at, data={
                "id": directive_id, "changes": self._corrected(directive_id, data["corrections"]),
                "conflict_id": data["conflict_id"]})

    def _corrected(self, directive_id: str, corrections: Mapping[str, Any]) -> dict[str, Any]:
        """The changes a correction makes: a non-party's basis stays ``non_party`` (SPEC §3)."""
        changes = dict(corrections)
        issuer = self.directives[directive_id]["issuer"]
        if "basis" in changes and self.standing_of(issuer) == Standing.NON_PARTY:
            changes["basis"] = Basis.NON_PARTY.value
        return changes

    def change_admission(self, admission: Admission, *, actor: Actor, at: datetime) -> None:
        self._refuse_if_finished()
        self._record(self.AdmissionChanged, actor=actor, at=at,
                     data=admission.model_dump(mode="json"))

    def classify_directive(
        self, directive_id: str, classification: Classification, *, actor: Actor, at: datetime,
    ) -> None:
        """The provider's classification of a directive (its kind of work, tags it adds)."""
        self._require_active("classify a directive")
        if actor["org"] != self.terms["provider"]:
            raise Forbidden(f"only the provider ({self.terms['provider']}) classifies directives")
        self._active_directive(directive_id, "classified")
        self._record(self.DirectiveClassified, actor=actor, at=at,
                     data={"id": directive_id, **classification.model_dump(mode="json")})

    def dispute_directive(
        self, directive_id: str, dispute: Dispute, *, by: str, actor: Actor, at: datetime,
    ) -> None:
        """A party stakeholder disputes fields of another organisation's directive."""
        self._require_active("dispute a directive")
        if self.standing_of(by) != Standing.PARTY:
            raise Forbidden(f"only a party stakeholder of {self.code} may dispute a directive")
        directive = self._active_directive(directive_id, "disputed")
        if directive["issuer"] == by:
            raise Forbidden("an organisation does not dispute its own directive: amend it")
        if any(d["by"] == by and d["status"] == OPEN_DISPUTE
               for d in directive.get("disputes", [])):
            raise AlreadyExists(f"{by} already has an open dispute of directive {directive_id}")
        data = dispute.model_dump(mode="json")
        self._record(self.DirectiveDisputed, actor=actor, at=at, data={
            "id": directive_id,
            "dispute": {"id": str(self.version + 1), "by": by, **data},
        })

    def escalate_conflict(
        self,
        conflict_id: str,
        escalation: Escalation,
        *,
        escalator: str | None,
        actor: Actor,
        at: datetime,
    ) -> None:
        """Move an open conflict one level up the chain, from the level the command names.

        ``escalator`` is the resolver's organisation, or ``None`` for the timer,
        which may only escalate a conflict whose due time has passed at ``at``
        and only for ``sla_expired``.  Naming ``from_level`` makes a repeat
        harmless: the second of two escalations from one level is refused.
        """
        self._require_active("escalate a conflict")
        record = self._open_conflict(conflict_id, "escalated")
        if escalator is None:
            if escalation.reason != SLA_EXPIRED or not lapsed(record, at):
                raise NotLapsed(f"conflict {conflict_id} is due {record['due']}; "
                                f"at {at.isoformat()} it has not lapsed")
        else:
            if escalation.reason == SLA_EXPIRED:
                raise ValidationFailed([("reason", f"{SLA_EXPIRED} is the timer's own reason; "
                                                   "say why you escalate")])
            self._authority(escalator, record, "escalate")
        if escalation.from_level != record["level"]:
            raise LevelMismatch(f"conflict {conflict_id} is at level {record['level']}, "
                                f"not {escalation.from_level}")
        to_level = record["level"] + 1
        if to_level >= len(self.terms["escalation_chain"]):
            raise NoHigherLevel(f"conflict {conflict_id} is at the last level of the "
                                "escalation chain; it can only be decided")
        self._record(self.ConflictEscalated, actor=actor, at=at, data={
            "conflict_id": conflict_id, "from_level": record["level"], "to_level": to_level,
            "reason": escalation.reason,
        })

    # --- queries ------------------------------------------------------------

    @property
    def code(self) -> str:
        return str(self.terms["code"])

    @property
    def stakeholder_orgs(self) -> list[str]:
        return [s["org"] for s in self.terms["stakeholders"]]

    @property
    def joint_deciders(self) -> list[str]:
        """The organisations whose approval every decision needs (SPEC §13)."""
        return list(self.terms.get("joint_decision") or ())

    @property
    def escalation_chain(self) -> list[str]:
        return list(self.terms["escalation_chain"])

    def standing_of(self, org: str) -> str | None:
        for stakeholder in self.terms["stakeholders"]:
            if stakeholder["org"] == org:
                return str(stakeholder["standing"])
        return None

    def directive(self, directive_id: str) -> dict[str, Any]:
        try:
            return self.directives[directive_id]
        except KeyError:
            raise NotFound(f"contract {self.code} has no directive {directive_id}") from None

    def dispute_conflict(self, directive_id: str, dispute_id: str) -> str:
        """The id of the ``disputed`` conflict a dispute of the directive opened."""
        for record in self.conflicts.values():
            if (record["kind"] == "disputed" and record["members"] == [directive_id]
                    and record["details"].get("dispute") == dispute_id):
                return str(record["id"])
        raise NotFound(f"no dispute {dispute_id} of directive {directive_id}")

    def active_directives(self) -> list[dict[str, Any]]:
        return [d for d in self.directives.values() if d["status"] == "active"]

    def as_dict(self) -> dict[str, Any]:
        """The contract as the API shows it: every term, its status and its directives."""
        return {
            "id": str(self.id),
            **NEW_TERMS,
            **self.terms,
            "status": self.status,
            "version": self.version,
            "created_at": self.created_at,
            "updated_at": self.modified_on.isoformat(),
            "directives": list(self.directives.values()),
        }

    # --- invariants ---------------------------------------------------------

    def _refuse_if_finished(self) -> None:
        if self.status in FINISHED:
            raise ContractFinished(f"contract {self.code} is {self.status}: it accepts no changes")

    def _require_active(self, what: str) -> None:
        if self.status != ACTIVE:
            raise ContractNotActive(
                f"cannot {what} on contract {self.code}: it is {self.status}, not active"
            )

    def _active_directive(self, directive_id: str, verb: str) -> dict[str, Any]:
        directive = self.directive(directive_id)
        if directive["status"] != "active":
            raise DirectiveNotActive(
                f"directive {directive_id} is {directive['status']} and cannot be {verb}"
            )
        return directive

    def _open_conflict(self, conflict_id: str, verb: str) -> dict[str, Any]:
        record = self.conflicts.get(conflict_id)
        if record is None:
            raise NotFound(f"contract {self.code} has no conflict {conflict_id}")
        if record["status"] != OPEN:
            raise ConflictNotOpen(
                f"conflict {conflict_id} is {record['status']} and cannot be {verb}"
            )
        return record

    def _authority(self, org: str, record: Mapping[str, Any], verb: str) -> int:
        """The level of ``org`` in the chain, if it is the conflict's level or above."""
        chain = self.terms["escalation_chain"]
        level = chain.index(org) if org in chain else -1
        if level < record["level"]:
            raise Forbidden(
                f"conflict {record['id']} is at level {record['level']} "
                f"({chain[record['level']]}); {org} may not {verb} it"
            )
        return level

    def _may_override(self, resolver: str, resolver_level: int, directive_id: str,
                      verb: str = "override") -> None:
        """SPEC §6: override only a directive whose issuer sits at or below the decider in the
        chain; an issuer outside the chain may be overridden at any level the decider may decide."""
        issuer = self.directives[directive_id]["issuer"]
        chain = self.terms["escalation_chain"]
        if issuer not in chain or chain.index(issuer) <= resolver_level:
            return
        needed = chain.index(issuer)
        raise InsufficientAuthority(
            f"{resolver} (level {resolver_level}) may not {verb} directive {directive_id} "
            f"of {issuer}: that needs level {needed} ({issuer}) or above; escalate instead",
            directive_id=directive_id, level_needed=needed, org_needed=issuer,
        )

    def _check_citation(self, directive: Mapping[str, Any]) -> None:
        """SPEC §3: a ``statute`` or ``contract`` basis names what it rests on."""
        if directive.get("basis") in CITED_BASES and not (directive.get("citation") or "").strip():
            raise ValidationFailed([(
                "citation",
                f"a {directive['basis']} basis needs a citation: the law and article for "
                "statute, the clause for contract",
            )])

    def _check_window(self, window: Mapping[str, str]) -> None:
        period = self.terms["period"]
        start, end = date.fromisoformat(period["start"]), date.fromisoformat(period["end"])
        if date.fromisoformat(window["from"]) < start or date.fromisoformat(window["to"]) > end:
            raise ValidationFailed([(
                "window",
                f"must lie within the contract period {period['start']} to {period['end']}",
            )])


def _proposal_closed(record: Mapping[str, Any], status: str,
                     answer: dict[str, Any] | None) -> dict[str, Any]:
    """The conflict with its pending proposal closed (rejected or withdrawn) and kept."""
    proposal = dict(record["proposal"])
    proposal["status"] = status
    if answer is not None:
        proposal["approvals"] = [*proposal["approvals"], answer]
    return {**record, "proposal": None,
            "proposals": [*record.get("proposals", []), proposal]}


LIFECYCLE_EVENTS: dict[str, type[ChainedAggregate.Event]] = {
    ACTIVE: ServiceContract.Activated,
    SUSPENDED: ServiceContract.Suspended,
    TERMINATED: ServiceContract.Terminated,
    CLOSED: ServiceContract.Closed,
}


def _listed(records: Mapping[str, Mapping[str, Any]]) -> list[Any] | dict[str, Any]:
    """Records as a snapshot stores them: a list in the map's order, each holding its id once.

    Decoded, the list's records are the records the aggregate holds: loading only
    keys them again by id, where rebuilding every record cost a tenth of a load.
    A map with a record whose id differs from its key is stored keyed
    (``_keyed_by_id``), so that it comes back exactly.
    """
    if all(record.get("id") == key for key, record in records.items()):
        return list(records.values())
    return _keyed_by_id(records)


def _restored(records: list[Any] | Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The records of a snapshot as the aggregate holds them; a list (``_listed``) or, as
    snapshots stored them before, a map of records without the id that keys them."""
    if type(records) is list:
        return {record["id"]: record for record in records}
    return _with_ids(records)  # type: ignore[arg-type]


def _keyed_by_id(records: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Records keyed by id, without the ``id`` their key repeats (snapshots before
    ``_listed``; now only a map whose record ids differ from their keys).

    The id is every record's first field, so ``_with_ids`` puts it back where it
    was; a record whose id is elsewhere (or differs from its key) is kept whole.
    """
    return {key: (dict(islice(record.items(), 1, None))
                  if next(iter(record), None) == "id" and record["id"] == key else record)
            for key, record in records.items()}


def _with_ids(records: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The records of a keyed snapshot as the aggregate holds them (``_keyed_by_id`` undone)."""
    return {key: record if "id" in record else {"id": key, **record}  # type: ignore[misc]
            for key, record in records.items()}
