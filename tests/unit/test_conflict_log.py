"""The log of conflict writes (``ServiceContract.conflicts_written``): a reader that keeps
something per conflict reads only the records written since its cursor, so every record
that changed must be in the log, over random histories of issues, amendments,
withdrawals, decisions and escalations; and a cursor of another contract object (a copy,
a contract loaded again) tells nothing.  A contract that has applied nothing since it was
loaded logs nothing (its fold's indices are not built) and answers no cursor."""

from __future__ import annotations

import copy
from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from domain.contract import ServiceContract
from domain.directives import DirectiveFields

from .givens import ADMIN_ACTOR, actor_of, directive_id, moment
from .test_conflict_episodes import PROPERTY_SETTINGS, step


@PROPERTY_SETTINGS
@given(data=st.data())
def test_every_conflict_record_that_changed_is_in_the_log_since_the_last_cursor(
    draft_contract: Callable[..., ServiceContract], data: st.DataObject,
) -> None:
    # Given a contract that lives through random events, read after some of them
    contract = draft_contract()
    contract.transition("activate", actor=ADMIN_ACTOR, at=moment("2008-03-03"))
    issued: list[str] = []
    step(contract, data, issued)  # (a first directive: the contract's fold is under way)
    _, cursor = contract.conflicts_written(None)
    seen = dict(contract.conflicts)
    while contract.version < 80:
        step(contract, data, issued)
        if data.draw(st.booleans(), label="read now"):
            # When a reader asks what was written since it last read
            written, cursor = contract.conflicts_written(cursor)
            # Then it is told, and every record that is not the one it read is among them,
            # each named once
            assert written is not None
            assert len(written) == len(set(written))
            changed = {key for key, record in contract.conflicts.items()
                       if seen.get(key) is not record}
            assert changed <= set(written)
            assert set(written) <= set(contract.conflicts)
            seen = dict(contract.conflicts)
    # and a reader that has just read is told, asked again at once, that nothing was
    _, cursor = contract.conflicts_written(cursor)
    assert contract.conflicts_written(cursor)[0] == []


def test_a_cursor_tells_nothing_to_a_copy_of_the_contract(
    draft_contract: Callable[..., ServiceContract],
) -> None:
    # Given a contract with a directive, read once, and a copy of it (as the repository
    # hands out)
    contract = draft_contract()
    contract.transition("activate", actor=ADMIN_ACTOR, at=moment("2008-03-03"))
    contract.issue_directive(
        DirectiveFields.model_validate({"subject": "reporting.weekly", "value": "表格",
                                        "basis": "contract", "summary": "每周报表",
                                        "citation": "服务合同第三条（示例）"}),
        directive_id=directive_id("周报"), issuer="haichuang-street",
        actor=actor_of("haichuang-street"), at=moment("2008-03-04"))
    _, cursor = contract.conflicts_written(None)
    twin = copy.deepcopy(contract)
    # When the copy is asked with the original's cursor, it cannot tell what changed
    written, twin_cursor = twin.conflicts_written(cursor)
    assert written is None
    # while the original and the copy each answer their own cursor
    assert contract.conflicts_written(cursor)[0] == []
    assert twin.conflicts_written(twin_cursor)[0] == []


def test_a_contract_that_has_applied_no_directive_is_not_made_to_build_its_fold(
    draft_contract: Callable[..., ServiceContract],
) -> None:
    # Given a contract that has applied no directive (as one loaded at a snapshot)
    contract = draft_contract()
    # When a reader asks what was written, it is told nothing, and no index is built for it
    assert contract.conflicts_written(None) == (None, None)
    assert "_tracker" not in vars(contract)
