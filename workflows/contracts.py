"""Use cases of contracts: draft, list, read (now or in the past), stakeholders,
policy and lifecycle.

``on_contract`` is the shape of every command on one contract (here, and in
``directives.py`` and ``resolution.py``): load the contract the caller may
read (checking ``If-Match``), let ``act`` authorise and change it and name
what it changed, save through the ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from domain import access
from domain.contract import ServiceContract
from domain.errors import AlreadyExists, NotYet, VersionMismatch
from domain.organisations import Caller
from domain.terms import ContractTerms, Policy, StakeholderSpec
from workflows.collector import collection_paused
from workflows.directory import directory
from workflows.idempotency import IdempotentRequest
from workflows.identities import DIRECTORY_ID, contract_id_for
from workflows.ledger import Change, CommandResult, Ledger

# --- loading -------------------------------------------------------------------------


def readable(ledger: Ledger, caller: Caller, contract_id: str) -> ServiceContract:
    """The contract, if the caller may read it (``NotFound`` for anyone else)."""
    contract: ServiceContract = ledger.find(ServiceContract, contract_id, "contract")
    access.require_read(caller, contract)
    return contract


def read_contract(ledger: Ledger, caller: Caller, contract_id: str, *, version: int | None = None,
                  as_of: datetime | None = None) -> ServiceContract:
    """The contract now, or as it was at a version or a time (replayed from the store)."""
    current = readable(ledger, caller, contract_id)
    if as_of is not None:
        version = version_at(ledger, current, as_of)
    if version is None or version == current.version:
        return current
    require_version(current, version)
    with collection_paused():  # a whole state built from a snapshot: no cycles to find
        past: object = ledger.repository.get(current.id, version=version,
                                             projector_func=applied)
    assert isinstance(past, ServiceContract)
    return past


def require_version(current: ServiceContract, version: int) -> None:
    """``NotYet`` when ``version`` is after the contract's current one."""
    if version > current.version:
        raise NotYet(f"contract {current.code} has no version {version} yet",
                     version=version, latest=current.version)


def applied(aggregate: Any, events: Iterable[Any]) -> Any:
    """The aggregate with each event applied in turn: ``eventsourcing``'s
    ``project_aggregate`` without its assertion that each event satisfies a runtime
    ``Protocol`` (an ``isinstance`` check of about 12 us: a load as of a version applies
    some fifty events after its snapshot)."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def version_at(ledger: Ledger, contract: ServiceContract, as_of: datetime) -> int:
    """The last version recorded at or before ``as_of`` (binary search on event times)."""
    if as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=UTC)
    low, high, found = 1, contract.version, 0
    while low <= high:
        middle = (low + high) // 2
        (event,) = ledger.events_of(contract.id, gt=middle - 1, lte=middle)
        if event.timestamp <= as_of:
            found, low = middle, middle + 1
        else:
            high = middle - 1
    if not found:
        raise NotYet(f"contract {contract.code} did not exist yet at {as_of.isoformat()}",
                     as_of=as_of.isoformat())
    return found


def on_contract(ledger: Ledger, caller: Caller, contract_id: str,
                act: Callable[[ServiceContract], str], *, request: IdempotentRequest | None = None,
                expected_version: int | None = None) -> CommandResult:
    """A command on one contract: load it (checking ``If-Match``), let ``act``
    authorise and change it and name what it changed, save."""
    attempt = contract_attempt(ledger, caller, contract_id, act, expected_version)
    return ledger.execute(caller, request, attempt, serial_key=contract_id)


def contract_attempt(ledger: Ledger, caller: Caller, contract_id: str,
                     act: Callable[[ServiceContract], str],
                     expected_version: int | None = None) -> Callable[[], Change]:
    """``on_contract``'s attempt, for a caller that submits it (``Ledger.submit``)."""

    def attempt() -> Change:
        contract = readable(ledger, caller, contract_id)
        if expected_version is not None and expected_version != contract.version:
            raise VersionMismatch(
                f"contract {contract.code} is at version {contract.version}, "
                f"not {expected_version}"
            )
        return Change([contract], contract, act(contract))

    return attempt


# --- use cases -----------------------------------------------------------------------


def draft_contract(ledger: Ledger, caller: Caller, terms: ContractTerms,
                   request: IdempotentRequest | None = None) -> CommandResult:
    access.require_admin(caller, "draft contracts")
    contract_id = contract_id_for(terms.code)

    def attempt() -> Change:
        listing = directory(ledger, caller)
        listing.require_organisations(
            terms.purchaser, terms.provider,
            *(s.org for s in terms.stakeholders), *terms.escalation_chain,
        )
        if str(contract_id) in listing.contracts:
            raise AlreadyExists(f"a contract with code {terms.code} already exists")
        at = ledger.clock()
        contract = ServiceContract.draft(
            contract_id=contract_id, terms=terms, actor=caller.actor, at=at
        )
        listing.list_contract(contract_id, terms.code, actor=caller.actor, at=at)
        return Change([contract, listing], contract, str(contract_id))

    return ledger.execute(caller, request, attempt, serial_key=str(DIRECTORY_ID))


def list_contracts(ledger: Ledger, caller: Caller) -> list[dict[str, Any]]:
    summaries = []
    for contract_id in directory(ledger, caller).contracts:
        contract = ledger.find(ServiceContract, contract_id, "contract")
        if access.can_read(caller, contract):
            full = contract.as_dict()
            summaries.append({k: v for k, v in full.items() if k != "directives"}
                             | {"directive_count": len(contract.directives)})
    return summaries


def readable_contract_ids(ledger: Ledger, caller: Caller) -> frozenset[str]:
    """The ids of every contract the caller may read (for cross-contract views)."""
    every = directory(ledger, caller).contracts
    if caller.role in access.EVERYTHING:
        return frozenset(every)
    return frozenset(
        contract_id for contract_id in every
        if access.can_read(caller, ledger.find(ServiceContract, contract_id, "contract"))
    )


def add_stakeholder(ledger: Ledger, caller: Caller, contract_id: str, spec: StakeholderSpec, *,
                    request: IdempotentRequest | None = None,
                    expected_version: int | None = None) -> CommandResult:
    def act(contract: ServiceContract) -> str:
        access.require_admin(caller, "add stakeholders")
        directory(ledger, caller).require_organisations(spec.org)
        contract.add_stakeholder(spec, actor=caller.actor, at=ledger.clock())
        return spec.org

    return on_contract(ledger, caller, contract_id, act, request=request,
                       expected_version=expected_version)


def change_policy(ledger: Ledger, caller: Caller, contract_id: str, policy: Policy, *,
                  expected_version: int | None = None) -> CommandResult:
    def act(contract: ServiceContract) -> str:
        access.require_admin(caller, "change the policy")
        contract.change_policy(policy, actor=caller.actor, at=ledger.clock())
        return str(contract.id)

    return on_contract(ledger, caller, contract_id, act, expected_version=expected_version)


def transition(ledger: Ledger, caller: Caller, contract_id: str, command: str, *,
               request: IdempotentRequest | None = None,
               expected_version: int | None = None) -> CommandResult:
    """A lifecycle command on the contract (``activate``, ``suspend``, ``terminate``...)."""
    def act(contract: ServiceContract) -> str:
        access.require_admin(caller, f"{command} contracts")
        contract.transition(command, actor=caller.actor, at=ledger.clock())
        return str(contract.id)

    return on_contract(ledger, caller, contract_id, act, request=request,
                       expected_version=expected_version)
