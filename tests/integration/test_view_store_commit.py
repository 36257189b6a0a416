"""A view commit against a real Redis: large views are staged beside the script and renamed
into place, all or nothing, and a refused commit leaves nothing behind."""

from __future__ import annotations

import json

import pytest
import redis

from workflows.messaging import wake_key
from workflows.view_store import (
    STAGED_BYTES,
    PassStart,
    ViewStore,
    conflicts_key,
    lock_key,
    priorities_key,
    reference_key,
)

pytestmark = pytest.mark.stack


def large_view(label: str) -> bytes:
    """A conflict view well over ``STAGED_BYTES``, in Chinese as the demo's are."""
    conflicts = [{"id": f"c{n}", "explanations": {"zh": f"{label}：荔湾区街道办事处第{n}项"}}
                 for n in range(STAGED_BYTES // 20)]
    text = json.dumps({"conflicts": conflicts}, ensure_ascii=False).encode()
    assert len(text) > STAGED_BYTES
    return text


def staged_keys(client: redis.Redis) -> list[bytes]:
    return list(client.scan_iter("tn:staged:*"))


def test_a_large_view_commits_whole_and_leaves_no_staged_key(client: redis.Redis) -> None:
    # given a generation of a partition
    store = ViewStore(client, "contracts.p0")
    generation = store.new_generation()
    large, small = large_view("越秀"), b'{"priorities":[]}'

    # when a commit writes a large view and a small one
    committed = store.commit(generation, 0, 12, [
        ["set", conflicts_key(generation, "k1"), large],
        ["set", priorities_key(generation, "k1"), small],
    ])

    # then both are in place with the new position, and nothing staged is left
    assert committed
    assert client.get(conflicts_key(generation, "k1")) == large
    assert client.get(priorities_key(generation, "k1")) == small
    assert client.ttl(conflicts_key(generation, "k1")) == -1  # kept, not expiring
    assert store.position(generation) == 12
    assert staged_keys(client) == []


def test_a_refused_commit_changes_nothing_and_drops_what_it_staged(
    client: redis.Redis,
) -> None:
    # given a generation at position 12 holding a large view
    store = ViewStore(client, "contracts.p0")
    generation = store.new_generation()
    first = large_view("海珠")
    assert store.commit(generation, 0, 12, [["set", conflicts_key(generation, "k1"), first]])

    # when a commit expecting another position (a racing writer's) brings a new large view
    refused = store.commit(generation, 5, 20, [
        ["set", conflicts_key(generation, "k1"), large_view("天河")],
        ["sadd", "tn:view:" + generation + ":contracts", "move"],
    ])

    # then it is refused: the view and the position are as they were, nothing staged is left
    assert not refused
    assert client.get(conflicts_key(generation, "k1")) == first
    assert store.position(generation) == 12
    assert client.smembers("tn:view:" + generation + ":contracts") == set()
    assert staged_keys(client) == []


def test_a_pass_begins_only_with_the_lease_and_leaves_anothers_wake_flag_alone(
    client: redis.Redis,
) -> None:
    # given a partition at position 7 of its live generation, woken by a commit
    store = ViewStore(client, "contracts.p1")
    live = store.current()
    assert store.commit(live, 0, 7, [])
    lock, wake = lock_key("contracts.p1"), wake_key("contracts.p1")
    client.set(wake, 1)

    # when another consumer holds the lease, a pass does not begin
    client.set(lock, "其他消费者")
    assert store.begin_pass(lock, "mine", 30_000, wake) is None
    # and the wake flag is left for the holder, which looks at it before it lets go
    assert client.get(wake) == b"1" and client.get(lock) == "其他消费者".encode()

    # when the lease is free, the pass takes it, deletes the flag and knows where it is
    client.delete(lock)
    start = store.begin_pass(lock, "mine", 30_000, wake)
    assert start == PassStart(woken=True, generation=live, position=7)
    assert client.get(lock) == b"mine" and client.get(wake) is None
    assert 0 < client.pttl(lock) <= 30_000

    # and what it looks at before letting go comes in one answer
    store.commit(live, 7, 8, [["set", reference_key("contracts.p1", live), "2008-06-01"]])
    assert store.after_pass(live) == (live, "2008-06-01", None)
