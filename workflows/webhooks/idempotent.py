"""``Idempotency-Key`` for the outbox commands ``redeliver`` and ``recover`` (SPEC §9).

They change outbox rows, not aggregates, so the application's command path
(which saves the idempotency record with the command's events) does not run
them.  Here the same record (``workflows.idempotency.IdempotencyRecord``,
named by principal and key) is kept after the outbox change, with the answer
given: a repeat with the same key and body answers that first answer and
changes nothing; the same key with another body (or on another command) is
refused with ``IdempotencyKeyReused`` (422), as for every other command.

Between the change and the record a crash may lose the record (the change
is done, and a retry with the key would do it again): harmless for these
two, which only make messages due again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from domain.errors import IdempotencyKeyReused
from domain.organisations import Caller
from workflows.idempotency import IdempotencyRecord, IdempotentRequest
from workflows.ledger import Ledger


def once(
    app: Ledger,
    caller: Caller,
    request: IdempotentRequest | None,
    target: Any,
    run: Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """``run()``'s answer, or the first answer given for this key and body.

    ``target`` is the subscription the command acts on (its id and version
    go in the record, as for the application's commands).
    """
    if request is None:
        return run()
    earlier = _earlier(app, caller, request)
    if earlier is not None:
        return earlier
    answer = run()
    record = IdempotencyRecord.keep(
        record_id=request.record_id(caller.principal_id), fingerprint=request.fingerprint,
        result={"id": str(target.id), "target": str(target.id), "version": target.version,
                "extra": {"answer": answer}},
        actor=caller.actor, at=app.clock())
    try:
        app.save(record)
    except IntegrityError:  # the same key at the same moment: the first record answers
        earlier = _earlier(app, caller, request)
        if earlier is not None:
            return earlier
        raise
    return answer


def _earlier(app: Ledger, caller: Caller,
             request: IdempotentRequest) -> dict[str, Any] | None:
    try:
        record: IdempotencyRecord = app.repository.get(request.record_id(caller.principal_id))
    except AggregateNotFoundError:
        return None
    outcome = record.outcome
    if outcome["fingerprint"] != request.fingerprint or "answer" not in (outcome.get("extra")
                                                                         or {}):
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used with a different request")
    return dict(outcome["extra"]["answer"])
