"""What the drills run and break, and the clients that keep working through it.

``Postgres`` is a throwaway cluster of the drill's own (the machine's shared
server is never touched), ``RedisServer`` a Redis without persistence, so a
crash empties it, and ``ApiProcess`` the API as a real uvicorn process that can
be killed with SIGKILL.  ``Burst`` is a set of careful clients: each repeats a
command that got no answer or a 503 with the same ``Idempotency-Key`` until it
is acknowledged.  ``check_ledger`` is what every drill ends with: the store
holds exactly the acknowledged commands, each once, on an intact hash chain.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from e2e.client import Needle, directive
from integration.processes import settings_env, stop_tree

from cli.stack import free_port
from workflows.settings import Settings

VALUES = ("晚上九点关门 close at 21:00", "晚上十点关门 close at 22:00")


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(0.05)


# --- PostgreSQL ---------------------------------------------------------------------


class Postgres:
    """A PostgreSQL cluster of the drill's own, so it can crash and restart at will.

    PostgreSQL refuses to run as root; when the tests do (CI does), the cluster's
    folder belongs to the ``postgres`` user and its programs run through ``runuser``.
    """

    def __init__(self) -> None:
        initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
        if initdb is None or pg_ctl is None:
            pytest.skip("initdb and pg_ctl are not on PATH: no PostgreSQL cluster to crash")
        self.pg_ctl = pg_ctl
        self.folder = Path(tempfile.mkdtemp(prefix="needle-drill-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.runner: list[str] = []
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(self.folder)
                pytest.skip("running as root with no 'postgres' user to own a cluster")
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
            self.runner = ["runuser", "-u", "postgres", "--"]
        try:
            self._run(initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust",
                      "-E", "UTF8", "--no-locale", "--no-sync")
        except BaseException:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> None:
        result = subprocess.run([*self.runner, *argv], capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=60, check=False)
        assert result.returncode == 0, (argv, result.stdout, result.stderr, self.log_tail())

    def log_tail(self) -> str:
        log = self.folder / "server.log"
        return log.read_text(errors="replace")[-3000:] if log.exists() else ""

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c max_connections=50")
        self._run(self.pg_ctl, "-D", str(self.data), "-l", str(self.folder / "server.log"),
                  "-o", options, "-w", "-t", "60", "start")

    def crash(self) -> None:
        """Stop at once, as a crash would: every backend killed, recovery on the next start."""
        self._run(self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
            self._run(self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


# --- Redis --------------------------------------------------------------------------


class RedisServer:
    """A Redis of the drill's own with no persistence: killing it loses everything in it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @staticmethod
    def executable() -> str:
        from cli.stack import redis_executable  # the system's, as ``needle up`` uses

        return redis_executable()

    def start(self) -> None:
        with (self.folder / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(
                [self.executable(), "--bind", "127.0.0.1", "--port", str(self.port),
                 "--save", "", "--appendonly", "no", "--daemonize", "no",
                 "--dir", str(self.folder)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        try:
            wait_until(lambda: self._pings(client), 15, "redis answers")
        finally:
            client.close()

    @staticmethod
    def _pings(client: redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    def crash(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.crash()


# --- the API ------------------------------------------------------------------------


class ApiProcess:
    """``uvicorn --factory api.main:create_app`` on a fixed port, as ``needle up`` runs it."""

    def __init__(self, settings: Settings, log: Path, **env: str) -> None:
        self.settings = settings
        self.log = log
        self.port = free_port()
        self.env = settings_env(settings, NEEDLE_CELERY_QUEUE=settings.celery_queue, **env)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app",
                 "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"],
                env=self.env, stdout=output, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        wait_until(self._ready, timeout, f"the API answers /readyz 200\n{self.log_tail()}")

    def _ready(self) -> bool:
        assert self.process is not None and self.process.poll() is None, self.log_tail()
        try:
            return httpx.get(f"{self.base_url}/readyz", timeout=10).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """``kill -9``: no shutdown, no flushing, requests in flight cut off."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None:
            stop_tree(self.process, grace=5)

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


# --- clients ------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One attempt at one command: ``status`` is None when no answer came back."""

    key: str
    status: int | None
    body: Any
    content_type: str
    retry_after: str | None
    at: float


@dataclass
class Burst:
    """Clients issuing directives on one contract until stopped, each retrying with the
    same ``Idempotency-Key`` after no answer or a 503, until acknowledged."""

    base_url: str
    contract_id: str
    keys: list[str]
    clients: int = 6
    answers: list[Answer] = field(default_factory=list)
    acked: dict[str, dict[str, Any]] = field(default_factory=dict)
    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)
    senders: dict[str, str] = field(default_factory=dict)
    """The API key each command was sent with, by ``Idempotency-Key``."""
    give_up_after: float = 60.0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._stopped_at = float("inf")
        self._threads = [threading.Thread(target=self._client, args=(n,), daemon=True,
                                          name=f"drill-client-{n}") for n in range(self.clients)]

    def start(self) -> Burst:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop issuing new commands; each client still sees its last one acknowledged."""
        self._stopped_at = time.monotonic()
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.give_up_after + 30)
        assert not any(thread.is_alive() for thread in self._threads)

    def acks(self) -> int:
        return len(self.acked)

    def answered(self, status: int | None, since: float = 0.0) -> list[Answer]:
        return [a for a in list(self.answers) if a.status == status and a.at >= since]

    def wait_for_acks(self, more: int, timeout: float, what: str) -> None:
        target = self.acks() + more
        wait_until(lambda: self.acks() >= target, timeout, f"{more} more acks {what}")

    def _client(self, n: int) -> None:
        key = self.keys[n % len(self.keys)]
        with httpx.Client(base_url=self.base_url, timeout=30,
                          headers={"Authorization": f"Bearer {key}"}) as http:
            i = 0
            while not self._stop.is_set():
                idempotency_key = f"drill-{n}-{i}"
                body = directive(
                    subject=f"drill.slot_{i}", value=VALUES[n % 2], hours_per_week=1,
                    summary=f"{idempotency_key} 演练：青少年地带的关门时间",
                )
                self.bodies[idempotency_key] = body
                self.senders[idempotency_key] = key
                self._until_acked(http, idempotency_key, body)
                i += 1

    def _until_acked(self, http: httpx.Client, key: str, body: dict[str, Any]) -> None:
        path = f"/v1/contracts/{self.contract_id}/directives"
        while time.monotonic() < self._stopped_at + self.give_up_after:
            try:
                response = http.post(path, json=body, headers={"Idempotency-Key": key})
            except httpx.TransportError:
                self.answers.append(Answer(key, None, None, "", None, time.monotonic()))
                time.sleep(0.05)
                continue
            content_type = response.headers.get("content-type", "")
            parsed = response.json() if "json" in content_type else response.text
            self.answers.append(Answer(key, response.status_code, parsed, content_type,
                                       response.headers.get("retry-after"), time.monotonic()))
            if response.status_code in (200, 201):
                self.acked.setdefault(key, response.json())
                return
            if response.status_code != 503:
                return  # a refusal the drill will report; retrying would not change it
            time.sleep(0.1)  # Retry-After, shortened so the drill stays quick


# --- what every drill ends with ------------------------------------------------------


def all_events(admin: Needle, contract_id: str) -> list[dict[str, Any]]:
    response = admin.get(f"/v1/contracts/{contract_id}/export")
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]


def check_ledger(admin: Needle, contract_id: str, burst: Burst, events_before: int) -> None:
    """Every command the clients sent is in the store exactly once, and nothing else is."""
    assert set(burst.acked) == set(burst.bodies), "some command was never acknowledged"
    events = all_events(admin, contract_id)
    assert [e["version"] for e in events] == list(range(1, len(events) + 1))
    issued = events[events_before:]
    assert all(e["type"] == "ServiceContract.DirectiveIssued" for e in issued)
    recorded = Counter(e["data"]["summary"].split(" ", 1)[0] for e in issued)
    assert sorted(recorded.values()) == [1] * len(burst.bodies), "a command recorded twice"
    assert set(recorded) == set(burst.bodies)
    ids = {ack["id"] for ack in burst.acked.values()}
    assert len(ids) == len(burst.acked)
    contract = admin.contract(contract_id)
    assert {d["id"] for d in contract["directives"]} == ids
    assert contract["version"] == len(events)
    for key, ack in burst.acked.items():  # each answer is the event that holds that command
        assert events[ack["version"] - 1]["data"]["id"] == ack["id"], key
    audit = admin.ok("GET", f"/v1/contracts/{contract_id}/audit")
    assert audit["verified"] is True and audit["events"] == len(events), audit
