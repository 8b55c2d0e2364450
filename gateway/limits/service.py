"""Admission: requests per minute, tokens per minute, concurrent streams, monthly tokens.

Checked before the backend sees anything. A generation reserves its prompt plus `max_tokens`
against the token budgets when admitted and settles to what it really used when it ends, so
concurrent requests cannot overrun a budget between admission and the usage record. Windows
are fixed (calendar minute, calendar month in UTC): `reset` is when the current one ends.
Each check (the request, the generation) and each settlement is one store call: one Redis
round trip.

Redis down: a check is a fast 503 (code 1002, `Retry-After`), or with the local fallback on,
is made against this replica's own counters. A settlement never fails its run: the usage
record is the meter's, and what the settlement loses is described in `store.py`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.errors import LIMITS_UNAVAILABLE, ApiError
from gateway.limits.metrics import LimitStoreMetrics
from gateway.limits.models import AccountLimits
from gateway.limits.store import (
    MUST_EXIST,
    Budget,
    Lease,
    LimitStore,
    MemoryLimitStore,
    Settlement,
    StoreUnavailable,
    Verdict,
)
from gateway.metrics.registry import GatewayMetrics
from gateway.settings import LimitSettings
from gateway.ttl_cache import TtlCache
from gateway.usage.models import UsageRecord

RATE_LIMITED = 3040
QUOTA_EXCEEDED = 3036
STREAM_LEASE_SECONDS = 3600
"""A stream's concurrency lease outlives any stream; it only bounds a dead replica's leak."""
UNAVAILABLE_RETRY_AFTER = "2"
logger = logging.getLogger("gateway")


@dataclass(frozen=True)
class EffectiveLimits:
    """0 means no limit."""

    requests_per_minute: int
    tokens_per_minute: int
    concurrent_streams: int
    monthly_tokens: int


def _month_bounds(now: float) -> tuple[datetime, datetime]:
    moment = datetime.fromtimestamp(now, UTC)
    start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start, end


@dataclass
class Admission:
    """What an admitted request holds, and the headers every response of it carries."""

    account_id: str
    request_id: str
    headers: dict[str, str] = field(default_factory=dict)
    reserved_tokens: int = 0
    token_keys: list[str] = field(default_factory=list)
    stream_key: str | None = None
    store: LimitStore | None = None
    """The store that admitted the generation (the fallback one while Redis was down)."""


class LimitsService:
    def __init__(
        self,
        store: LimitStore,
        defaults: LimitSettings,
        sessions: async_sessionmaker[AsyncSession],
        metrics: GatewayMetrics,
        store_metrics: LimitStoreMetrics,
    ) -> None:
        self._store = store
        self._fallback: LimitStore | None = MemoryLimitStore() if defaults.local_fallback else None
        self._defaults = defaults
        self._sessions = sessions
        self._metrics = metrics
        self._store_metrics = store_metrics
        self._store_down = False
        self._cache: TtlCache[str, EffectiveLimits] = TtlCache()

    async def limits_for(self, account_id: str) -> EffectiveLimits:
        async def load() -> tuple[EffectiveLimits, float]:
            async with self._sessions() as session:
                own = await session.get(AccountLimits, account_id)
            defaults = self._defaults

            def pick(name: str) -> int:
                value: int | None = getattr(own, name) if own is not None else None
                return int(getattr(defaults, name)) if value is None else value

            limits = EffectiveLimits(
                pick("requests_per_minute"),
                pick("tokens_per_minute"),
                pick("concurrent_streams"),
                pick("monthly_tokens"),
            )
            return limits, defaults.cache_seconds

        return await self._cache.get(account_id, load)

    def forget(self, account_id: str) -> None:
        self._cache.forget(account_id)

    async def ready(self) -> bool:
        """The store answers (readiness); raises StoreUnavailable when it does not."""
        return await self._store.ping()

    async def admit_request(self, account_id: str, request_id: str) -> Admission:
        """Count the request against requests-per-minute; 429 when over."""
        limits = await self.limits_for(account_id)
        admission = Admission(account_id, request_id, {"x-request-id": request_id})
        now = time.time()
        window = int(now // 60)
        reset = max(1, 60 * (window + 1) - int(now))
        if limits.requests_per_minute:
            rpm = limits.requests_per_minute
            budget = Budget(f"gw:rpm:{account_id}:{window}", 1, rpm, 61)
            _, verdict = await self._check(admission, [budget], None)
            refused = verdict.refused_at is not None
            admission.headers.update(
                {
                    "x-ratelimit-limit-requests": str(rpm),
                    "x-ratelimit-remaining-requests": str(
                        0 if refused else max(0, rpm - verdict.used[0] - 1)
                    ),
                    "x-ratelimit-reset-requests": str(reset),
                }
            )
            if refused:
                raise self._refuse(
                    "requests_per_minute",
                    RATE_LIMITED,
                    f"Rate limit exceeded: {rpm} requests per minute; retry in {reset}s",
                    reset,
                    admission,
                )
        return admission

    async def admit_generation(self, admission: Admission, reserve_tokens: int) -> None:
        """Reserve tokens (per minute and per month) and a stream slot; 429 when over."""
        limits = await self.limits_for(admission.account_id)
        now = time.time()
        account = admission.account_id
        month_start, month_end = _month_bounds(now)
        budgets: list[Budget] = []
        if limits.tokens_per_minute:
            key = f"gw:tpm:{account}:{int(now // 60)}"
            budgets.append(Budget(key, reserve_tokens, limits.tokens_per_minute, 61))
        if limits.monthly_tokens:
            ttl = (month_end - datetime.fromtimestamp(now, UTC)).total_seconds() + 86400
            key = f"gw:month:{account}:{month_start:%Y-%m}"
            budgets.append(Budget(key, reserve_tokens, limits.monthly_tokens, ttl, MUST_EXIST))
        lease = (
            Lease(
                f"gw:streams:{account}",
                admission.request_id,
                limits.concurrent_streams,
                STREAM_LEASE_SECONDS,
            )
            if limits.concurrent_streams
            else None
        )
        if budgets or lease is not None:
            store, verdict = await self._check(admission, budgets, lease)
            if verdict.unseeded is not None:
                used = await self._used_since(account, month_start)
                budgets[verdict.unseeded] = replace(budgets[verdict.unseeded], seed=used)
                store, verdict = await self._check(admission, budgets, lease, store)
            self._judge(admission, limits, budgets, verdict, reserve_tokens, now, month_end)
            admission.store = store
            admission.token_keys = [budget.key for budget in budgets]
            admission.stream_key = lease.key if lease is not None else None
        admission.reserved_tokens = reserve_tokens

    def _judge(
        self,
        admission: Admission,
        limits: EffectiveLimits,
        budgets: list[Budget],
        verdict: Verdict,
        reserve_tokens: int,
        now: float,
        month_end: datetime,
    ) -> None:
        """The rate-limit headers of every budget the verdict reached; 429 if one refused."""
        quota = limits.monthly_tokens
        minute_reset = max(1, 60 * (int(now // 60) + 1) - int(now))
        month_reset = max(1, int(month_end.timestamp() - now))
        refused_at = len(budgets) + 1 if verdict.refused_at is None else verdict.refused_at
        kinds = ["minute"] * bool(limits.tokens_per_minute) + ["monthly"] * bool(quota)
        remaining: dict[str, int] = {}
        for index, (kind, budget) in enumerate(zip(kinds, budgets, strict=True)):
            if index <= refused_at:
                charged = reserve_tokens if index < refused_at else 0
                remaining[kind] = max(0, budget.limit - verdict.used[index] - charged)
        if "minute" in remaining:
            admission.headers.update(
                {
                    "x-ratelimit-limit-tokens": str(limits.tokens_per_minute),
                    "x-ratelimit-remaining-tokens": str(remaining["minute"]),
                    "x-ratelimit-reset-tokens": str(minute_reset),
                }
            )
        if "monthly" in remaining:
            admission.headers.update(
                {
                    "x-ratelimit-limit-monthly-tokens": str(quota),
                    "x-ratelimit-remaining-monthly-tokens": str(remaining["monthly"]),
                    "x-ratelimit-reset-monthly-tokens": str(month_reset),
                }
            )
        if verdict.refused_at is None:
            return
        if verdict.refused_at == len(budgets):
            raise self._refuse(
                "concurrent_streams",
                RATE_LIMITED,
                f"Too many concurrent requests: at most {limits.concurrent_streams} "
                "at a time for this account; retry when one finishes",
                1,
                admission,
            )
        if kinds[verdict.refused_at] == "minute":
            raise self._refuse(
                "tokens_per_minute",
                RATE_LIMITED,
                f"Rate limit exceeded: {limits.tokens_per_minute} tokens per minute; "
                f"this request needs up to {reserve_tokens} (prompt + max_tokens), "
                f"{remaining['minute']} remain; retry in {minute_reset}s",
                minute_reset,
                admission,
            )
        raise self._refuse(
            "monthly_quota",
            QUOTA_EXCEEDED,
            f"Monthly token quota exhausted: {quota - remaining['monthly']} of {quota} tokens "
            f"used this month and this request needs up to {reserve_tokens} "
            f"(prompt + max_tokens); the quota resets at {month_end:%Y-%m-%dT%H:%M:%SZ}",
            month_reset,
            admission,
        )

    async def settle(self, admission: Admission, used_tokens: int) -> None:
        """Give back what the reservation held beyond the tokens used, and the stream slot.

        Never raises for Redis: a run that was served is not failed by its bookkeeping.
        """
        refund = admission.reserved_tokens - used_tokens
        admission.reserved_tokens = used_tokens
        keys = tuple(admission.token_keys) if refund else ()
        lease = (admission.stream_key, admission.request_id) if admission.stream_key else None
        admission.stream_key = None
        if not keys and lease is None:
            return
        try:
            await (admission.store or self._store).settle(Settlement(keys, -refund, lease))
        except StoreUnavailable as error:
            self._store_metrics.store_unavailable.labels("settlement_lost").inc()
            if not self._store_down:
                logger.warning(
                    "limits: a settlement could not reach Redis (%s): its token refund is "
                    "lost, its stream lease is released with the next script that reaches it",
                    error,
                )

    async def _check(
        self,
        admission: Admission,
        budgets: list[Budget],
        lease: Lease | None,
        store: LimitStore | None = None,
    ) -> tuple[LimitStore, Verdict]:
        """One store call: the shared store's verdict or, while it is down, the fallback's."""
        if store is None or store is self._store:
            try:
                verdict = await self._store.admit(budgets, lease)
            except StoreUnavailable as error:
                store = self._unavailable(admission, error)
            else:
                if self._store_down:
                    self._store_down = False
                    logger.warning("limits: Redis answers again")
                return self._store, verdict
        return store, await store.admit(budgets, lease)

    def _unavailable(self, admission: Admission, error: StoreUnavailable) -> LimitStore:
        """The fallback store, or a 503 when the operator chose a budget over availability."""
        outcome = "refused" if self._fallback is None else "fallback"
        self._store_metrics.store_unavailable.labels(outcome).inc()
        if not self._store_down:
            self._store_down = True
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
                LIMITS_UNAVAILABLE,
                "Rate limits cannot be checked right now (their store is unreachable); "
                "retry shortly",
                {**admission.headers, "Retry-After": UNAVAILABLE_RETRY_AFTER},
            ) from error
        return self._fallback

    async def _used_since(self, account_id: str, start: datetime) -> int:
        async with self._sessions() as session:
            total = await session.scalar(
                select(
                    func.coalesce(
                        func.sum(UsageRecord.prompt_tokens + UsageRecord.completion_tokens), 0
                    )
                ).where(UsageRecord.account_id == account_id, UsageRecord.started_at >= start)
            )
        return int(total or 0)

    def _refuse(
        self, limit: str, code: int, message: str, retry_after: int, admission: Admission
    ) -> ApiError:
        self._metrics.rate_limit_rejections.labels(limit).inc()
        return ApiError(429, code, message, {**admission.headers, "Retry-After": str(retry_after)})
