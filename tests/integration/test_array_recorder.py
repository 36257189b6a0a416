"""The PostgreSQL recorder records a save with one call of its server function
(``workflows/array_recorder.py``): events, anchors, lock and notification together,
or nothing of them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from conftest import USES_POSTGRES
from eventsourcing.persistence import IntegrityError, StoredEvent

from workflows.anchoring import read_anchor
from workflows.array_recorder import ArrayInsertRecorder, function_name
from workflows.ledger import Ledger
from workflows.settings import Settings

pytestmark = pytest.mark.skipif(not USES_POSTGRES,
                                reason="PostgreSQL runs in make test-postgres")


@pytest.fixture
def recorder(settings: Settings) -> Iterator[ArrayInsertRecorder]:
    app = Ledger(settings)
    assert isinstance(app.recorder, ArrayInsertRecorder)
    yield app.recorder
    app.close()


def event(originator_id: UUID, version: int) -> StoredEvent:
    return StoredEvent(originator_id=originator_id, originator_version=version,
                       topic="tests:Event", state=b'{"n": %d}' % version)


def stored_versions(recorder: ArrayInsertRecorder, originator_id: UUID) -> list[int]:
    return [e.originator_version for e in recorder.select_events(originator_id)]


def test_events_and_anchors_go_in_together_with_ids_in_their_order(
    recorder: ArrayInsertRecorder,
) -> None:
    a, b = uuid4(), uuid4()
    ids = recorder.insert_events(
        [event(a, 1), event(b, 1), event(a, 2)],
        chain_heads=[(a, 2, "hash-a2", "seal-a2"), (b, 1, "hash-b1", "seal-b1")])
    assert ids is not None and len(ids) == 3 and list(ids) == sorted(ids)
    notifications = recorder.select_notifications(ids[0], 3)
    assert [(n.originator_id, n.originator_version) for n in notifications] == \
        [(a, 1), (b, 1), (a, 2)]
    assert [n.id for n in notifications] == list(ids)
    anchor = read_anchor(recorder, a)
    assert anchor is not None and (anchor.version, anchor.head_hash, anchor.seal) == \
        (2, "hash-a2", "seal-a2")
    recorder.insert_events([event(a, 3)], chain_heads=[(a, 3, "hash-a3", "seal-a3")])
    moved = read_anchor(recorder, a)
    assert moved is not None and moved.version == 3  # the anchor moves on


def test_a_version_conflict_records_neither_events_nor_anchors(
    recorder: ArrayInsertRecorder,
) -> None:
    a, b = uuid4(), uuid4()
    recorder.insert_events([event(a, 1)], chain_heads=[(a, 1, "h1", "s1")])
    with pytest.raises(IntegrityError):
        recorder.insert_events([event(b, 1), event(a, 1)],
                               chain_heads=[(a, 1, "other", "other"), (b, 1, "hb", "sb")])
    assert stored_versions(recorder, b) == []
    assert read_anchor(recorder, b) is None
    anchor = read_anchor(recorder, a)
    assert anchor is not None and anchor.head_hash == "h1"


def test_a_save_without_chained_aggregates_writes_no_anchor(
    recorder: ArrayInsertRecorder,
) -> None:
    a = uuid4()
    assert recorder.insert_events([event(a, 1)]) is not None
    assert stored_versions(recorder, a) == [1]
    assert read_anchor(recorder, a) is None


def test_the_insert_waits_for_the_table_lock_and_notifies(
    recorder: ArrayInsertRecorder,
) -> None:
    """Another writer holding the events table's lock holds the insert back (notification
    ids in commit order, as the library's insert); a listener hears of it."""
    datastore = recorder.datastore
    kwargs: dict[str, Any] = dict(datastore.pool.kwargs)  # type: ignore[arg-type]
    url = psycopg.conninfo.make_conninfo(
        **{k: v for k, v in kwargs.items() if k != "row_factory"})
    table = f'"{datastore.schema}"."{recorder.events_table_name}"'
    originator_id = uuid4()
    with psycopg.connect(url, autocommit=True) as listener, \
            psycopg.connect(url, autocommit=True) as holder:
        listener.execute(f'LISTEN "{recorder.channel_name}"')
        holder.execute("BEGIN")
        holder.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
        inserting = threading.Thread(
            target=recorder.insert_events, args=([event(originator_id, 1)],))
        inserting.start()
        time.sleep(0.5)
        assert inserting.is_alive() and stored_versions(recorder, originator_id) == []
        holder.execute("ROLLBACK")
        inserting.join(timeout=10)
        assert stored_versions(recorder, originator_id) == [1]
        assert any(n.channel == recorder.channel_name
                   for n in listener.notifies(timeout=2, stop_after=1))


def test_the_function_name_fits_postgresql() -> None:
    assert function_name("threadneedle_events") == "threadneedle_events_record"
    long_name = function_name("x" * 80)
    assert len(long_name.encode()) <= 63 and long_name != function_name("x" * 81)
