"""The limits service in-process, at the instants a test names (an injected clock): its
`x-ratelimit-*` headers, its refusals and their messages, windows that turn over, and the
monthly quota seeded from usage records."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from gateway.error_codes import ErrorCode
from gateway.errors import ApiError
from gateway.limits.service import Admission, LimitsService
from gateway.limits.store import LimitStore, MemoryLimitStore
from gateway.metrics.registry import GatewayMetrics
from gateway.settings import LimitSettings
from gateway.usage.models import UsageRecord
from tests.gateway.clock import SteppedClock
from tests.gateway_fixtures import DatabaseFactory

Sessions = async_sessionmaker[AsyncSession]
NO_LIMITS = {
    "requests_per_minute": 0,
    "tokens_per_minute": 0,
    "concurrent_streams": 0,
    "monthly_tokens": 0,
}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
async def sessions(database_factory: DatabaseFactory) -> AsyncIterator[Sessions]:
    engine = create_async_engine(database_factory("sqlite"))
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


def limits_service(
    sessions: Sessions, clock: SteppedClock, store: LimitStore | None = None, **limits: int
) -> LimitsService:
    settings = LimitSettings(**{**NO_LIMITS, **limits})  # type: ignore[arg-type]
    store = store or MemoryLimitStore(clock)
    return LimitsService(store, settings, sessions, GatewayMetrics(), clock)


async def refusal(admitting: object) -> ApiError:
    with pytest.raises(ApiError) as refused:
        await admitting  # type: ignore[misc]
    return refused.value


async def generation(service: LimitsService, reserve: int) -> Admission:
    admission = await service.admit_request("acct", uuid.uuid4().hex)
    await service.admit_generation(admission, reserve)
    return admission


async def test_the_last_second_of_a_minute_resets_in_one_second(sessions: Sessions) -> None:
    clock = SteppedClock(utc("2024-06-15T10:00:59.5"))
    service = limits_service(sessions, clock, requests_per_minute=2)
    first = await service.admit_request("acct", "r1")
    await service.admit_request("acct", "r2")
    refused = await refusal(service.admit_request("acct", "r3"))
    assert first.headers == {
        "x-ratelimit-limit-requests": "2",
        "x-ratelimit-remaining-requests": "1",
        "x-ratelimit-reset-requests": "1",
    }
    assert (refused.status_code, refused.code) == (429, ErrorCode.RATE_LIMITED)
    assert refused.message == "Rate limit exceeded: 2 requests per minute; retry in 1s"
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.headers["Retry-After"] == "1"


async def test_the_next_minute_is_a_fresh_window(sessions: Sessions) -> None:
    clock = SteppedClock(utc("2024-06-15T10:00:59.5"))
    service = limits_service(sessions, clock, requests_per_minute=1)
    await service.admit_request("acct", "r1")
    await refusal(service.admit_request("acct", "r2"))
    clock.step(0.5)
    admitted = await service.admit_request("acct", "r3")
    assert admitted.headers["x-ratelimit-remaining-requests"] == "0"
    assert admitted.headers["x-ratelimit-reset-requests"] == "60"


async def test_an_admitted_generation_carries_both_token_budgets_headers(
    sessions: Sessions,
) -> None:
    clock = SteppedClock(utc("2024-12-31T23:59:30"))
    service = limits_service(sessions, clock, tokens_per_minute=100, monthly_tokens=1000)
    admission = await generation(service, 60)
    assert {k: v for k, v in admission.headers.items() if k.startswith("x-ratelimit")} == {
        "x-ratelimit-limit-tokens": "100",
        "x-ratelimit-remaining-tokens": "40",
        "x-ratelimit-reset-tokens": "30",
        "x-ratelimit-limit-monthly-tokens": "1000",
        "x-ratelimit-remaining-monthly-tokens": "940",
        "x-ratelimit-reset-monthly-tokens": "30",
    }


async def test_a_refusal_per_minute_says_what_remains_and_stops_before_the_month(
    sessions: Sessions,
) -> None:
    clock = SteppedClock(utc("2024-12-31T23:59:30"))
    service = limits_service(sessions, clock, tokens_per_minute=100, monthly_tokens=1000)
    await generation(service, 60)
    refused = await refusal(generation(service, 50))
    assert (refused.status_code, refused.code) == (429, ErrorCode.RATE_LIMITED)
    assert refused.message == (
        "Rate limit exceeded: 100 tokens per minute; this request needs up to 50 "
        "(prompt + max_tokens), 40 remain; retry in 30s"
    )
    assert refused.headers["Retry-After"] == "30"
    assert refused.headers["x-ratelimit-remaining-tokens"] == "40"
    assert "x-ratelimit-limit-monthly-tokens" not in refused.headers


async def record_usage(sessions: Sessions, started_at: str, tokens: int) -> None:
    async with sessions() as session:
        await session.execute(
            insert(UsageRecord).values(
                id=uuid.uuid4().hex,
                account_id="acct",
                token_id="tok",
                model="m",
                status="ok",
                prompt_tokens=tokens // 2,
                completion_tokens=tokens - tokens // 2,
                duration_ms=1.0,
                started_at=utc(started_at),
            )
        )
        await session.commit()


async def test_the_monthly_quota_counts_this_months_records_and_resets_at_new_year(
    sessions: Sessions,
) -> None:
    await record_usage(sessions, "2024-11-30T23:59:59", 50)  # last month: not counted
    await record_usage(sessions, "2024-12-05T08:00:00", 70)
    clock = SteppedClock(utc("2024-12-31T23:59:30"))
    service = limits_service(sessions, clock, monthly_tokens=100)
    refused = await refusal(generation(service, 40))
    assert (refused.status_code, refused.code) == (429, ErrorCode.QUOTA_EXCEEDED)
    assert refused.message == (
        "Monthly token quota exhausted: 70 of 100 tokens used this month and this request "
        "needs up to 40 (prompt + max_tokens); the quota resets at 2025-01-01T00:00:00Z"
    )
    assert refused.headers["Retry-After"] == "30"
    assert refused.headers["x-ratelimit-remaining-monthly-tokens"] == "30"
    clock.step(31)
    admitted = await generation(service, 40)
    assert admitted.headers["x-ratelimit-remaining-monthly-tokens"] == "60"
    assert admitted.headers["x-ratelimit-reset-monthly-tokens"] == str(31 * 86400 - 1)


async def test_a_full_stream_slot_refuses_with_retry_after_one_second(
    sessions: Sessions,
) -> None:
    clock = SteppedClock(utc("2024-06-15T10:00:20"))
    service = limits_service(sessions, clock, concurrent_streams=1, tokens_per_minute=100)
    held = await generation(service, 10)
    refused = await refusal(generation(service, 10))
    assert refused.message == (
        "Too many concurrent requests: at most 1 at a time for this account; "
        "retry when one finishes"
    )
    assert refused.headers["Retry-After"] == "1"
    assert refused.headers["x-ratelimit-reset-tokens"] == "40"
    await service.settle(held, 10)
    assert (await generation(service, 10)).headers["x-ratelimit-remaining-tokens"] == "80"


async def test_a_settlement_gives_back_what_the_run_did_not_use(sessions: Sessions) -> None:
    clock = SteppedClock(utc("2024-06-15T10:00:20"))
    service = limits_service(sessions, clock, tokens_per_minute=100)
    admission = await generation(service, 60)
    await service.settle(admission, 15)
    assert (await generation(service, 5)).headers["x-ratelimit-remaining-tokens"] == "80"
