"""Snapshots are sealed over their stored bytes (``workflows.anchoring.seal_stored``): a load
checks the seal without encoding the decoded state again, an altered byte is refused, a
snapshot sealed over its state by an earlier release still loads, and one the application
compresses is sealed before it is compressed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.compressor import ZlibCompressor
from eventsourcing.persistence import Mapper, StoredEvent

from cli.demo import load_demo
from domain.chain import snapshot_seal, unsealed
from workflows import anchoring
from workflows.audit import every_contract
from workflows.ledger import Ledger
from workflows.settings import Settings

from .tampering import RawStore


def snapshotted(make_settings: Callable[..., Settings]) -> tuple[Settings, UUID, StoredEvent]:
    """The demo in a store that snapshots every 5 events; a contract and its latest snapshot."""
    settings = make_settings(snapshot_interval=5)
    app = Ledger(settings)
    try:
        load_demo(app, settings.var_dir)
        for contract_id, _ in every_contract(app):
            assert app.snapshots is not None
            stored = list(app.snapshots.recorder.select_events(contract_id, desc=True, limit=1))
            if stored:
                return settings, contract_id, stored[0]
    finally:
        app.close()
    raise AssertionError("the demo has no contract of 5 events")


def store_state(settings: Settings, stored: StoredEvent, state: bytes) -> None:
    raw = RawStore(settings)
    raw.run(f"UPDATE {raw.snapshots} SET state = ? WHERE originator_id = ? AND "
            "originator_version = ?", state, raw.key(UUID(str(stored.originator_id))),
            stored.originator_version)


def loaded_versions(settings: Settings, contract_id: UUID) -> list[int]:
    app = Ledger(settings)
    try:
        assert app.snapshots is not None
        return [s.originator_version for s in app.snapshots.get(contract_id)]
    finally:
        app.close()


def test_a_snapshot_loads_with_its_seal_checked_over_its_bytes(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a contract snapshotted by the ledger
    settings, contract_id, stored = snapshotted(make_settings)
    # Then the snapshot's seal is the last key of its stored JSON, and matches its bytes
    assert bytes(stored.state)[-anchoring.SEALED_END:].startswith(anchoring.STORED_SEAL)
    app = Ledger(settings)
    key = app.chain_key
    app.close()
    assert anchoring.stored_is_sealed(stored, key) is True
    assert anchoring.stored_is_sealed(stored, b"another key") is False

    # When it is loaded with the state's digest out of reach
    def no_digest(state: Any) -> str:
        raise AssertionError("the state was encoded again to check the seal")

    monkeypatch.setattr(anchoring, "state_digest", no_digest)
    # Then it is used
    assert stored.originator_version in loaded_versions(settings, contract_id)


def test_a_snapshot_with_one_byte_changed_is_not_used(
    make_settings: Callable[..., Settings],
) -> None:
    # Given a snapshot whose stored bytes are changed in one place, the seal left as it was
    settings, contract_id, stored = snapshotted(make_settings)
    state = bytes(stored.state)
    place = state.index(b'"status":"active"') + len(b'"status":"')
    altered = state[:place] + b"A" + state[place + 1:]
    store_state(settings, stored, altered)
    # When the contract's snapshots are loaded, that one is skipped (its events are used)
    assert stored.originator_version not in loaded_versions(settings, contract_id)


def test_a_snapshot_sealed_over_its_state_by_an_earlier_release_still_loads(
    make_settings: Callable[..., Settings],
) -> None:
    # Given a snapshot stored as an earlier release sealed them: ``seal`` over its state
    settings, contract_id, stored = snapshotted(make_settings)
    app = Ledger(settings)
    try:
        assert app.snapshots is not None
        snapshot = unsealed(app.snapshots.mapper.to_domain_event(stored))
        snapshot.__dict__["seal"] = snapshot_seal(
            app.chain_key, snapshot, anchoring.state_digest(snapshot.state))
        old = app.mapper.to_stored_event(snapshot)  # the plain mapping, as it was
    finally:
        app.close()
    assert anchoring.stored_is_sealed(old, b"any key") is None  # no seal over its bytes
    store_state(settings, stored, bytes(old.state))
    # When the contract's snapshots are loaded, it is used
    assert stored.originator_version in loaded_versions(settings, contract_id)
    # and one whose old seal does not match its state is not
    snapshot.__dict__["seal"] = "0" * 64
    store_state(settings, stored, bytes(app.mapper.to_stored_event(snapshot).state))
    assert stored.originator_version not in loaded_versions(settings, contract_id)


def test_a_compressed_snapshot_is_sealed_before_it_is_compressed(
    make_settings: Callable[..., Settings],
) -> None:
    # Given the ledger's snapshot mapping for an application that compresses what it stores
    settings, _, stored = snapshotted(make_settings)
    app = Ledger(settings)
    try:
        assert app.snapshots is not None
        snapshot = app.snapshots.mapper.to_domain_event(stored)
        compressing = anchoring.SnapshotMapper(
            Mapper(app.mapper.transcoder, compressor=ZlibCompressor()), app.chain_key)
        # When a snapshot is mapped, its stored bytes are compressed and its seal still holds
        squeezed = compressing.to_stored_event(unsealed(snapshot))
        assert not bytes(squeezed.state).endswith(b'"}')
        assert compressing.sealed(squeezed) is True
        # and it decodes to the snapshot it was
        assert compressing.to_domain_event(squeezed).state == snapshot.state
    finally:
        app.close()
