"""Whose calendar decides urgency: dates and times as they are in Asia/Shanghai.

"Today", a replay's reference date and every time shown to a person are read
in Asia/Shanghai (UTC+8 all year, no daylight saving).  The functions are
pure: the moment is an argument, never the clock.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def shanghai_time(moment: datetime | str) -> datetime:
    """``moment`` (a datetime or an ISO 8601 string) in Asia/Shanghai; naive is taken as UTC."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(SHANGHAI)


def shanghai_date(moment: datetime) -> date:
    """The calendar date in Asia/Shanghai at ``moment`` (a naive moment is taken as UTC)."""
    return shanghai_time(moment).date()
