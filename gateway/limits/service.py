"""Admission: requests per minute, tokens per minute, concurrent streams, monthly tokens.

Checked before the backend sees anything. A generation reserves its prompt plus `max_tokens`
against the token budgets when admitted and settles to what it really used when it ends, so
concurrent requests cannot overrun a budget between admission and the usage record. Windows
are fixed (calendar minute, calendar month in UTC): `reset` is when the current one ends.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.errors import ApiError
from gateway.limits.models import AccountLimits
from gateway.limits.store import LimitStore
from gateway.metrics.registry import GatewayMetrics
from gateway.settings import LimitSettings
from gateway.ttl_cache import TtlCache
from gateway.usage.models import UsageRecord

RATE_LIMITED = 3040
QUOTA_EXCEEDED = 3036
STREAM_LEASE_SECONDS = 3600
"""A stream's concurrency lease outlives any stream; it only bounds a dead replica's leak."""


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


class LimitsService:
    def __init__(
        self,
        store: LimitStore,
        defaults: LimitSettings,
        sessions: async_sessionmaker[AsyncSession],
        metrics: GatewayMetrics,
    ) -> None:
        self._store = store
        self._defaults = defaults
        self._sessions = sessions
        self._metrics = metrics
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

    async def admit_request(self, account_id: str, request_id: str) -> Admission:
        """Count the request against requests-per-minute; 429 when over."""
        limits = await self.limits_for(account_id)
        admission = Admission(account_id, request_id, {"x-request-id": request_id})
        now = time.time()
        window = int(now // 60)
        reset = max(1, 60 * (window + 1) - int(now))
        if limits.requests_per_minute:
            key = f"gw:rpm:{account_id}:{window}"
            used = await self._store.consume(key, 1, limits.requests_per_minute, 61)
            admission.headers.update(
                {
                    "x-ratelimit-limit-requests": str(limits.requests_per_minute),
                    "x-ratelimit-remaining-requests": str(
                        max(0, limits.requests_per_minute - (used or limits.requests_per_minute))
                    ),
                    "x-ratelimit-reset-requests": str(reset),
                }
            )
            if used is None:
                raise self._refuse(
                    "requests_per_minute",
                    RATE_LIMITED,
                    f"Rate limit exceeded: {limits.requests_per_minute} requests per minute; "
                    f"retry in {reset}s",
                    reset,
                    admission,
                )
        return admission

    async def admit_generation(self, admission: Admission, reserve_tokens: int) -> None:
        """Reserve tokens (per minute and per month) and a stream slot; 429 when over."""
        limits = await self.limits_for(admission.account_id)
        now = time.time()
        window = int(now // 60)
        reset = max(1, 60 * (window + 1) - int(now))
        account = admission.account_id
        try:
            if limits.tokens_per_minute:
                key = f"gw:tpm:{account}:{window}"
                used = await self._store.consume(key, reserve_tokens, limits.tokens_per_minute, 61)
                remaining = limits.tokens_per_minute - (used or 0)
                if used is None:
                    remaining = await self._remaining(key, limits.tokens_per_minute)
                admission.headers.update(
                    {
                        "x-ratelimit-limit-tokens": str(limits.tokens_per_minute),
                        "x-ratelimit-remaining-tokens": str(max(0, remaining)),
                        "x-ratelimit-reset-tokens": str(reset),
                    }
                )
                if used is None:
                    raise self._refuse(
                        "tokens_per_minute",
                        RATE_LIMITED,
                        f"Rate limit exceeded: {limits.tokens_per_minute} tokens per minute; "
                        f"this request needs up to {reserve_tokens} (prompt + max_tokens), "
                        f"{max(0, remaining)} remain; retry in {reset}s",
                        reset,
                        admission,
                    )
                admission.token_keys.append(key)
            if limits.monthly_tokens:
                await self._admit_monthly(admission, limits.monthly_tokens, reserve_tokens, now)
            if limits.concurrent_streams:
                key = f"gw:streams:{account}"
                size = await self._store.acquire(
                    key, admission.request_id, limits.concurrent_streams, STREAM_LEASE_SECONDS
                )
                if size is None:
                    raise self._refuse(
                        "concurrent_streams",
                        RATE_LIMITED,
                        f"Too many concurrent requests: at most {limits.concurrent_streams} "
                        "at a time for this account; retry when one finishes",
                        1,
                        admission,
                    )
                admission.stream_key = key
        except ApiError:
            await self._refund(admission, reserve_tokens)
            await self._release_stream(admission)
            raise
        admission.reserved_tokens = reserve_tokens

    async def settle(self, admission: Admission, used_tokens: int) -> None:
        """Give back what the reservation held beyond the tokens used, and the stream slot."""
        await self._refund(admission, admission.reserved_tokens - used_tokens)
        admission.reserved_tokens = used_tokens
        await self._release_stream(admission)

    async def _refund(self, admission: Admission, tokens: int) -> None:
        if tokens:
            for key in admission.token_keys:
                await self._store.adjust(key, -tokens)

    async def _release_stream(self, admission: Admission) -> None:
        if admission.stream_key is not None:
            await self._store.release(admission.stream_key, admission.request_id)
            admission.stream_key = None

    async def _admit_monthly(
        self, admission: Admission, quota: int, reserve_tokens: int, now: float
    ) -> None:
        start, end = _month_bounds(now)
        key = f"gw:month:{admission.account_id}:{start:%Y-%m}"
        ttl = (end - datetime.fromtimestamp(now, UTC)).total_seconds() + 86400
        if not await self._store.exists(key):
            await self._store.seed(key, await self._used_since(admission.account_id, start), ttl)
        used = await self._store.consume(key, reserve_tokens, quota, ttl)
        remaining = quota - used if used is not None else await self._remaining(key, quota)
        reset = max(1, int(end.timestamp() - now))
        admission.headers.update(
            {
                "x-ratelimit-limit-monthly-tokens": str(quota),
                "x-ratelimit-remaining-monthly-tokens": str(max(0, remaining)),
                "x-ratelimit-reset-monthly-tokens": str(reset),
            }
        )
        if used is None:
            raise self._refuse(
                "monthly_quota",
                QUOTA_EXCEEDED,
                f"Monthly token quota exhausted: {quota - max(0, remaining)} of {quota} tokens "
                f"used this month and this request needs up to {reserve_tokens} "
                f"(prompt + max_tokens); the quota resets at {end:%Y-%m-%dT%H:%M:%SZ}",
                reset,
                admission,
            )
        admission.token_keys.append(key)

    async def _remaining(self, key: str, limit: int) -> int:
        used = await self._store.consume(key, 0, 2**62, 61)
        return limit - (used or 0)

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
