"""The log of conflict writes (``ServiceContract.conflicts_written``): a reader that keeps
something per conflict reads only the records written since its cursor, so every record
that changed must be in the log, over random histories of issues, amendments,
withdrawals, decisions and escalations; and a cursor of another contract object (a copy,
a contract loaded again) tells nothing."""

from __future__ import annotations

import copy
from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from domain.contract import ServiceContract

from .givens import ADMIN_ACTOR, moment
from .test_conflict_episodes import PROPERTY_SETTINGS, step


@PROPERTY_SETTINGS
@given(data=st.data())
def test_every_conflict_record_that_changed_is_in_the_log_since_the_last_cursor(
    draft_contract: Callable[..., ServiceContract], data: st.DataObject,
) -> None:
    # Given a contract that lives through random events, read after some of them
    contract = draft_contract()
    contract.transition("activate", actor=ADMIN_ACTOR, at=moment("2008-03-03"))
    _, cursor = contract.conflicts_written(None)
    seen = dict(contract.conflicts)
    issued: list[str] = []
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
    # Given a contract read once, and a copy of it (as the repository hands out)
    contract = draft_contract()
    _, cursor = contract.conflicts_written(None)
    twin = copy.deepcopy(contract)
    # When the copy is asked with the original's cursor, it cannot tell what changed
    written, twin_cursor = twin.conflicts_written(cursor)
    assert written is None
    # while the original and the copy each answer their own cursor
    assert contract.conflicts_written(cursor)[0] == []
    assert twin.conflicts_written(twin_cursor)[0] == []
