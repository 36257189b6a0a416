"""The request id of every request, and tracing when it is turned on.

Each request takes the client's ``X-Request-ID`` (a plain token of at most 128
characters) or a new one (``request_id_of``); ``api/gate.py`` binds it to the
logging context for the request (so every log line, and every Celery task the
request sends, carries it: see ``workflows/logs.py``) and answers it in the
``X-Request-ID`` header.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import Scope

from workflows import logs
from workflows.settings import Settings

HEADER = logs.HEADER.lower().encode()


def request_id_of(scope: Scope) -> str:
    """The request's id: its last ``X-Request-ID`` when that is a plain token, else a new one."""
    header = None
    for name, value in scope["headers"]:
        if name == HEADER:
            header = value
    return logs.request_id_from(header.decode("latin-1") if header else None)


def install_observability(app: FastAPI, settings: Settings, *, configure: bool) -> None:
    """Logging set up when ``configure`` (the process's own app, not a test's); tracing
    when ``NEEDLE_TRACING`` is on."""
    if configure:
        logs.configure_logging(settings.log_level, settings.log_format)
    if settings.tracing:
        from workflows.tracing import instrument_app, start_tracing

        start_tracing(settings, "threadneedle-api")
        instrument_app(app)
