"""The failover store in-process, over a primary that goes down and comes back on cue: the 503
without a fallback, the fallback's counters with one, a generation settled where it was
admitted, settlements that never fail their run, and each outage logged once."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from gateway.errors import ApiError
from gateway.limits.failover import FailoverLimitStore
from gateway.limits.metrics import LimitStoreMetrics
from gateway.limits.service import LimitsService
from gateway.limits.store import (
    Budget,
    Lease,
    MemoryLimitStore,
    Settlement,
    StoreUnavailable,
    Verdict,
)
from gateway.metrics.registry import GatewayMetrics
from gateway.settings import LimitSettings
from tests.gateway.clock import SteppedClock
from tests.gateway.limits.test_service import NO_LIMITS
from tests.gateway_fixtures import DatabaseFactory

NOW = datetime(2024, 6, 15, 10, 0, 20, tzinfo=UTC)


class Switchable:
    """A memory store that answers StoreUnavailable while `down`, as Redis does."""

    def __init__(self, clock: SteppedClock) -> None:
        self.counters = MemoryLimitStore(clock)
        self.down = False
        self.settled: list[Settlement] = []

    def _answer(self) -> None:
        if self.down:
            raise StoreUnavailable("Redis: Connection refused")

    async def admit(self, budgets: Sequence[Budget], lease: Lease | None) -> Verdict:
        self._answer()
        return await self.counters.admit(budgets, lease)

    async def settle(self, settlement: Settlement) -> None:
        self._answer()
        self.settled.append(settlement)
        await self.counters.settle(settlement)

    async def ping(self) -> bool:
        self._answer()
        return True

    async def close(self) -> None:
        pass


class Setup:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], fallback: bool, **limits: int
    ) -> None:
        clock = SteppedClock(NOW)
        self.primary = Switchable(clock)
        self.fallback = MemoryLimitStore(clock) if fallback else None
        metrics = GatewayMetrics()
        self.store_metrics = LimitStoreMetrics(metrics.registry)
        store = FailoverLimitStore(self.primary, self.fallback, self.store_metrics)
        settings = LimitSettings(**{**NO_LIMITS, **limits})  # type: ignore[arg-type]
        self.service = LimitsService(store, settings, sessions, metrics, clock)

    def unavailable(self, outcome: str) -> float:
        value: float = self.store_metrics.store_unavailable.labels(outcome)._value.get()
        return value


@pytest.fixture
async def sessions(
    database_factory: DatabaseFactory,
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_async_engine(database_factory("sqlite"))
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


async def test_without_a_fallback_a_check_is_a_503_with_the_requests_headers(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    setup = Setup(sessions, fallback=False, requests_per_minute=10)
    setup.primary.down = True
    with pytest.raises(ApiError) as refused:
        await setup.service.admit_request("acct", "r1")
    error = refused.value
    assert (error.status_code, error.code) == (503, 1002)
    assert error.message == (
        "Rate limits cannot be checked right now (their store is unreachable); retry shortly"
    )
    assert error.headers == {"Retry-After": "2"}
    assert setup.unavailable("refused") == 1


async def test_a_generation_refused_503_keeps_the_request_rate_headers(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    setup = Setup(sessions, fallback=False, requests_per_minute=10, tokens_per_minute=100)
    admission = await setup.service.admit_request("acct", "r1")
    setup.primary.down = True
    with pytest.raises(ApiError) as refused:
        await setup.service.admit_generation(admission, 5)
    assert refused.value.headers["x-ratelimit-remaining-requests"] == "9"
    assert refused.value.headers["Retry-After"] == "2"


async def test_with_a_fallback_the_replica_counts_on_its_own(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    setup = Setup(sessions, fallback=True, requests_per_minute=2)
    setup.primary.down = True
    await setup.service.admit_request("acct", "r1")
    await setup.service.admit_request("acct", "r2")
    with pytest.raises(ApiError) as refused:
        await setup.service.admit_request("acct", "r3")
    assert refused.value.status_code == 429
    assert setup.unavailable("fallback") == 3


async def test_a_generation_the_fallback_admitted_settles_there_after_redis_returns(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Its stream slot is in the fallback's counters: a settlement sent to Redis would
    leave it held there for an hour."""
    setup = Setup(sessions, fallback=True, concurrent_streams=1)
    setup.primary.down = True
    admission = await setup.service.admit_request("acct", "r1")
    await setup.service.admit_generation(admission, 5)
    assert admission.store is setup.fallback
    setup.primary.down = False
    await setup.service.settle(admission, 5)
    assert setup.primary.settled == []
    setup.primary.down = True  # the fallback again: its slot is free
    again = await setup.service.admit_request("acct", "r2")
    await setup.service.admit_generation(again, 5)


async def test_a_quota_the_fallback_asked_to_seed_is_seeded_there_though_redis_returned(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fallback has no monthly counter: the service reads the records and asks it again,
    not Redis, which came back meanwhile."""
    setup = Setup(sessions, fallback=True, monthly_tokens=100)

    async def redis_returns_while_the_records_are_read(*_: object) -> int:
        setup.primary.down = False
        return 30

    monkeypatch.setattr(
        "gateway.limits.service.tokens_used_since", redis_returns_while_the_records_are_read
    )
    setup.primary.down = True
    admission = await setup.service.admit_request("acct", "r1")
    await setup.service.admit_generation(admission, 40)
    assert admission.headers["x-ratelimit-remaining-monthly-tokens"] == "30"
    assert admission.store is setup.fallback
    assert setup.primary.counters._counters == {}


async def test_a_settlement_that_cannot_reach_redis_is_counted_not_raised(
    sessions: async_sessionmaker[AsyncSession], caplog: pytest.LogCaptureFixture
) -> None:
    setup = Setup(sessions, fallback=False, tokens_per_minute=100)
    admission = await setup.service.admit_request("acct", "r1")
    await setup.service.admit_generation(admission, 50)
    setup.primary.down = True
    with caplog.at_level(logging.WARNING, "gateway"):
        await setup.service.settle(admission, 10)
    assert setup.unavailable("settlement_lost") == 1
    assert "its token refund is lost" in caplog.text


async def test_an_outage_is_logged_once_and_its_end_once(
    sessions: async_sessionmaker[AsyncSession], caplog: pytest.LogCaptureFixture
) -> None:
    setup = Setup(sessions, fallback=True, requests_per_minute=100)
    with caplog.at_level(logging.WARNING, "gateway"):
        setup.primary.down = True
        for n in range(3):
            await setup.service.admit_request("acct", f"down{n}")
        setup.primary.down = False
        for n in range(3):
            await setup.service.admit_request("acct", f"up{n}")
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "limits: Redis: Connection refused; admitting runs against this replica's own "
        "counters until it answers",
        "limits: Redis answers again",
    ]


async def test_readiness_is_the_primarys(sessions: async_sessionmaker[AsyncSession]) -> None:
    setup = Setup(sessions, fallback=True)
    assert await setup.service.ready()
    setup.primary.down = True
    with pytest.raises(StoreUnavailable):
        await setup.service.ready()
