"""What Celery beat sends, and how often.

Periodic tasks are the only timers: long waits are stored data that a
periodic task looks for, never broker countdowns.
"""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab

from workflows import messaging
from workflows.settings import Settings

HEALTH_INTERVAL_SECONDS = 60.0
# 00:05 in Asia/Shanghai, which keeps UTC+8 all year (no daylight saving): 16:05 UTC.
DAILY_REFRESH = crontab(hour=16, minute=5)


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    interval = settings.projection_interval_seconds
    return {
        "health-ping": {
            "task": messaging.PING,
            "schedule": HEALTH_INTERVAL_SECONDS,
            # A ping nobody ran within its interval is stale: drop it, the next one follows.
            "options": {"expires": HEALTH_INTERVAL_SECONDS},
        },
        # The safety net: commits wake the projection, this catches any wake that was lost.
        "project-contracts": {
            "task": messaging.PROJECT,
            "schedule": interval,
            "options": {"expires": interval},
        },
        # Deadlines are stored data; this sweep escalates the conflicts that lapsed.
        "escalate-lapsed-conflicts": {
            "task": messaging.ESCALATE_LAPSED,
            "schedule": settings.timer_interval_seconds,
            "options": {"expires": settings.timer_interval_seconds},
        },
        # Webhooks: dispatch what commits did not wake, fire stored retry times and
        # re-send deliveries whose task was lost.
        "sweep-webhooks": {
            "task": messaging.WEBHOOK_SWEEP,
            "schedule": settings.webhook_sweep_seconds,
            "options": {"expires": settings.webhook_sweep_seconds,
                        "queue": messaging.webhooks_queue(settings)},
        },
        "refresh-priorities-daily": {
            "task": messaging.REFRESH_PRIORITIES,
            "schedule": DAILY_REFRESH,
            "options": {"expires": 3600},
        },
    }
