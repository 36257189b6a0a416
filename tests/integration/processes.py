"""Helpers for tests that start real processes: environments, process trees, clean stops."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from workflows.settings import Settings


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a child process needs to build the same settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEEDLE_")}
    env.update({
        "NEEDLE_VAR_DIR": str(settings.var_dir),
        "NEEDLE_EVENT_STORE": settings.event_store,
        "NEEDLE_EVENT_STORE_SCHEMA": settings.event_store_schema,
        "PYTHONUNBUFFERED": "1",
    })
    if settings.admin_key is not None:
        env["NEEDLE_ADMIN_KEY"] = settings.admin_key.get_secret_value()
    if settings.redis_url:
        env["NEEDLE_REDIS_URL"] = settings.redis_url
    if settings.chain_key is not None:  # else the children read <var_dir>/chain.key
        env["NEEDLE_CHAIN_KEY"] = settings.chain_key.get_secret_value()
    env.update(extra)
    return env


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name is in parentheses and may hold spaces: split after it.
    return text[text.rindex(")") + 2:].split()


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def descendants(pid: int) -> set[int]:
    """Every living process below ``pid`` (children, grandchildren, ...)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))):
            parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return {p for p in found if alive(p)}


def wait_gone(pids: set[int], timeout: float = 15.0) -> set[int]:
    """Wait until none of ``pids`` is alive; return those still alive at the timeout."""
    deadline = time.monotonic() + timeout
    while (left := {p for p in pids if alive(p)}) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def stop_tree(
    process: subprocess.Popen[bytes] | subprocess.Popen[str], grace: float = 10.0
) -> None:
    """Terminate a process started with ``start_new_session``; kill its tree after the grace."""
    tree = descendants(process.pid)
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    for pid in wait_gone(tree, timeout=grace):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
