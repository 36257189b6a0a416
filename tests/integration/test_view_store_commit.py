"""A view commit against a real Redis: large views are staged beside the script and renamed
into place, all or nothing, and a refused commit leaves nothing behind."""

from __future__ import annotations

import json

import pytest
import redis

from workflows.view_store import STAGED_BYTES, ViewStore, conflicts_key, priorities_key

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
