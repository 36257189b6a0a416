"""The application service: load, command, save — with retries and idempotency.

Every public method takes the ``Caller`` first, checks the role table through
``domain.access`` and answers with plain data.  Library errors are translated
into domain errors here, so the API maps one family of errors to HTTP.

Long because the application service still holds every use case in one class; splitting
it by resource is issue 12, not done this round.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from copy import deepcopy
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, cast
from uuid import UUID, uuid4, uuid5

from eventsourcing.application import AggregateNotFoundError, Application, Repository
from eventsourcing.persistence import IntegrityError, Transcoder

from domain import access
from domain.chain import ChainedAggregate, ChainReport
from domain.conflict_view import listed
from domain.contract import ServiceContract
from domain.directives import Classification, DirectiveFields, DirectivePatch, Dispute
from domain.errors import (
    AlreadyExists,
    DomainError,
    Forbidden,
    IdempotencyKeyReused,
    IllegalTransition,
    NotFound,
    ValidationFailed,
    VersionMismatch,
)
from domain.organisations import (
    Caller,
    Directory,
    KeySpec,
    OrganisationSpec,
    Principal,
    Role,
    key_matches,
)
from domain.priorities import priority_view
from domain.resolution import SLA_EXPIRED, Approval, Decision, Escalation
from domain.shanghai_calendar import shanghai_date
from domain.subscriptions import (
    BY_OWNER,
    Subscription,
    SubscriptionPatch,
    SubscriptionRegistry,
    SubscriptionSpec,
    normalised_contracts,
)
from domain.terms import Admission, ContractTerms, Policy, StakeholderSpec
from workflows import anchoring, group_commit
from workflows.audit import audit_aggregate
from workflows.explanations import explained
from workflows.fail_fast import limit_store_retries
from workflows.idempotency import IdempotencyRecord, IdempotentRequest
from workflows.settings import Settings
from workflows.store import position_of, schema_lock
from workflows.transcoding import FastJSONTranscoder
from workflows.webhooks.signing import secret_from_bytes
from workflows.webhooks.ssrf import (
    Resolver,
    UnsafeUrl,
    check_url,
    parse_allowed_cidrs,
    system_resolver,
)
from workflows.webhooks.vault import vault_of

NAMESPACE = UUID("2b0f6c3e-5a71-4d8e-b3c9-0d4e5f6a7b8c")
DIRECTORY_ID = uuid5(NAMESPACE, "directory")
BOOTSTRAP_ADMIN = Caller(
    principal_id=str(uuid5(NAMESPACE, "bootstrap-admin")), org="threadneedle", role=Role.ADMIN
)
SLA_TIMER = Caller(
    principal_id=str(uuid5(NAMESPACE, "sla-timer")), org="threadneedle", role=Role.SUPERVISOR
)
"""Who the deadline timer acts as: it reads every contract and records escalations only."""
SUBSCRIPTION_REGISTRY_ID = uuid5(NAMESPACE, "webhook-subscriptions")
SUBSCRIPTION_NAMESPACE = uuid5(NAMESPACE, "webhook-subscription")
WEBHOOK_DELIVERY = Caller(
    principal_id=str(uuid5(NAMESPACE, "webhook-delivery")), org="threadneedle",
    role=Role.SUPERVISOR,
)
"""Who the delivery workers act as when they disable an endpoint (after a 410, or failing)."""
KEY_PREFIX = "ndl_"


class ContentionError(DomainError):
    """A command kept meeting concurrent writes and gave up."""

    code = "contention"


def contract_id_for(code: str) -> UUID:
    """Contract ids derive from their unique code, so the store itself refuses a second one."""
    return uuid5(NAMESPACE, f"contract\x00{code}")


@dataclass(frozen=True)
class CommandResult:
    id: str
    version: int
    position: int
    replayed: bool = False
    extra: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        body = {"id": self.id, "version": self.version, "position": self.position}
        return {**(self.extra or {}), **body}


@dataclass
class Change:
    """What one attempt of a command produced: the aggregates to save and its result."""

    aggregates: list[ChainedAggregate]
    target: ChainedAggregate
    result_id: str
    extra: dict[str, Any] | None = None


def utc_now() -> datetime:
    return datetime.now(UTC)


def conflicts_of(contract: ServiceContract) -> dict[str, dict[str, Any]]:
    """The conflict view the aggregate folds as it applies its events (id → record)."""
    return dict(getattr(contract, "conflicts", {}))


class LoadSafeRepository(Repository):
    """Serialise loads of one cached aggregate.

    ``eventsourcing`` 9.5 fast-forwards a cached aggregate under a lock but
    deep-copies it after releasing that lock, so a thread copying the aggregate
    while another fast-forwards it fails with "dictionary changed size during
    iteration" (seen with 32 concurrent directives on one contract).
    """

    STRIPES = 64

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._load_locks = [threading.Lock() for _ in range(self.STRIPES)]

    def get(self, aggregate_id: Any, *, version: int | None = None, **kwargs: Any) -> Any:
        if version is not None or not self.cache:
            return self._fresh(super().get(aggregate_id, version=version, **kwargs), version)
        with self._load_locks[hash(aggregate_id) % self.STRIPES]:
            aggregate = self._fresh(super().get(aggregate_id, **kwargs), None)
            if aggregate is not None and vars(aggregate).get("reloaded_from_events"):
                del vars(aggregate)["reloaded_from_events"]
                self.cache.put(aggregate_id, deepcopy(aggregate))
            return aggregate

    def _fresh(self, aggregate: Any, version: int | None) -> Any:
        """The aggregate, or, when it came from a snapshot of an older fold of its state
        (``ServiceContract.upcast_v1_v2``), the same aggregate folded from its events."""
        if not vars(aggregate).get("stale_conflicts"):
            return aggregate
        plain = Repository(event_store=self.event_store)
        reloaded: Any = plain.get(aggregate.id, version=version if version else aggregate.version)
        vars(reloaded)["reloaded_from_events"] = True
        return reloaded

    def cached_copy(self, aggregate_id: Any) -> Any:
        """A copy of the cached aggregate as it is (None if not cached), without asking
        the store for newer events: group commit lets the store's version check
        catch a stale copy, instead of one query per aggregate per batch."""
        if not self.cache:
            return None
        with self._load_locks[hash(aggregate_id) % self.STRIPES]:
            try:
                cached = self.cache.get(aggregate_id)
            except KeyError:
                return None
            return deepcopy(cached) if self.deepcopy_from_cache else cached


class Threadneedle(Application):
    name = "threadneedle"
    is_snapshotting_enabled = True
    snapshotting_intervals = {ServiceContract: 100, Directory: 100}  # noqa: RUF012

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utc_now,
        new_id: Callable[[], UUID] = uuid4,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.new_id = new_id
        self._command_locks = [threading.Lock() for _ in range(64)]
        interval = settings.snapshot_interval
        self.snapshotting_intervals = {  # type: ignore[misc]  # per instance, from settings
            ServiceContract: interval, Directory: interval,
        }
        self.chain_key = anchoring.chain_key(settings)
        if settings.uses_postgres:
            limit_store_retries(settings.store_attempts)  # an outage is a prompt 503
            with schema_lock(settings.event_store):
                super().__init__(env=anchoring.anchored_env(settings))
                anchoring.adopt_existing(self, self.chain_key)
        else:
            super().__init__(env=anchoring.anchored_env(settings))
            anchoring.adopt_existing(self, self.chain_key)

    def construct_transcoder(self) -> Transcoder:
        transcoder = FastJSONTranscoder()  # same stored bytes, faster loads
        self.register_transcodings(transcoder)
        return transcoder

    def _record(self, processing_event: Any) -> Any:
        """Record, then keep what was saved in the cache.

        With fast-forwarding on, the library leaves the cache at the old version,
        so the next command would re-apply (and re-fold) the event it just saved.
        The saved aggregate is exactly the recorded state, so it goes in as it is.
        """
        # each aggregate's new head, anchored in the events' transaction (workflows/anchoring.py)
        processing_event.saved_kwargs["chain_heads"] = anchoring.heads_of(
            processing_event.events, self.chain_key)
        recordings = super()._record(processing_event)
        cache = self.repository.cache
        if cache:
            for aggregate_id, aggregate in processing_event.aggregates.items():
                try:
                    cached = cache.get(aggregate_id)
                except KeyError:
                    cached = None
                if cached is None or cached.version < aggregate.version:
                    cache.put(aggregate_id, aggregate)
        return recordings

    def _take_snapshots(self, processing_event: Any) -> None:
        """Snapshot the saved aggregates as they are, rather than replaying them again.

        An aggregate whose saved events cross a multiple of its interval is
        snapshotted at the version it was saved at: with group commit that may be
        a little past the multiple (several commands on one contract in one save),
        which loads just as well and still bounds the events replayed after it.
        """
        if not (self.snapshots and self.snapshotting_intervals):
            return
        crossed: dict[Any, Any] = {}
        for event in processing_event.events:
            aggregate = processing_event.aggregates.get(event.originator_id)
            interval = self.snapshotting_intervals.get(type(aggregate))
            if aggregate is not None and interval and event.originator_version % interval == 0:
                crossed[event.originator_id] = aggregate
        group_commit.put_snapshots(
            self.snapshots,
            [type(a).Snapshot.take(a).sealed(self.chain_key) for a in crossed.values()],
        )

    def construct_snapshot_store(self) -> Any:
        """Sealed snapshots: one whose seal fails is skipped on load (``workflows/anchoring``)."""
        store = anchoring.SealedSnapshotStore(
            mapper=self.mapper, recorder=self.factory.aggregate_recorder(purpose="snapshots"))
        store.key = self.chain_key
        return store

    def construct_repository(self) -> Repository:
        plain = super().construct_repository()
        return LoadSafeRepository(
            event_store=plain.event_store, snapshot_store=plain.snapshot_store,
            cache_maxsize=self.settings.aggregate_cache_size, fastforward=plain.fastforward,
            fastforward_skipping=plain.fastforward_skipping,
            deepcopy_from_cache=plain.deepcopy_from_cache,
        )

    # --- organisations and keys --------------------------------------------

    def register_organisation(
        self, caller: Caller, spec: OrganisationSpec, request: IdempotentRequest | None = None
    ) -> CommandResult:
        access.require_admin(caller, "register organisations")

        def attempt() -> Change:
            directory = self._directory(caller)
            directory.register(spec, actor=caller.actor, at=self.clock())
            return Change([directory], directory, spec.id)

        return self._execute(caller, request, attempt, serial_key=str(DIRECTORY_ID))

    def list_organisations(self, caller: Caller) -> list[dict[str, str]]:
        access.require_admin(caller, "list organisations")
        return list(self._directory(caller).organisations.values())

    def create_key(
        self, caller: Caller, spec: KeySpec, request: IdempotentRequest | None = None
    ) -> CommandResult:
        access.require_admin(caller, "create keys")

        def attempt() -> Change:
            self._directory(caller).require_organisations(spec.org)
            principal_id = request.derived_id(NAMESPACE, caller.principal_id) if request \
                else self.new_id()
            raw_key = f"{KEY_PREFIX}{principal_id.hex}_{secrets.token_urlsafe(32)}"
            principal = Principal.issue(
                principal_id=principal_id, spec=spec, raw_key=raw_key,
                actor=caller.actor, at=self.clock(),
            )
            extra = {"org": spec.org, "role": spec.role.value}
            return Change([principal], principal, str(principal_id), {**extra, "key": raw_key})

        return self._execute(caller, request, attempt)

    def revoke_key(self, caller: Caller, key_id: str) -> CommandResult:
        access.require_admin(caller, "revoke keys")

        def attempt() -> Change:
            principal = self._get(Principal, key_id, "key")
            if principal.revoked:  # a second revocation would record nothing to answer with
                raise IllegalTransition("the key is already revoked")
            principal.revoke(actor=caller.actor, at=self.clock())
            return Change([principal], principal, key_id)

        return self._execute(caller, None, attempt)

    def authenticate(self, raw_key: str) -> Caller | None:
        admin_key = self.settings.admin_key
        if admin_key and secrets.compare_digest(raw_key, admin_key.get_secret_value()):
            return BOOTSTRAP_ADMIN
        if not raw_key.startswith(KEY_PREFIX) or len(raw_key) < len(KEY_PREFIX) + 34:
            return None
        try:
            principal_id = UUID(hex=raw_key[len(KEY_PREFIX): len(KEY_PREFIX) + 32])
            principal: object = self._current(principal_id)
        except (ValueError, AggregateNotFoundError):
            return None
        if not isinstance(principal, Principal) or principal.revoked:
            return None
        if not key_matches(raw_key, principal.key_hash):
            return None
        return Caller(principal_id=str(principal.id), org=principal.org, role=principal.role)

    # --- contracts ------------------------------------------------------------

    def draft_contract(
        self, caller: Caller, terms: ContractTerms, request: IdempotentRequest | None = None
    ) -> CommandResult:
        access.require_admin(caller, "draft contracts")
        contract_id = contract_id_for(terms.code)

        def attempt() -> Change:
            directory = self._directory(caller)
            directory.require_organisations(
                terms.purchaser, terms.provider,
                *(s.org for s in terms.stakeholders), *terms.escalation_chain,
            )
            if str(contract_id) in directory.contracts:
                raise AlreadyExists(f"a contract with code {terms.code} already exists")
            at = self.clock()
            contract = ServiceContract.draft(
                contract_id=contract_id, terms=terms, actor=caller.actor, at=at
            )
            directory.list_contract(contract_id, terms.code, actor=caller.actor, at=at)
            return Change([contract, directory], contract, str(contract_id))

        return self._execute(caller, request, attempt, serial_key=str(DIRECTORY_ID))

    def list_contracts(self, caller: Caller) -> list[dict[str, Any]]:
        summaries = []
        for contract_id in self._directory(caller).contracts:
            contract = self._get(ServiceContract, contract_id, "contract")
            if access.can_read(caller, contract):
                full = contract.as_dict()
                summaries.append({k: v for k, v in full.items() if k != "directives"}
                                 | {"directive_count": len(contract.directives)})
        return summaries

    def readable_contract_ids(self, caller: Caller) -> frozenset[str]:
        """The ids of every contract the caller may read (for cross-contract views)."""
        every = self._directory(caller).contracts
        if caller.role in access.EVERYTHING:
            return frozenset(every)
        return frozenset(
            contract_id for contract_id in every
            if access.can_read(caller, self._get(ServiceContract, contract_id, "contract"))
        )

    def contract(
        self,
        caller: Caller,
        contract_id: str,
        *,
        version: int | None = None,
        as_of: datetime | None = None,
    ) -> ServiceContract:
        """The contract now, or as it was at a version or a time (replayed from the store)."""
        current = self._readable(caller, contract_id)
        if as_of is not None:
            version = self._version_at(current, as_of)
        if version is None or version == current.version:
            return current
        if version > current.version:
            raise NotFound(f"contract {current.code} has no version {version} yet")
        past: object = self.repository.get(current.id, version=version)
        assert isinstance(past, ServiceContract)
        return past

    def conflict_view_at(
        self,
        caller: Caller,
        contract_id: str,
        *,
        version: int | None = None,
        as_of: datetime | None = None,
        status: str | None = None,
    ) -> dict[str, Any]:
        """The conflict view replayed from the event store, now or at a version or a time.

        ``status`` filters as the live view does (open and resolved by default).
        """
        contract = self.contract(caller, contract_id, version=version, as_of=as_of)
        names = self.organisation_names()
        return {
            "contract_id": str(contract.id),
            "version": contract.version,
            "conflicts": [explained(record, names)
                          for record in listed(conflicts_of(contract), status)],
        }

    def priority_view_at(
        self,
        caller: Caller,
        contract_id: str,
        *,
        version: int | None = None,
        as_of: datetime | None = None,
        profile: str | None = None,
    ) -> dict[str, Any]:
        """The priority view replayed from the event store; ``profile`` makes it a what-if.

        Urgency is reckoned against the Asia/Shanghai date of ``as_of``, or of the
        last replayed event when only ``version`` is given, or of today when
        neither is (a what-if on the current state).
        """
        contract = self.contract(caller, contract_id, version=version, as_of=as_of)
        if as_of is not None:
            reference = shanghai_date(as_of)
        elif version is not None:
            reference = shanghai_date(contract.modified_on)
        else:
            reference = shanghai_date(self.clock())
        view = priority_view(contract.terms, contract.active_directives(), reference,
                             profile=profile, conflicts=contract.conflicts)
        return {"contract_id": str(contract.id), "version": contract.version, **view}

    def add_stakeholder(
        self,
        caller: Caller,
        contract_id: str,
        spec: StakeholderSpec,
        *,
        request: IdempotentRequest | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        def act(contract: ServiceContract) -> str:
            access.require_admin(caller, "add stakeholders")
            self._directory(caller).require_organisations(spec.org)
            contract.add_stakeholder(spec, actor=caller.actor, at=self.clock())
            return spec.org

        return self._on_contract(
            caller, contract_id, act, request=request, expected_version=expected_version
        )

    def change_policy(
        self,
        caller: Caller,
        contract_id: str,
        policy: Policy,
        *,
        expected_version: int | None = None,
    ) -> CommandResult:
        def act(contract: ServiceContract) -> str:
            access.require_admin(caller, "change the policy")
            contract.change_policy(policy, actor=caller.actor, at=self.clock())
            return str(contract.id)

        return self._on_contract(caller, contract_id, act, expected_version=expected_version)

    def transition(
        self,
        caller: Caller,
        contract_id: str,
        command: str,
        *,
        request: IdempotentRequest | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        def act(contract: ServiceContract) -> str:
            access.require_admin(caller, f"{command} contracts")
            contract.transition(command, actor=caller.actor, at=self.clock())
            return str(contract.id)

        return self._on_contract(
            caller, contract_id, act, request=request, expected_version=expected_version
        )

    # --- directives -----------------------------------------------------------

    def issue_directive(
        self,
        caller: Caller,
        contract_id: str,
        fields: DirectiveFields,
        *,
        request: IdempotentRequest | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        def act(contract: ServiceContract) -> str:
            access.require_stakeholder(caller, contract)
            directive_id = (
                request.derived_id(contract.id, caller.principal_id) if request else self.new_id()
            )
            contract.issue_directive(
                fields, directive_id=directive_id, issuer=caller.org,
                actor=caller.actor, at=self.clock(),
            )
            return str(directive_id)

        return self._on_contract(
            caller, contract_id, act, request=request, expected_version=expected_version
        )

    def amend_directive(
        self,
        caller: Caller,
        contract_id: str,
        directive_id: str,
        patch: DirectivePatch,
        *,
        expected_version: int | None = None,
    ) -> CommandResult:
        def act(contract: ServiceContract) -> str:
            access.require_issuer(caller, contract, directive_id)
            contract.amend_directive(directive_id, patch, actor=caller.actor, at=self.clock())
            return directive_id

        return self._on_contract(caller, contract_id, act, expected_version=expected_version)

    def withdraw_directive(
        self,
        caller: Caller,
        contract_id: str,
        directive_id: str,
        *,
        expected_version: int | None = None,
    ) -> CommandResult:
        def act(contract: ServiceContract) -> str:
            access.require_issuer(caller, contract, directive_id)
            contract.withdraw_directive(directive_id, actor=caller.actor, at=self.clock())
            return directive_id

        return self._on_contract(caller, contract_id, act, expected_version=expected_version)

    # --- conflicts ------------------------------------------------------------

    def resolve_conflict(
        self,
        caller: Caller,
        contract_id: str,
        conflict_id: str,
        decision: Decision,
        *,
        request: IdempotentRequest | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        def act(contract: ServiceContract) -> str:
            access.require_resolver(caller, contract)
            contract.resolve_conflict(conflict_id, decision, resolver=caller.org,
                                      actor=caller.actor, at=self.clock())
            return conflict_id

        return self._on_contract(
            caller, contract_id, act, request=request, expected_version=expected_version
        )

    def escalate_conflict(
        self,
        caller: Caller,
        contract_id: str,
        conflict_id: str,
        escalation: Escalation,
        *,
        request: IdempotentRequest | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        def act(contract: ServiceContract) -> str:
            access.require_resolver(caller, contract)
            contract.escalate_conflict(conflict_id, escalation, escalator=caller.org,
                                       actor=caller.actor, at=self.clock())
            return conflict_id

        return self._on_contract(
            caller, contract_id, act, request=request, expected_version=expected_version
        )

    # --- who may ask, who decides (SPEC §13) --------------------------------------

    def change_admission(
        self, caller: Caller, contract_id: str, admission: Admission, *,
        expected_version: int | None = None,
    ) -> CommandResult:
        def act(contract: ServiceContract) -> str:
            access.require_admin(caller, "change the admission list")
            contract.change_admission(admission, actor=caller.actor, at=self.clock())
            return str(contract.id)

        return self._on_contract(caller, contract_id, act, expected_version=expected_version)

    def classify_directive(
        self, caller: Caller, contract_id: str, directive_id: str,
        classification: Classification, *, request: IdempotentRequest | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        def act(contract: ServiceContract) -> str:
            access.require_provider(caller, contract)
            contract.classify_directive(directive_id, classification, actor=caller.actor,
                                        at=self.clock())
            return directive_id

        return self._on_contract(
            caller, contract_id, act, request=request, expected_version=expected_version
        )

    def dispute_directive(
        self, caller: Caller, contract_id: str, directive_id: str, dispute: Dispute, *,
        request: IdempotentRequest | None = None, expected_version: int | None = None,
    ) -> CommandResult:
        """Answers the id of the ``disputed`` conflict the dispute opened."""

        def act(contract: ServiceContract) -> str:
            access.require_stakeholder(caller, contract)
            contract.dispute_directive(directive_id, dispute, by=caller.org,
                                       actor=caller.actor, at=self.clock())
            return contract.dispute_conflict(directive_id, str(contract.version))

        return self._on_contract(
            caller, contract_id, act, request=request, expected_version=expected_version
        )

    def answer_proposal(
        self, caller: Caller, contract_id: str, conflict_id: str, answer: Approval, *,
        request: IdempotentRequest | None = None, expected_version: int | None = None,
    ) -> CommandResult:
        def act(contract: ServiceContract) -> str:
            access.require_joint_decider(caller, contract)
            contract.answer_proposal(conflict_id, org=caller.org, approve=answer.approve,
                                     note=answer.note, actor=caller.actor, at=self.clock())
            return conflict_id

        return self._on_contract(
            caller, contract_id, act, request=request, expected_version=expected_version
        )

    def escalate_lapsed_conflict(
        self, contract_id: str, conflict_id: str, from_level: int, *, now: datetime
    ) -> CommandResult:
        """The timer's escalation: ``sla_expired``, from ``from_level``, recorded at ``now``.

        The same command as a resolver's; the contract refuses it unless the
        conflict is still open at ``from_level`` and lapsed at ``now``.
        """
        escalation = Escalation(from_level=from_level, reason=SLA_EXPIRED)

        def act(contract: ServiceContract) -> str:
            contract.escalate_conflict(conflict_id, escalation, escalator=None,
                                       actor=SLA_TIMER.actor, at=now)
            return conflict_id

        return self._on_contract(SLA_TIMER, contract_id, act)

    # --- webhook subscriptions ------------------------------------------------------
    # Owner = the organisation of the key that subscribed; admins manage every
    # subscription, stakeholder keys those of their organisation (another
    # organisation's, or one an admin made, is "not found").  Resolver and
    # supervisor keys manage none.  Secrets are shown once: never kept in an
    # idempotency record, so a repeat answers ``secret: null``.

    webhook_resolver: Resolver = staticmethod(system_resolver)
    """How webhook hosts are resolved when a URL is checked (tests may give another)."""

    class _Unchanged(Exception):  # a signal, not an error
        """A subscription command that changed nothing: answer its current version."""

        def __init__(self, subscription: Subscription) -> None:
            super().__init__(str(subscription.id))
            self.subscription = subscription

    def create_subscription(
        self, caller: Caller, spec: SubscriptionSpec, request: IdempotentRequest | None = None
    ) -> CommandResult:
        """Subscribe ``spec.url``; the answer carries the new secret (``extra["secret"]``) once."""
        self._require_webhook_role(caller)
        self._check_webhook_url(spec.url)
        shown: dict[str, str] = {}

        def attempt() -> Change:
            self._check_subscribed_contracts(caller, spec.contracts)
            subscription_id = request.derived_id(SUBSCRIPTION_NAMESPACE, caller.principal_id) \
                if request else self.new_id()
            secret = secret_from_bytes(secrets.token_bytes(32))
            at = self.clock()
            subscription = Subscription.subscribe(
                subscription_id=subscription_id, owner=caller, url=spec.url,
                event_types=spec.event_types, contracts=spec.contracts,
                description=spec.description, actor=caller.actor, at=at,
                secret=vault_of(self).seal(secret, str(subscription_id)),  # never in clear
            )
            registry = self._subscription_registry(caller)
            registry.add(subscription, actor=caller.actor, at=at)
            shown["secret"] = secret
            return Change([subscription, registry], subscription, str(subscription_id),
                          subscription.as_dict())

        result = self._execute(caller, request, attempt, serial_key=str(SUBSCRIPTION_REGISTRY_ID))
        secret = None if result.replayed else shown.get("secret")
        return replace(result, extra={**(result.extra or {}), "secret": secret})

    def list_subscriptions(self, caller: Caller) -> list[dict[str, Any]]:
        """The subscriptions the caller manages, oldest first, without secrets."""
        self._require_webhook_role(caller)
        org = None if caller.role is Role.ADMIN else caller.org
        listed = []
        for subscription_id in self._subscription_registry(caller).ids(org):
            subscription = self._get(Subscription, subscription_id, "webhook subscription")
            if self._manages(caller, subscription):
                listed.append(subscription.as_dict())
        return listed

    def subscription(self, caller: Caller, subscription_id: str) -> Subscription:
        """One subscription the caller manages (404 for any other, or a deleted one)."""
        self._require_webhook_role(caller)
        return self._manageable(caller, subscription_id)

    def update_subscription(
        self, caller: Caller, subscription_id: str, patch: SubscriptionPatch
    ) -> CommandResult:
        """Change the URL, types, contracts or description; ``enabled`` disables or
        re-enables it.  A new URL is checked like a new subscription's."""
        self._require_webhook_role(caller)
        given = patch.model_dump(include=patch.model_fields_set)
        if "url" in given:
            self._check_webhook_url(given["url"])
        enabled = given.pop("enabled", None)

        def act(subscription: Subscription) -> None:
            if "contracts" in given:
                self._check_subscribed_contracts(caller, given["contracts"])
            at = self.clock()
            subscription.change(given, actor=caller.actor, at=at)
            if enabled is True:
                subscription.enable(actor=caller.actor, at=at)
            elif enabled is False:
                subscription.disable(BY_OWNER, actor=caller.actor, at=at)

        return self._on_subscription(caller, subscription_id, act)

    def delete_subscription(self, caller: Caller, subscription_id: str) -> CommandResult:
        """Delete: nothing more is sent, and the subscription is gone from every list."""
        self._require_webhook_role(caller)

        def attempt() -> Change:
            subscription = self._manageable(caller, subscription_id)
            at = self.clock()
            subscription.delete(actor=caller.actor, at=at)
            registry = self._subscription_registry(caller)
            registry.remove(subscription.id, actor=caller.actor, at=at)
            return Change([subscription, registry], subscription, str(subscription.id))

        result = self._execute(caller, None, attempt, serial_key=str(SUBSCRIPTION_REGISTRY_ID))
        deleted = self.load_subscription(result.id)  # its secrets are destroyed with it
        vault_of(self).destroy([deleted.secret, deleted.previous_secret], self.clock())
        return result

    def rotate_secret(
        self, caller: Caller, subscription_id: str, request: IdempotentRequest | None = None
    ) -> CommandResult:
        """A new secret, shown once; the previous one signs too for 24 hours."""
        self._require_webhook_role(caller)
        shown: dict[str, str] = {}

        retired: dict[str, Any] = {}

        def act(subscription: Subscription) -> None:
            secret = secret_from_bytes(secrets.token_bytes(32))
            retired.update(current=subscription.secret, older=subscription.previous_secret)
            subscription.rotate_secret(vault_of(self).seal(secret, str(subscription.id)),
                                       actor=caller.actor, at=self.clock())
            retired["until"] = subscription.previous_secret_until
            shown["secret"] = secret

        result = self._on_subscription(caller, subscription_id, act, request=request)
        if retired and not result.replayed:  # saved: the retired secrets' keys are destroyed
            vault_of(self).destroy([retired["older"]], self.clock())
            vault_of(self).destroy_after(retired["current"],
                                         datetime.fromisoformat(retired["until"]))
        secret = None if result.replayed else shown.get("secret")
        return replace(result, extra={**(result.extra or {}), "secret": secret})

    def listed_subscriptions(self) -> list[Subscription]:
        """For the dispatcher: every subscription not deleted, enabled or not, oldest first."""
        registry = self._subscription_registry(WEBHOOK_DELIVERY)
        return [self._get(Subscription, sid, "webhook subscription") for sid in registry.ids()]

    def active_subscriptions(self) -> list[Subscription]:
        """Every enabled subscription, oldest first."""
        return [subscription for subscription in self.listed_subscriptions()
                if subscription.enabled]

    def load_subscription(self, subscription_id: str | UUID) -> Subscription:
        """For the workers: a subscription as stored, whatever its status (deleted included)."""
        subscription: Subscription = self._get(Subscription, subscription_id,
                                               "webhook subscription")
        return subscription

    def disable_subscription(self, subscription_id: str | UUID, reason: str) -> CommandResult:
        """For the workers: disable after a 410 (``gone``) or too long failing (``failing``).

        Already disabled or deleted: nothing is recorded (the first reason stays).
        """
        def act(subscription: Subscription) -> None:
            if not subscription.deleted:
                subscription.disable(reason, actor=WEBHOOK_DELIVERY.actor, at=self.clock())

        return self._on_subscription(WEBHOOK_DELIVERY, str(subscription_id), act,
                                     include_deleted=True)

    def _on_subscription(
        self,
        caller: Caller,
        subscription_id: str,
        act: Callable[[Subscription], None],
        *,
        request: IdempotentRequest | None = None,
        include_deleted: bool = False,
    ) -> CommandResult:
        """Load a subscription the caller manages, let ``act`` change it, save.

        A command that changes nothing (re-enabling an enabled subscription)
        answers the current version and records nothing.
        """
        def attempt() -> Change:
            if include_deleted:
                subscription = self.load_subscription(subscription_id)
            else:
                subscription = self._manageable(caller, subscription_id)
            act(subscription)
            if not subscription.pending_events:
                raise self._Unchanged(subscription)
            return Change([subscription], subscription, str(subscription.id))

        try:
            return self._execute(caller, request, attempt, serial_key=subscription_id)
        except self._Unchanged as unchanged:
            current = unchanged.subscription
            return CommandResult(str(current.id), current.version,
                                 position_of(self.recorder, current.id, current.version))

    def _require_webhook_role(self, caller: Caller) -> None:
        if caller.role not in (Role.ADMIN, Role.STAKEHOLDER):
            raise Forbidden("only stakeholder and admin keys manage webhook subscriptions")

    def _manages(self, caller: Caller, subscription: Subscription) -> bool:
        if subscription.deleted:
            return False
        if caller.role is Role.ADMIN:
            return True
        return subscription.owner == {"org": caller.org, "role": caller.role.value}

    def _manageable(self, caller: Caller, subscription_id: str) -> Subscription:
        subscription: Subscription = self._get(Subscription, subscription_id,
                                               "webhook subscription")
        if not self._manages(caller, subscription):
            raise NotFound(f"no webhook subscription {subscription_id}")
        return subscription

    def _check_webhook_url(self, url: str) -> None:
        """The SSRF guard at subscription time: ``UnsafeUrl`` → 422 on ``url``."""
        allowed = parse_allowed_cidrs(self.settings.webhook_allowed_cidrs)
        try:
            check_url(url, allowed, self.webhook_resolver)
        except UnsafeUrl as error:
            raise ValidationFailed([("url", f"{error.reason}: {error.detail}")]) from None

    def _check_subscribed_contracts(self, caller: Caller, contracts: list[str] | None) -> None:
        """A subscription may name only contracts its caller may read (else 422, as if unknown)."""
        for reference in normalised_contracts(contracts) or []:
            try:
                contract = self._get(ServiceContract, reference, "contract")
            except NotFound:
                contract = None
            if contract is None or not access.can_read(caller, contract):
                raise ValidationFailed(
                    [("contracts", f"no contract {reference} that you may read")])

    def _subscription_registry(self, caller: Caller) -> SubscriptionRegistry:
        try:
            registry: object = self.repository.get(SUBSCRIPTION_REGISTRY_ID)
        except AggregateNotFoundError:
            registry = SubscriptionRegistry.open(
                registry_id=SUBSCRIPTION_REGISTRY_ID, actor=caller.actor, at=self.clock())
        assert isinstance(registry, SubscriptionRegistry)
        return registry

    # --- history --------------------------------------------------------------

    def history(
        self, caller: Caller, contract_id: str, *, after_version: int = 0, limit: int = 100
    ) -> dict[str, Any]:
        contract = self._readable(caller, contract_id)
        access.require_history(caller, contract)
        events = self._events(contract.id, gt=after_version, limit=limit + 1)
        page = [event_record(e) for e in events[:limit]]
        more = len(events) > limit
        return {"events": page, "next_after_version": page[-1]["version"] if more else None}

    def audit(self, caller: Caller, contract_id: str) -> ChainReport:
        contract = self._readable(caller, contract_id)
        access.require_audit(caller, contract)
        return audit_aggregate(self, contract.id)

    def export(self, caller: Caller, contract_id: str) -> Iterator[dict[str, Any]]:
        contract = self._readable(caller, contract_id)
        access.require_audit(caller, contract)
        for event in self._events(contract.id):
            yield event_record(event)

    def head_position(self) -> int:
        return int(self.recorder.max_notification_id() or 0)

    # --- machinery ------------------------------------------------------------

    def _execute(
        self,
        caller: Caller,
        request: IdempotentRequest | None,
        attempt: Callable[[], Change],
        *,
        serial_key: str | None = None,
    ) -> CommandResult:
        """Run a command, retrying on optimistic-concurrency conflicts; honour idempotency.

        Concurrent commands are recorded together, one transaction per batch
        (``workflows/group_commit.py``).  Without group commit, commands on one
        aggregate (``serial_key``) take turns within this process, so concurrent
        clients of one contract do not all load the same version and all but one
        retry; other processes are still handled by the retries.
        """
        if self._group_commit is not None:
            return cast("CommandResult", self._group_commit.run(caller, request, attempt))
        stripe = hash(serial_key) % len(self._command_locks) if serial_key else None
        with self._command_locks[stripe] if stripe is not None else nullcontext():
            return self._attempt_until_saved(caller, request, attempt)

    def _on_contract(
        self,
        caller: Caller,
        contract_id: str,
        act: Callable[[ServiceContract], str],
        *,
        request: IdempotentRequest | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """A command on one contract: load it (checking ``If-Match``), let ``act``
        authorise and change it and name what it changed, save."""

        def attempt() -> Change:
            contract = self._for_command(caller, contract_id, expected_version)
            return Change([contract], contract, act(contract))

        return self._execute(caller, request, attempt, serial_key=contract_id)

    def _attempt_until_saved(
        self,
        caller: Caller,
        request: IdempotentRequest | None,
        attempt: Callable[[], Change],
    ) -> CommandResult:
        for _ in range(self.settings.command_retries):
            if request is not None and (earlier := self._earlier(caller, request)):
                return earlier
            change = attempt()
            try:
                recordings = self.save(*self._with_idempotency(caller, request, change))
            except IntegrityError:
                continue  # someone else wrote first: reload and try again
            position = max(
                r.notification.id for r in recordings
                if r.domain_event.originator_id == change.target.id
            )
            return self._result(change, change.target.version, position)
        raise ContentionError("the contract is being changed too often; try again")

    @cached_property
    def _group_commit(self) -> group_commit.GroupCommitter | None:
        """The one committer of this application (None when ``NEEDLE_GROUP_COMMIT=0``)."""
        return group_commit.GroupCommitter(self) if group_commit.enabled() else None

    def _with_idempotency(
        self, caller: Caller, request: IdempotentRequest | None, change: Change
    ) -> list[ChainedAggregate]:
        """What one command saves: its aggregates, and its idempotency record if it has a key."""
        aggregates = list(change.aggregates)
        if request is not None:
            aggregates.append(IdempotencyRecord.keep(
                record_id=request.record_id(caller.principal_id),
                fingerprint=request.fingerprint,
                result={"id": change.result_id,
                        "target": str(change.target.id),
                        "version": change.target.version,
                        "extra": {k: v for k, v in (change.extra or {}).items()
                                  if k != "key"}},
                actor=caller.actor, at=self.clock(),
            ))
        return aggregates

    @staticmethod
    def _result(change: Change, version: int, position: int) -> CommandResult:
        return CommandResult(change.result_id, version, position, extra=change.extra)

    def _current(self, aggregate_id: UUID) -> object:
        """The cached aggregate itself, for reading only, when the store holds nothing
        newer; else a fresh load.

        Why: every request authenticates, and all of one client's requests load the
        same principal; the repository's load holds that aggregate's lock across a
        round trip and deep-copies it, so they queued one behind the other.  Here
        the check is one small query, in parallel, and nothing is copied: a key
        revoked by another process is still refused at once.
        """
        cache = self.repository.cache
        try:
            cached = cache.get(aggregate_id) if cache else None
        except KeyError:
            cached = None
        if cached is not None and not self.recorder.select_events(
                aggregate_id, gt=cached.version, limit=1):
            return cached
        return self.repository.get(aggregate_id)

    def _load(self, aggregate_id: UUID) -> object:
        """The running batch's working copy when in one (so a command sees the batch's
        earlier commands), else the repository's copy."""
        working = group_commit.working_set()
        return working.get(aggregate_id) if working else self.repository.get(aggregate_id)

    def _earlier(self, caller: Caller, request: IdempotentRequest) -> CommandResult | None:
        try:
            record: IdempotencyRecord = self.repository.get(request.record_id(caller.principal_id))
        except AggregateNotFoundError:
            return None
        outcome = record.outcome
        if outcome["fingerprint"] != request.fingerprint:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was already used with a different request"
            )
        target = UUID(outcome["target"])
        extra = dict(outcome.get("extra") or {})
        if "org" in extra and "role" in extra:
            extra["key"] = None  # a key is shown once; a repeat cannot show it again
        return CommandResult(
            outcome["id"], outcome["version"],
            position_of(self.recorder, target, outcome["version"]),
            replayed=True, extra=extra or None,
        )

    def _events(
        self,
        originator_id: UUID,
        *,
        gt: int | None = None,
        lte: int | None = None,
        limit: int | None = None,
    ) -> list[ChainedAggregate.Event]:
        """The stored events of one aggregate (every aggregate here is chained)."""
        events = self.repository.event_store.get(originator_id, gt=gt, lte=lte, limit=limit)
        return cast("list[ChainedAggregate.Event]", list(events))

    def organisation_names(self) -> dict[str, str]:
        """Every registered organisation's name by id (explanations name organisations)."""
        try:
            directory: object = self._load(DIRECTORY_ID)
        except AggregateNotFoundError:
            return {}
        assert isinstance(directory, Directory)
        return {org: record["name"] for org, record in directory.organisations.items()}

    def _directory(self, caller: Caller) -> Directory:
        try:
            directory: object = self._load(DIRECTORY_ID)
        except AggregateNotFoundError:
            directory = Directory.open(directory_id=DIRECTORY_ID, actor=caller.actor,
                                       at=self.clock())
        assert isinstance(directory, Directory)
        return directory

    def _get(self, kind: type[ChainedAggregate], aggregate_id: str | UUID, noun: str) -> Any:
        try:
            uuid = aggregate_id if isinstance(aggregate_id, UUID) else UUID(aggregate_id)
            aggregate: object = self._load(uuid)
        except (ValueError, AggregateNotFoundError):
            raise NotFound(f"no {noun} {aggregate_id}") from None
        if not isinstance(aggregate, kind):
            raise NotFound(f"no {noun} {aggregate_id}")
        return aggregate

    def _readable(self, caller: Caller, contract_id: str) -> ServiceContract:
        contract: ServiceContract = self._get(ServiceContract, contract_id, "contract")
        access.require_read(caller, contract)
        return contract

    def _for_command(
        self, caller: Caller, contract_id: str, expected_version: int | None
    ) -> ServiceContract:
        contract = self._readable(caller, contract_id)
        if expected_version is not None and expected_version != contract.version:
            raise VersionMismatch(
                f"contract {contract.code} is at version {contract.version}, "
                f"not {expected_version}"
            )
        return contract

    def _version_at(self, contract: ServiceContract, as_of: datetime) -> int:
        """The last version recorded at or before ``as_of`` (binary search on event times)."""
        if as_of.tzinfo is None:
            as_of = as_of.replace(tzinfo=UTC)
        low, high, found = 1, contract.version, 0
        while low <= high:
            middle = (low + high) // 2
            (event,) = self._events(contract.id, gt=middle - 1, lte=middle)
            if event.timestamp <= as_of:
                found, low = middle, middle + 1
            else:
                high = middle - 1
        if not found:
            raise NotFound(f"contract {contract.code} did not exist yet at {as_of.isoformat()}")
        return found

    # --- replay for supervisors --------------------------------------------------

    def diff(
        self, caller: Caller, contract_id: str, *, from_version: int, to_version: int,
    ) -> dict[str, Any]:
        """What changed between two versions (SPEC §9 diff shape), replayed from the store."""
        from workflows import replay  # replay builds on this module

        return replay.diff(self, caller, contract_id,
                           from_version=from_version, to_version=to_version)


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


__all__ = [
    "SLA_TIMER", "CommandResult", "Threadneedle", "asdict", "conflicts_of", "contract_id_for",
    "event_record",
]
