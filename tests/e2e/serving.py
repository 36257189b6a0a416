"""Running the real parts for end-to-end tests: the API in a thread, Celery as processes."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from integration.processes import settings_env

from api.main import create_app
from cli.stack import free_port
from workflows.bootstrap import Services
from workflows.settings import Settings


@contextmanager
def serve_api(services: Services, name: str = "e2e-uvicorn") -> Iterator[str]:
    """The API on a free loopback port, in a background thread; yields its base URL."""
    with serve_app(create_app(services), name) as base_url:
        yield base_url


@contextmanager
def serve_app(app: Any, name: str = "e2e-uvicorn") -> Iterator[str]:
    """That ASGI app on a free loopback port, in a background thread; yields its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=free_port(),
                            log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the API did not start"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def start_celery(
    settings: Settings, log: Path, *arguments: str, **env: str
) -> subprocess.Popen[bytes]:
    """``celery -A workers.main <arguments>`` in a session of its own, logging to ``log``."""
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers.main", *arguments,
             "--loglevel", "INFO"],
            env=settings_env(settings, NEEDLE_CELERY_QUEUE=settings.celery_queue, **env),
            stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
