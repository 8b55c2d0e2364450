"""A clock a test sets and steps: `now()` for what takes a clock (`gateway/clock.py`: the limits'
windows, the meter), `now` itself for what takes a monotonic function (the token verifier)."""

from __future__ import annotations

from datetime import datetime


class SteppedClock:
    def __init__(self, now: float | datetime) -> None:
        self.time = now.timestamp() if isinstance(now, datetime) else now

    def now(self) -> float:
        return self.time

    def step(self, seconds: float) -> None:
        self.time += seconds
