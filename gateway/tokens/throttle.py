"""Failed authentications, counted and throttled per client address.

Every refused token costs a database lookup, and a guessed admin token none at all: without
a bound one client could try ~500 tokens a second, unseen. An address that fails
`per_minute` times in a minute is refused (429) without a lookup until the minute ends, and
every failure is counted in `gateway_auth_failures_total{reason}`. Counts are per replica
(no shared store on the refusal path); behind a proxy the address is the one it forwards
(`FORWARDED_ALLOW_IPS`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from gateway.error_codes import ErrorCode
from gateway.errors import ApiError
from gateway.metrics.registry import GatewayMetrics

WINDOW_SECONDS = 60.0
MAX_ADDRESSES = 100_000
"""Addresses tracked at once; beyond, the least recently failed are dropped first."""


class AuthenticationFailed(ApiError):
    """A refused authentication (401/403), with the reason it is counted under."""

    def __init__(self, status_code: int, message: str, reason: str) -> None:
        super().__init__(status_code, ErrorCode.AUTHENTICATION, message)
        self.reason = reason


class AuthenticationThrottle:
    """`per_minute` 0: failures are counted, never throttled."""

    def __init__(
        self,
        per_minute: int,
        metrics: GatewayMetrics,
        clock: Callable[[], float] = time.monotonic,
        max_addresses: int = MAX_ADDRESSES,
    ) -> None:
        self._per_minute = per_minute
        self._metrics = metrics
        self._clock = clock
        self._max_addresses = max_addresses
        self._windows: dict[str, tuple[float, int]] = {}
        """Address → (its window's start, failures in it), least recently failed first."""

    def check(self, address: str | None) -> None:
        """Refuse an address that has failed too often this minute, before any lookup."""
        if not self._per_minute or address is None:
            return
        window = self._windows.get(address)
        if window is None:
            return
        started, failures = window
        left = started + WINDOW_SECONDS - self._clock()
        if left <= 0:
            del self._windows[address]
        elif failures >= self._per_minute:
            self._metrics.auth_failures.labels("throttled").inc()
            raise ApiError(
                429,
                ErrorCode.AUTHENTICATION_THROTTLED,
                "Too many failed authentications from this address; retry later",
                headers={"Retry-After": str(math.ceil(left))},
            )

    def failed(self, address: str | None, reason: str) -> None:
        self._metrics.auth_failures.labels(reason).inc()
        if not self._per_minute or address is None:
            return
        now = self._clock()
        started, failures = self._windows.pop(address, (now, 0))
        if now - started >= WINDOW_SECONDS:
            started, failures = now, 0
        while len(self._windows) >= self._max_addresses:
            del self._windows[next(iter(self._windows))]
        self._windows[address] = (started, failures + 1)
