"""Redis down: a store that answers anyway, or refuses fast and says why.

`FailoverLimitStore` asks the primary store (Redis) and, when it is unavailable, either admits
against the fallback (this replica's own counters, `GATEWAY_LIMIT_LOCAL_FALLBACK`) or refuses
with a 503 (code 1002, `Retry-After`): the operator chose a budget over availability. An
admission the fallback took names it (`Verdict.store`), so that its settlement goes where its
charges are even if Redis is back by then. A settlement never fails its run: one that cannot
reach Redis is counted and its refund lost (what else it loses is in `store.py`).

Each outage is logged once, when it is first seen, and once more when Redis answers again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from gateway.error_codes import ErrorCode
from gateway.errors import ApiError
from gateway.limits.metrics import LimitStoreMetrics
from gateway.limits.store import (
    Budget,
    Lease,
    LimitStore,
    Settlement,
    StoreUnavailable,
    Verdict,
)

UNAVAILABLE_RETRY_AFTER = "2"
logger = logging.getLogger("gateway")


class FailoverLimitStore:
    def __init__(
        self, primary: LimitStore, fallback: LimitStore | None, metrics: LimitStoreMetrics
    ) -> None:
        self._primary = primary
        self._fallback = fallback
        self._metrics = metrics
        self._down = False

    async def admit(self, budgets: Sequence[Budget], lease: Lease | None) -> Verdict:
        """The primary's verdict or, while it is down, the fallback's; raises the 503
        `ApiError` when there is no fallback."""
        try:
            verdict = await self._primary.admit(budgets, lease)
        except StoreUnavailable as error:
            fallback = self._unavailable(error)
            return replace(await fallback.admit(budgets, lease), store=fallback)
        if self._down:
            self._down = False
            logger.warning("limits: Redis answers again")
        return verdict

    def _unavailable(self, error: StoreUnavailable) -> LimitStore:
        outcome = "refused" if self._fallback is None else "fallback"
        self._metrics.store_unavailable.labels(outcome).inc()
        if not self._down:
            self._down = True
            logger.warning(
                "limits: %s; %s",
                error,
                "refusing runs with 503 until it answers"
                if self._fallback is None
                else "admitting runs against this replica's own counters until it answers",
            )
        if self._fallback is None:
            raise ApiError(
                503,
                ErrorCode.LIMITS_UNAVAILABLE,
                "Rate limits cannot be checked right now (their store is unreachable); "
                "retry shortly",
                {"Retry-After": UNAVAILABLE_RETRY_AFTER},
            ) from error
        return self._fallback

    async def settle(self, settlement: Settlement) -> None:
        """Never raises for an outage: the run was served, and its usage record is the
        meter's."""
        try:
            await self._primary.settle(settlement)
        except StoreUnavailable as error:
            self._metrics.store_unavailable.labels("settlement_lost").inc()
            if not self._down:
                logger.warning(
                    "limits: a settlement could not reach Redis (%s): its token refund is "
                    "lost, its stream lease is released with the next script that reaches it",
                    error,
                )

    async def ping(self) -> bool:
        """The primary answers (readiness); raises StoreUnavailable when it does not."""
        return await self._primary.ping()

    async def close(self) -> None:
        await self._primary.close()
        if self._fallback is not None:
            await self._fallback.close()
