"""A clock a test sets and steps: the limits' windows at the instant a test is about."""

from __future__ import annotations

from datetime import datetime


class SteppedClock:
    def __init__(self, now: float | datetime) -> None:
        self.time = now.timestamp() if isinstance(now, datetime) else now

    def now(self) -> float:
        return self.time

    def step(self, seconds: float) -> None:
        self.time += seconds
