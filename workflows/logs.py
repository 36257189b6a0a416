"""Structured logs: one JSON object per line, with a timestamp and the request id.

``configure_logging`` routes every standard-library logger (ours, Celery's,
uvicorn's) through structlog's ``ProcessorFormatter``: each line is JSON with
``timestamp`` (ISO 8601, UTC), ``level``, ``logger``, ``event`` and whatever is
bound in the context.  The API binds ``request_id`` for each request
(``api/observability.py``); a task sent while it is bound carries it in a
message header (``workers/celery_app.py``: ``before_task_publish``) and the
worker binds it again while the task runs, so one id follows a command from
its HTTP request into the projection and webhook tasks it woke.

``NEEDLE_LOG_FORMAT=console`` prints the same fields for a human;
``NEEDLE_LOG_LEVEL`` sets the level (INFO by default: INFO lines are kept).
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from typing import Any

import structlog

REQUEST_ID = "request_id"
HEADER = "X-Request-ID"
_VALID_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_HANDLER_NAME = "threadneedle"
# Loggers that bring their own handlers (uvicorn's log config): made to propagate to ours.
_OWN_HANDLERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "celery", "celery.task")


def shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
        structlog.processors.StackInfoRenderer(),
    ]


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Make the root logger write structured lines to stderr (idempotent)."""
    renderer: Any = (structlog.dev.ConsoleRenderer(colors=False) if fmt == "console"
                     else structlog.processors.JSONRenderer(ensure_ascii=False))
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared_processors(),
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if h.get_name() != _HANDLER_NAME
                     and not _plain_stream(h)]
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in _OWN_HANDLERS:
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    structlog.configure(
        processors=[*shared_processors(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def _plain_stream(handler: logging.Handler) -> bool:
    """A bare stream handler to stderr/stdout (``basicConfig``'s, Celery's): replaced."""
    return type(handler) is logging.StreamHandler and getattr(
        handler, "stream", None) in (sys.stderr, sys.stdout)


def request_id_from(header: str | None) -> str:
    """The client's ``X-Request-ID`` when it is a plain token, else a fresh one."""
    if header and _VALID_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    value = structlog.contextvars.get_contextvars().get(REQUEST_ID)
    return str(value) if value is not None else None


def bind_request_id(request_id: str | None, **more: Any) -> None:
    structlog.contextvars.clear_contextvars()
    if request_id:
        structlog.contextvars.bind_contextvars(**{REQUEST_ID: request_id}, **more)
    elif more:
        structlog.contextvars.bind_contextvars(**more)


def clear() -> None:
    structlog.contextvars.clear_contextvars()
