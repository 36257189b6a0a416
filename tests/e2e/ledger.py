"""What the tests check "nothing was recorded" against, read over HTTP only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .client import Needle, World


@dataclass(frozen=True)
class LedgerState:
    head: int  # the store's global position, from /readyz
    version: int
    history: tuple[str, ...]  # the chain hashes of the contract's events


def ledger_state(world: World) -> LedgerState:
    return LedgerState(
        head=head_position(world.admin),
        version=world.version(),
        history=tuple(event["hash"] for event in world.admin.history(world.contract_id)),
    )


def head_position(client: Needle) -> int:
    ready = client.as_key(None).ok("GET", "/readyz")
    return int(ready["checks"]["event_store"]["head"])


def assert_problem(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """A refusal is an RFC 9457 problem document with the expected status (and code)."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail"} <= problem.keys()
    assert problem["status"] == status
    if code is not None:
        assert problem["code"] == code, problem
    return problem
