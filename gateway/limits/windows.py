"""The limits' fixed windows, as pure functions of an instant (seconds since the epoch): the
calendar minute and the calendar month in UTC, when each ends, and how long their counters
live in the store.

A reset is in whole seconds, at least 1: it is what `Retry-After` and the `x-ratelimit-reset-*`
headers say.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

MINUTE_COUNTER_TTL = 61
"""A minute's counter outlives its minute by a second."""
MONTH_COUNTER_GRACE = 86400
"""A month's counter outlives its month by a day."""


@dataclass(frozen=True)
class MinuteWindow:
    index: int
    """Minutes since the epoch: the minute's counters are keyed by it."""
    reset_seconds: int
    """Until the next minute starts."""
    counter_ttl: float = MINUTE_COUNTER_TTL


@dataclass(frozen=True)
class MonthWindow:
    start: datetime
    """Midnight UTC on the 1st."""
    end: datetime
    """The next month's start."""
    reset_seconds: int
    """Until `end`."""
    counter_ttl: float
    """Until `end`, and a day more."""

    @property
    def label(self) -> str:
        """`2024-02`: the month's counters are keyed by it."""
        return f"{self.start:%Y-%m}"


def minute_window(now: float) -> MinuteWindow:
    index = int(now // 60)
    return MinuteWindow(index, max(1, 60 * (index + 1) - int(now)))


def month_window(now: float) -> MonthWindow:
    moment = datetime.fromtimestamp(now, UTC)
    start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return MonthWindow(
        start,
        end,
        reset_seconds=max(1, int(end.timestamp() - now)),
        counter_ttl=(end - moment).total_seconds() + MONTH_COUNTER_GRACE,
    )
