"""Replays take turns (``api/replays.py``): at most N at once in a process, and one key's
burst is refused beyond its share instead of taking every thread."""

from __future__ import annotations

import threading
import time

import anyio
import pytest
from fastapi import HTTPException

from api.replays import ReplayTurns
from domain.organisations import Caller, Role

STREET = Caller("key-street", "haichuang-street", Role.STAKEHOLDER)
BUREAU = Caller("key-bureau", "haizhu-civil-affairs", Role.STAKEHOLDER)


class Replays:
    """Blocking stand-ins for replays: each holds its thread until released, counting how
    many run at once."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.running = self.most = 0
        self.done: list[str] = []

    def replay(self, name: str) -> str:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        self.release.wait(10)
        with self.lock:
            self.running -= 1
            self.done.append(name)
        return name


def test_a_keys_burst_is_refused_beyond_its_share_and_another_key_still_gets_its_turn() -> None:
    turns = ReplayTurns(concurrency=1, per_key=2)
    replays = Replays()
    refused: list[HTTPException] = []
    answered: list[str] = []

    async def ask(caller: Caller, name: str) -> None:
        try:
            answered.append(await turns.run(caller, replays.replay, name))
        except HTTPException as error:
            refused.append(error)

    async def scenario() -> None:
        async with anyio.create_task_group() as group:
            # given the street office's two replays, one running and one waiting its turn
            group.start_soon(ask, STREET, "street-1")
            group.start_soon(ask, STREET, "street-2")
            await anyio.sleep(0.2)
            # when it asks a third, and the bureau asks one
            group.start_soon(ask, STREET, "street-3")
            group.start_soon(ask, BUREAU, "bureau-1")
            await anyio.sleep(0.2)
            # then the third is refused at once (429, retry in a second), nothing else is
            assert [error.status_code for error in refused] == [429]
            assert refused[0].headers == {"Retry-After": "1"}
            assert turns.under_way == {"key-street": 2, "key-bureau": 1}
            replays.release.set()

    anyio.run(scenario)

    # and every accepted replay answered, one at a time, in the order they came
    assert answered == ["street-1", "street-2", "bureau-1"]
    assert replays.most == 1
    assert turns.under_way == {}


def test_replays_run_side_by_side_up_to_the_processs_concurrency() -> None:
    turns = ReplayTurns(concurrency=2, per_key=10)
    replays = Replays()

    async def scenario() -> None:
        async with anyio.create_task_group() as group:
            for n in range(5):
                group.start_soon(turns.run, STREET, replays.replay, f"r{n}")
            deadline = time.monotonic() + 5
            while replays.running < 2 and time.monotonic() < deadline:
                await anyio.sleep(0.01)
            await anyio.sleep(0.1)  # (a third would have started by now, were it let)
            assert replays.running == 2  # two on replay threads, three waiting, none on a thread
            replays.release.set()

    started = time.monotonic()
    anyio.run(scenario)
    assert replays.most == 2 and len(replays.done) == 5
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("concurrency", [0, 65])
def test_the_concurrency_setting_is_bounded(concurrency: int) -> None:
    from pydantic import ValidationError

    from workflows.settings import Settings

    with pytest.raises(ValidationError):
        Settings(replay_concurrency=concurrency)
