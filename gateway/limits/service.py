"""Admission: requests per minute, tokens per minute, concurrent streams, monthly tokens.

Checked before the backend sees anything. A generation reserves its prompt plus `max_tokens`
against the token budgets when admitted and settles to what it really used when it ends, so
concurrent requests cannot overrun a budget between admission and the usage record. Windows
are fixed (calendar minute, calendar month in UTC; `windows.py`): `reset` is when the current
one ends. Each check (the request, the generation) and each settlement is one store call: one
Redis round trip.

Redis down is the store's business (`failover.py`): a check is a fast 503 (code 1002,
`Retry-After`), or with the local fallback on, is made against this replica's own counters;
a settlement never fails its run.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.clock import Clock
from gateway.error_codes import ErrorCode
from gateway.errors import ApiError
from gateway.limits.headers import MONTHLY_TOKENS, REQUESTS, TOKENS, rate_limit_headers
from gateway.limits.models import AccountLimits
from gateway.limits.store import MUST_EXIST, Budget, Lease, LimitStore, Reading, Settlement
from gateway.limits.windows import MinuteWindow, MonthWindow, minute_window, month_window
from gateway.metrics.registry import GatewayMetrics
from gateway.settings import LimitSettings
from gateway.ttl_cache import TtlCache
from gateway.usage.totals import tokens_used_since

STREAM_LEASE_SECONDS = 3600
"""A stream's concurrency lease outlives any stream; it only bounds a dead replica's leak."""


@dataclass(frozen=True)
class EffectiveLimits:
    """0 means no limit."""

    requests_per_minute: int
    tokens_per_minute: int
    concurrent_streams: int
    monthly_tokens: int


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
        clock: Clock,
    ) -> None:
        self._store = store
        self._defaults = defaults
        self._sessions = sessions
        self._metrics = metrics
        self._clock = clock
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
        admission = Admission(account_id, request_id)
        rpm = limits.requests_per_minute
        if not rpm:
            return admission
        minute = minute_window(self._clock.now())
        budgets = {
            REQUESTS: Budget(f"gw:rpm:{account_id}:{minute.index}", 1, rpm, minute.counter_ttl)
        }
        reading, _ = await self._check(admission, budgets, None)
        requests = reading.standings[REQUESTS]
        admission.headers.update(
            rate_limit_headers(REQUESTS, rpm, requests.remaining, minute.reset_seconds)
        )
        if reading.refused is not None:
            raise self._refuse(
                "requests_per_minute",
                ErrorCode.RATE_LIMITED,
                f"Rate limit exceeded: {rpm} requests per minute; retry in {minute.reset_seconds}s",
                minute.reset_seconds,
                admission,
            )
        return admission

    async def admit_generation(self, admission: Admission, reserve_tokens: int) -> None:
        """Reserve tokens (per minute and per month) and a stream slot; 429 when over."""
        limits = await self.limits_for(admission.account_id)
        now = self._clock.now()
        minute, month = minute_window(now), month_window(now)
        account = admission.account_id
        budgets: dict[str, Budget] = {}
        if limits.tokens_per_minute:
            key = f"gw:tpm:{account}:{minute.index}"
            budgets[TOKENS] = Budget(
                key, reserve_tokens, limits.tokens_per_minute, minute.counter_ttl
            )
        if limits.monthly_tokens:
            key = f"gw:month:{account}:{month.label}"
            budgets[MONTHLY_TOKENS] = Budget(
                key, reserve_tokens, limits.monthly_tokens, month.counter_ttl, MUST_EXIST
            )
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
            reading, store = await self._check(admission, budgets, lease)
            if reading.unseeded is not None:
                used = await tokens_used_since(self._sessions, account, month.start)
                budgets[reading.unseeded] = replace(budgets[reading.unseeded], seed=used)
                reading, store = await self._check(admission, budgets, lease, store)
            self._judge(admission, limits, reading, reserve_tokens, minute, month)
            admission.store = store
            admission.token_keys = [budget.key for budget in budgets.values()]
            admission.stream_key = lease.key if lease is not None else None
        admission.reserved_tokens = reserve_tokens

    def _judge(
        self,
        admission: Admission,
        limits: EffectiveLimits,
        reading: Reading,
        reserve_tokens: int,
        minute: MinuteWindow,
        month: MonthWindow,
    ) -> None:
        """The rate-limit headers of every budget the verdict reached; 429 if one refused."""
        resets = {TOKENS: minute.reset_seconds, MONTHLY_TOKENS: month.reset_seconds}
        for name, standing in reading.standings.items():
            admission.headers.update(
                rate_limit_headers(name, standing.budget.limit, standing.remaining, resets[name])
            )
        if reading.lease_refused:
            raise self._refuse(
                "concurrent_streams",
                ErrorCode.RATE_LIMITED,
                f"Too many concurrent requests: at most {limits.concurrent_streams} "
                "at a time for this account; retry when one finishes",
                1,
                admission,
            )
        if reading.refused == TOKENS:
            raise self._refuse(
                "tokens_per_minute",
                ErrorCode.RATE_LIMITED,
                f"Rate limit exceeded: {limits.tokens_per_minute} tokens per minute; "
                f"this request needs up to {reserve_tokens} (prompt + max_tokens), "
                f"{reading.standings[TOKENS].remaining} remain; "
                f"retry in {minute.reset_seconds}s",
                minute.reset_seconds,
                admission,
            )
        if reading.refused == MONTHLY_TOKENS:
            quota = limits.monthly_tokens
            used = quota - reading.standings[MONTHLY_TOKENS].remaining
            raise self._refuse(
                "monthly_quota",
                ErrorCode.QUOTA_EXCEEDED,
                f"Monthly token quota exhausted: {used} of {quota} tokens used this month "
                f"and this request needs up to {reserve_tokens} (prompt + max_tokens); "
                f"the quota resets at {month.end:%Y-%m-%dT%H:%M:%SZ}",
                month.reset_seconds,
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
        await (admission.store or self._store).settle(Settlement(keys, -refund, lease))

    async def _check(
        self,
        admission: Admission,
        budgets: dict[str, Budget],
        lease: Lease | None,
        store: LimitStore | None = None,
    ) -> tuple[Reading, LimitStore]:
        """One store call (to `store`, by default the service's): the verdict read by budget,
        and the store whose counters took it."""
        store = store or self._store
        try:
            verdict = await store.admit(list(budgets.values()), lease)
        except ApiError as unavailable:  # the store's 503 carries this request's headers too
            unavailable.headers = {**admission.headers, **unavailable.headers}
            raise
        return verdict.read(budgets), verdict.store or store

    def _refuse(
        self, limit: str, code: int, message: str, retry_after: int, admission: Admission
    ) -> ApiError:
        self._metrics.rate_limit_rejections.labels(limit).inc()
        return ApiError(429, code, message, {**admission.headers, "Retry-After": str(retry_after)})
