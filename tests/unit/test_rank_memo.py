"""A ranking with the last ranking's memo (``RankMemo``, as the projection ranks a contract
once per batch) is the ranking without it, after every event of random histories: issues
(some due soon, some for vulnerable people or an indicator), amendments, withdrawals,
decisions and escalations, with a reference date that moves; and the projection's
priority document, encoded from each entry's JSON kept (``RankingTexts``), is the
document encoded whole (ranked from every directive, not the conflict tracker's active
ones)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import orjson
from hypothesis import given
from hypothesis import strategies as st

from domain.contract import ServiceContract
from domain.priorities import RankMemo, priority_view
from workflows.view_documents import RankingTexts, encoded_json

from .givens import ADMIN_ACTOR, moment
from .test_conflict_episodes import FIELDS, PROPERTY_SETTINGS, day, step

SCORED = {
    "due": st.integers(0, 120).map(day),
    "vulnerability": st.sampled_from([0, 0.4, 1]),
    "people_affected": st.sampled_from([0, 30, 250]),
    "indicator": st.sampled_from([None, "cases", "groups"]),
}


@PROPERTY_SETTINGS
@given(data=st.data())
def test_a_ranking_with_the_last_rankings_memo_is_the_ranking_without_it(
    draft_contract: Callable[..., ServiceContract], data: st.DataObject,
) -> None:
    # Given a contract that lives through random events, ranked after each with one memo
    contract = draft_contract()
    contract.transition("activate", actor=ADMIN_ACTOR, at=moment("2008-03-03"))
    memo, reference = RankMemo(), date(2008, 3, 10)
    texts = RankingTexts()
    issued: list[str] = []
    while contract.version < 80:
        step(contract, data, issued, fields={**FIELDS, **SCORED})
        if data.draw(st.integers(0, 5), label="date moves") == 0:
            reference += timedelta(days=data.draw(st.integers(1, 40), label="days"))
        # When it is ranked with the memo and without
        with_memo = priority_view(contract.terms, contract.directives.values(), reference,
                                  conflicts=contract.conflicts, memo=memo)
        fresh = priority_view(contract.terms, contract.directives.values(), reference,
                              conflicts=contract.conflicts)
        # Then both are the same, byte for byte
        assert orjson.dumps(with_memo) == orjson.dumps(fresh)
        # and so is the projection's document, joined from its entries' kept JSON and
        # ranked from the conflict tracker's active directives
        assert texts.document(contract, reference, position=7) == encoded_json(
            {"contract_id": str(contract.id), "position": 7, "version": contract.version,
             **fresh})
    # and the memo was used, and holds no more than the directives ever issued
    assert 0 < len(memo.scored) <= len(issued)
