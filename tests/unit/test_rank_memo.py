"""A ranking with the last ranking's memo (``RankMemo``, as the projection ranks a contract
once per batch) is the ranking without it, after every event of random histories: issues
(some due soon, some for vulnerable people or an indicator), amendments, withdrawals,
decisions and escalations, with a reference date that moves."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import orjson
from hypothesis import given
from hypothesis import strategies as st

from domain.contract import ServiceContract
from domain.directives import DirectiveFields
from domain.priorities import RankMemo, priority_view

from .givens import ADMIN_ACTOR, actor_of, directive_id, moment
from .test_conflict_episodes import FIELDS, ISSUERS, PROPERTY_SETTINGS, at, day, step

SCORED = {
    "due": st.integers(0, 120).map(day),
    "vulnerability": st.sampled_from([0, 0.4, 1]),
    "people_affected": st.sampled_from([0, 30, 250]),
    "indicator": st.sampled_from([None, "cases", "groups"]),
}


def issue_scored(contract: ServiceContract, data: st.DataObject, issued: list[str]) -> None:
    """Issue a directive whose urgency, need and indicator count (the episodes' step does not
    draw them)."""
    body = {name: data.draw(strategy, label=name)
            for name, strategy in {**FIELDS, **SCORED}.items()}
    name = f"排序指令-{len(issued)}"
    issuer = data.draw(st.sampled_from(ISSUERS), label="issuer")
    contract.issue_directive(
        DirectiveFields.model_validate({**body, "summary": "生成的指令",
                                        "citation": "测试依据（示例）"}),
        directive_id=directive_id(name), issuer=issuer, actor=actor_of(issuer),
        at=at(contract.version + 1))
    issued.append(str(directive_id(name)))


@PROPERTY_SETTINGS
@given(data=st.data())
def test_a_ranking_with_the_last_rankings_memo_is_the_ranking_without_it(
    draft_contract: Callable[..., ServiceContract], data: st.DataObject,
) -> None:
    # Given a contract that lives through random events, ranked after each with one memo
    contract = draft_contract()
    contract.transition("activate", actor=ADMIN_ACTOR, at=moment("2008-03-03"))
    memo, reference = RankMemo(), date(2008, 3, 10)
    issued: list[str] = []
    while contract.version < 80:
        if data.draw(st.booleans(), label="scored issue"):
            issue_scored(contract, data, issued)
        else:
            step(contract, data, issued)
        if data.draw(st.integers(0, 5), label="date moves") == 0:
            reference += timedelta(days=data.draw(st.integers(1, 40), label="days"))
        # When it is ranked with the memo and without
        with_memo = priority_view(contract.terms, contract.directives.values(), reference,
                                  conflicts=contract.conflicts, memo=memo)
        fresh = priority_view(contract.terms, contract.directives.values(), reference,
                              conflicts=contract.conflicts)
        # Then both are the same, byte for byte
        assert orjson.dumps(with_memo) == orjson.dumps(fresh)
    # and the memo was used, and holds no more than the directives ever issued
    assert 0 < len(memo.scored) <= len(issued)
