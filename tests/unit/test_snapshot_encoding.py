"""A snapshot's state is encoded with orjson (``SnapshotTranscoder``): it must
decode to exactly what the library's ``json`` encoding decodes to (types included: an id
written as a plain string instead of a transcoded ``UUID`` would differ), after every few
events of random histories with Chinese names and values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, Mapper, UUIDAsHex
from hypothesis import given
from hypothesis import strategies as st

from domain.contract import ServiceContract
from workflows.transcoding import FastJSONTranscoder, SnapshotTranscoder

from .givens import ADMIN_ACTOR, moment
from .test_conflict_episodes import PROPERTY_SETTINGS, step


def ledger_mapper() -> Mapper[Any]:
    """A mapper with the ledger's transcoder and transcodings."""
    transcoder = FastJSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    return Mapper(transcoder=transcoder)


def typed(value: Any) -> Any:
    """The value with the type of everything in it, so that equal means the same types too."""
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return (type(value).__name__, [typed(item) for item in value])
    return type(value).__name__, value


@PROPERTY_SETTINGS
@given(data=st.data())
def test_a_snapshot_encoded_with_orjson_decodes_to_what_json_would_give(
    draft_contract: Callable[..., ServiceContract], data: st.DataObject,
) -> None:
    mapper = ledger_mapper()
    snapshots = Mapper[Any](SnapshotTranscoder.like(mapper.transcoder))  # as the ledger's
    # Given a contract that lives through random events, snapshotted now and then
    contract = draft_contract()
    contract.transition("activate", actor=ADMIN_ACTOR, at=moment("2008-03-03"))
    issued: list[str] = []
    while contract.version < 60:
        step(contract, data, issued)
        if contract.version % 7:
            continue
        snapshot = ServiceContract.Snapshot.take(contract)
        # When it is stored as the ledger stores it, and as the library would
        fast = snapshots.to_domain_event(snapshots.to_stored_event(snapshot))
        plain = mapper.to_domain_event(mapper.to_stored_event(snapshot))
        # Then both decode to the same values of the same types
        assert typed(vars(fast)) == typed(vars(plain))
        # and the contract they restore is the one snapshotted
        restored = fast.mutate(None)
        assert restored.directives == contract.directives
        assert restored.conflicts == contract.conflicts
        assert restored.version == contract.version
