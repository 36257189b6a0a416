"""Celery tasks: thin wrappers that take ids, re-read what they need and delegate.

Every task is idempotent (the app acknowledges late, so a message can run twice).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from celery import shared_task

from workers.runtime import services


@shared_task(name="threadneedle.ping", ignore_result=False)
def ping() -> dict[str, Any]:
    """Health: the worker is alive and reads the event store."""
    return {
        "head_position": services().app.head_position(),
        "pid": os.getpid(),
        "at": datetime.now(UTC).isoformat(),
    }
