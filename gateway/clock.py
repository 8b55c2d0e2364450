"""The time of day, as the parts that keep time read it: made once by the app and handed to
them, so that a test can set it to the instant it is about (a month's last second, a leap
February) instead of waiting for it."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Wall-clock seconds since the epoch (UTC)."""
        ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> float:
        return time.time()


SYSTEM_CLOCK = SystemClock()
"""The default of the parts a test builds without a clock of its own."""
