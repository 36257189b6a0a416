"""Who may do what: the role table of the specification, as pure functions.

A caller who may not read a contract must not learn that it exists, so the
application answers "not found" for it; a reader who lacks a right is
"forbidden".
"""

from __future__ import annotations

from domain.contract import ServiceContract
from domain.errors import Forbidden, NotFound
from domain.organisations import Caller, Role

EVERYTHING = frozenset({Role.ADMIN, Role.SUPERVISOR})


def can_read(caller: Caller, contract: ServiceContract) -> bool:
    if caller.role in EVERYTHING:
        return True
    if caller.role is Role.STAKEHOLDER:
        return caller.org in contract.stakeholder_orgs
    if caller.role is Role.RESOLVER:
        return caller.org in contract.escalation_chain
    return False


def require_read(caller: Caller, contract: ServiceContract) -> None:
    if not can_read(caller, contract):
        raise NotFound(f"no contract {contract.id}")


def require_admin(caller: Caller, what: str) -> None:
    if caller.role is not Role.ADMIN:
        raise Forbidden(f"only an admin may {what}")


def require_admin_of(caller: Caller, contract: ServiceContract, what: str) -> None:
    require_read(caller, contract)
    require_admin(caller, what)


def require_stakeholder(caller: Caller, contract: ServiceContract) -> None:
    """Issuing directives: a stakeholder key of an organisation on this contract."""
    require_read(caller, contract)
    if caller.role is not Role.STAKEHOLDER or caller.org not in contract.stakeholder_orgs:
        raise Forbidden("only a stakeholder key of this contract may issue directives")


def require_issuer(caller: Caller, contract: ServiceContract, directive_id: str) -> None:
    require_stakeholder(caller, contract)
    directive = contract.directive(directive_id)
    if directive["issuer"] != caller.org:
        raise Forbidden(
            f"directive {directive_id} was issued by {directive['issuer']}; "
            "only its issuer may change it"
        )


def require_resolver(caller: Caller, contract: ServiceContract) -> None:
    """Deciding and escalating conflicts: a resolver key of an organisation in the chain.

    Whether its organisation stands high enough for a given conflict is the
    contract's own rule (``ServiceContract.resolve_conflict``), checked
    against the conflict's current level.
    """
    require_read(caller, contract)
    if caller.role is not Role.RESOLVER or caller.org not in contract.escalation_chain:
        raise Forbidden("only a resolver key of an organisation in the escalation chain "
                        "may decide or escalate conflicts")


ORGANISATION_KEYS = frozenset({Role.STAKEHOLDER, Role.RESOLVER})


def require_provider(caller: Caller, contract: ServiceContract) -> None:
    """Classifying directives (SPEC §13): a stakeholder or resolver key of the provider."""
    require_read(caller, contract)
    if caller.role not in ORGANISATION_KEYS or caller.org != contract.terms["provider"]:
        raise Forbidden(f"only a stakeholder or resolver key of the provider "
                        f"({contract.terms['provider']}) may classify directives")


def require_joint_decider(caller: Caller, contract: ServiceContract) -> None:
    """Approving proposed decisions (SPEC §13): a stakeholder or resolver key of an
    organisation listed in the contract's ``joint_decision``."""
    require_read(caller, contract)
    if caller.role not in ORGANISATION_KEYS or caller.org not in contract.joint_deciders:
        raise Forbidden("only a stakeholder or resolver key of an organisation listed in "
                        "joint_decision may approve or reject a proposed decision")


def require_history(caller: Caller, contract: ServiceContract) -> None:
    """History and diffs: supervisors, admins, the contract's stakeholders and resolvers."""
    require_read(caller, contract)


def require_audit(caller: Caller, contract: ServiceContract) -> None:
    require_read(caller, contract)
    if caller.role not in EVERYTHING:
        raise Forbidden("only a supervisor or an admin may audit or export a history")
