"""A board item's JSON is joined from its conflict's JSON (``board_item_text``): the
bytes must be those of the item encoded whole, for every conflict of random histories,
explained with Chinese organisation names."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from domain.contract import ServiceContract
from workflows.explanations import explained
from workflows.view_documents import board_item, board_item_text, encoded_json

from .givens import ADMIN_ACTOR, moment
from .test_conflict_episodes import PROPERTY_SETTINGS, step

NAMES = {"haichuang-street": "海幢街道办事处", "chigang-street": "赤岗街道办事处",
         "haizhu-civil-affairs": "海珠区民政局", "haichuang-residents": "海幢社区居民"}


@PROPERTY_SETTINGS
@given(data=st.data())
def test_a_board_items_json_joined_from_its_conflicts_is_the_item_encoded_whole(
    draft_contract: Callable[..., ServiceContract], data: st.DataObject,
) -> None:
    # Given a contract that lives through random events
    contract = draft_contract()
    contract.transition("activate", actor=ADMIN_ACTOR, at=moment("2008-03-03"))
    issued: list[str] = []
    while contract.version < 40:
        step(contract, data, issued)
    # When each conflict's board item is joined from the conflict's own JSON
    for record in contract.conflicts.values():
        shown = explained(record, NAMES)
        # Then it is the item encoded whole, byte for byte
        assert board_item_text(contract, shown, encoded_json(shown)) == encoded_json(
            board_item(contract, shown))


def test_a_conflict_that_already_names_a_contract_is_encoded_whole(
    draft_contract: Callable[..., ServiceContract],
) -> None:
    # Given a conflict document that carries a contract id of its own (none does today)
    contract = draft_contract()
    shown = {"id": "c-1", "kind": "duplicate", "contract_id": "旧的", "explanation": "重复"}
    # When its board item is joined, the contract's id replaces it, as in the whole item
    text = board_item_text(contract, shown, encoded_json(shown))
    assert text == encoded_json(board_item(contract, shown))
    assert text.count(b'"contract_id"') == 1
