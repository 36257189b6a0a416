"""Fixtures for the unit tests: contracts built in memory from ``givens``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import uuid5

import pytest

from domain.contract import ServiceContract
from domain.directives import DirectiveFields

from .givens import ADMIN_ACTOR, TEST_NAMESPACE, actor_of, directive_id, moment, terms


@pytest.fixture
def draft_contract() -> Callable[..., ServiceContract]:
    """Draft the Haizhu youth contract; keyword arguments override its terms."""

    def draft(**overrides: Any) -> ServiceContract:
        return ServiceContract.draft(
            contract_id=uuid5(TEST_NAMESPACE, "HZ-YOUTH-2008"),
            terms=terms(**overrides),
            actor=ADMIN_ACTOR,
            at=moment("2008-02-25"),
        )

    return draft


@pytest.fixture
def active_contract(draft_contract: Callable[..., ServiceContract]) -> ServiceContract:
    contract = draft_contract()
    contract.transition("activate", actor=ADMIN_ACTOR, at=moment("2008-03-03"))
    return contract


@pytest.fixture
def issue() -> Callable[..., str]:
    """Issue a directive on a contract as ``issuer``; answers the directive's id."""

    def issue_(
        contract: ServiceContract,
        issuer: str,
        body: dict[str, Any],
        *,
        name: str = "directive",
        at: datetime | None = None,
    ) -> str:
        new_id = directive_id(name)
        contract.issue_directive(
            DirectiveFields.model_validate(body),
            directive_id=new_id,
            issuer=issuer,
            actor=actor_of(issuer),
            at=at or moment("2008-06-02"),
        )
        return str(new_id)

    return issue_
