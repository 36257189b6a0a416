"""What Celery beat sends, and how often.

Periodic tasks are the only timers: long waits are stored data that a
periodic task looks for, never broker countdowns.
"""

from __future__ import annotations

from typing import Any

HEALTH_INTERVAL_SECONDS = 60.0


def beat_schedule() -> dict[str, dict[str, Any]]:
    return {
        "health-ping": {
            "task": "threadneedle.ping",
            "schedule": HEALTH_INTERVAL_SECONDS,
            # A ping nobody ran within its interval is stale: drop it, the next one follows.
            "options": {"expires": HEALTH_INTERVAL_SECONDS},
        },
    }
