"""Ctrl-C stops ``needle up`` even when it lands while a finaliser runs.

Python runs signal handlers between bytecodes, also inside ``__del__``; an exception
raised there is printed as "Exception ignored" and dropped. ``needle up`` once missed a
Ctrl-C that way (an eventsourcing ``Application.__del__`` was collecting) and ran on.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from cli.stack import Interrupted, Stack, raise_if_signalled, raise_on_signals
from workflows.settings import Settings


class SignalledWhileFinalised:
    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)  # the handler runs here, inside __del__


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_signal_swallowed_by_a_finaliser_still_stops_the_supervisor(tmp_path: Path) -> None:
    # given needle up's signal handlers and a stack with no children yet
    restore = raise_on_signals()
    try:
        stack = Stack(Settings(var_dir=tmp_path / "var"))

        # when SIGINT arrives while an object is being finalised
        SignalledWhileFinalised()  # collected at once: its Interrupted is swallowed

        # then the supervisor's next check raises it again
        raised: list[BaseException] = []

        def supervise() -> None:
            try:
                stack.supervise(poll=0.01)
            except Interrupted as error:
                raised.append(error)

        supervisor = threading.Thread(target=supervise, daemon=True)
        supervisor.start()
        supervisor.join(timeout=5)
        assert [str(e) for e in raised] == ["SIGINT"]
        with pytest.raises(Interrupted):
            raise_if_signalled()
    finally:
        restore()


def test_no_signal_no_interruption() -> None:
    # given fresh handlers and no signal
    restore = raise_on_signals()
    try:
        # then nothing is raised
        raise_if_signalled()
    finally:
        restore()
