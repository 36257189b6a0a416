"""Named domain errors.  Each carries a stable ``code`` that the API maps to HTTP once."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code = "domain_error"
    extra: dict[str, Any] | None = None
    """Fields a refusal names besides its detail (the problem document carries them)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ValidationFailed(DomainError):
    """The request is well-formed but breaks a rule of the domain."""

    code = "validation_failed"

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors))
        self.errors = errors


class NotFound(DomainError):
    code = "not_found"


class NotYet(NotFound):
    """A point of a contract's history that is not there: a version after its last, or a
    time before its first event.  The contract is found; ``extra`` says what was asked
    (``version`` and the ``latest``, or ``as_of``)."""

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.extra = extra


class AlreadyExists(DomainError):
    code = "already_exists"


class IllegalTransition(DomainError):
    """A lifecycle command that the contract's current status does not allow."""

    code = "illegal_transition"


class ContractNotActive(DomainError):
    code = "contract_not_active"


class ContractFinished(DomainError):
    """Terminated and closed contracts accept no further changes."""

    code = "contract_finished"


class DirectiveNotActive(DomainError):
    code = "directive_not_active"


class Forbidden(DomainError):
    code = "forbidden"


class VersionMismatch(DomainError):
    """The caller's ``If-Match`` names a version that is no longer current."""

    code = "version_mismatch"


class IdempotencyKeyReused(DomainError):
    """The same ``Idempotency-Key`` was sent with a different request."""

    code = "idempotency_key_reused"


class ConflictNotOpen(DomainError):
    """A decision or an escalation on a conflict that is already resolved or dissolved."""

    code = "conflict_not_open"


class LevelMismatch(DomainError):
    """An escalation whose ``from_level`` is not the conflict's current level (it moved on)."""

    code = "level_mismatch"


class NoHigherLevel(DomainError):
    """An escalation of a conflict already at the last level of the escalation chain."""

    code = "no_higher_level"


class NotLapsed(DomainError):
    """The timer may escalate a conflict only once its due time has passed."""

    code = "not_lapsed"


class InsufficientAuthority(DomainError):
    """A decision that overrides a directive whose issuer sits above the decider (SPEC §6)."""

    code = "insufficient_authority"

    def __init__(self, detail: str, *, directive_id: str, level_needed: int, org_needed: str):
        super().__init__(detail)
        self.extra = {"directive_id": directive_id, "level_needed": level_needed,
                      "org_needed": org_needed}


class ProposalPending(DomainError):
    """A decision is awaiting joint approval (SPEC §13): answer it, or escalate to withdraw it."""

    code = "proposal_pending"


class NoPendingProposal(DomainError):
    """An approval or rejection of a conflict that has no decision awaiting approval."""

    code = "no_pending_proposal"
