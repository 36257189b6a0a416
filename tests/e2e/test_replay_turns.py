"""Replays take turns over HTTP (``api/replays.py``): a key that already has its share of
replays under way is refused at once (429 problem, ``Retry-After``), the replay under way
still answers, and the key's next replay, once its turn is free, is served."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ADMIN_KEY, TEST_REDIS_URL, fresh_store

from workflows import history
from workflows.bootstrap import bootstrap
from workflows.settings import Settings

from .client import Needle, World
from .serving import serve_api


@pytest.fixture
def one_turn_each(tmp_path: Path) -> Iterator[str]:
    """An API whose keys may each have one replay under way."""
    settings = Settings(var_dir=tmp_path / "var", admin_key=ADMIN_KEY, redis_url=TEST_REDIS_URL,
                        replay_concurrency=1, replay_queue_per_key=1, **fresh_store(tmp_path))
    services = bootstrap(settings)
    with serve_api(services, "replay-turns-uvicorn") as base_url:
        yield base_url
    services.close()


def test_a_keys_second_replay_under_way_is_refused_and_the_first_answers(
    one_turn_each: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a contract, and a replay that holds its turn until released
    world = World.build(Needle(one_turn_each, ADMIN_KEY))
    started, release = threading.Event(), threading.Event()
    real = history.conflict_view_at

    def held(*args: Any, **kwargs: Any) -> Any:
        started.set()
        release.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(history, "conflict_view_at", held)
    replay = f"{one_turn_each}{world.path}/conflicts"
    headers = {"Authorization": f"Bearer {world.keys['supervisor']}"}
    first: dict[str, httpx.Response] = {}
    asking = threading.Thread(target=lambda: first.setdefault(
        "answer", httpx.get(replay, params={"version": 1}, headers=headers, timeout=20)))
    asking.start()
    assert started.wait(10), "the first replay did not start"

    # when the same key asks another replay while the first is under way
    second = httpx.get(replay, params={"version": 1}, headers=headers, timeout=20)

    # then it is refused at once with a problem document saying when to come back
    assert second.status_code == 429
    assert second.headers["Retry-After"] == "1"
    problem = second.json()
    assert problem["code"] == "rate_limited" and "replays" in problem["detail"]

    # and the first answers once it has run, and the key's next replay is served
    release.set()
    asking.join(20)
    assert first["answer"].status_code == 200
    again = httpx.get(replay, params={"version": 1}, headers=headers, timeout=20)
    assert again.status_code == 200 and again.json()["version"] == 1
