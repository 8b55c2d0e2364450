"""The run pipeline's refusal order, on its real parts: the twins' catalog and tokenizers, the
in-memory limit store, a SQLite database and the usage journal. Every run here is refused
before the backend, which is therefore never reached."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from gateway.errors import ApiError
from gateway.inference.api import Api
from gateway.inference.catalog import twin_catalog
from gateway.inference.chat_template import ChatMessage
from gateway.inference.errors import invalid_input
from gateway.inference.run import RunService
from gateway.inference.service import InferenceService, RunRequest
from gateway.inference.triton import SamplingParams, TritonGenerator
from gateway.limits.metrics import LimitStoreMetrics
from gateway.limits.service import LimitsService
from gateway.limits.store import MemoryLimitStore
from gateway.metrics.registry import GatewayMetrics
from gateway.settings import LimitSettings
from gateway.tokens.auth import Caller
from gateway.usage.meter import Meter
from gateway.usage.models import UsageRecord
from tests.accounting import INT8
from tests.gateway_fixtures import DatabaseFactory

CALLER = Caller(account_id="acct", token_id="tok")
UNKNOWN = "@cf/no/such-model"


class Pipeline:
    def __init__(self, runs: RunService, meter: Meter, metrics: GatewayMetrics) -> None:
        self.runs = runs
        self.meter = meter
        self.metrics = metrics

    async def refusal(
        self,
        model: str = INT8,
        max_tokens: int = 8,
        describe: Callable[[], RunRequest] | None = None,
    ) -> ApiError:
        request = RunRequest(
            model, SamplingParams(max_tokens=max_tokens), messages=[ChatMessage("user", "hi")]
        )
        with pytest.raises(ApiError) as refused:
            await self.runs.start(CALLER, Api.OPENAI, model, describe or (lambda: request))
        return refused.value

    async def statuses(self) -> list[str]:
        """The statuses of the records written, oldest first."""
        assert await self.meter.flush()
        async with self.meter._sessions() as session:
            rows = await session.scalars(select(UsageRecord).order_by(UsageRecord.started_at))
            return [row.status for row in rows]


@pytest.fixture
async def pipeline(
    database_factory: DatabaseFactory, cpu_model_repository: Path, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[Pipeline]]]:
    engine = create_async_engine(database_factory("sqlite"))
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    generator = TritonGenerator("127.0.0.1:9")
    inference = InferenceService.from_catalog(twin_catalog(cpu_model_repository), generator)
    meters: list[Meter] = []

    async def make(journal_slots: int = 8, **limits: int) -> Pipeline:
        metrics = GatewayMetrics()
        meter = Meter(sessions, tmp_path / f"journal{len(meters)}", journal_slots, 1, 100, metrics)
        meters.append(meter)
        settings = LimitSettings(**{"monthly_tokens": 0, **limits})  # type: ignore[arg-type]
        service = LimitsService(
            MemoryLimitStore(), settings, sessions, metrics, LimitStoreMetrics(metrics.registry)
        )
        return Pipeline(RunService(inference, service, meter, metrics), meter, metrics)

    yield make
    for meter in meters:
        meter.journal.shutdown(keep=False)
    await generator.close()
    await engine.dispose()


async def test_the_request_rate_is_checked_before_the_model(
    pipeline: Callable[..., Awaitable[Pipeline]],
) -> None:
    runs = await pipeline(requests_per_minute=1)
    assert (await runs.refusal(UNKNOWN)).status_code == 404
    assert (await runs.refusal(UNKNOWN)).status_code == 429
    assert await runs.statuses() == ["rejected", "rate_limited"]


async def test_the_models_limits_are_checked_before_the_token_budget(
    pipeline: Callable[..., Awaitable[Pipeline]],
) -> None:
    runs = await pipeline(tokens_per_minute=10)
    refused = await runs.refusal(max_tokens=1801)
    assert (refused.status_code, refused.param) == (400, "max_tokens")
    assert (await runs.refusal(max_tokens=1800)).status_code == 429


async def test_the_token_budget_is_checked_before_a_usage_record_is_opened(
    pipeline: Callable[..., Awaitable[Pipeline]],
) -> None:
    runs = await pipeline(journal_slots=1, tokens_per_minute=100)
    runs.meter.open("held", "acct", "tok", INT8, 1)
    assert (await runs.refusal(max_tokens=200)).status_code == 429
    assert (await runs.refusal(max_tokens=8)).status_code == 503


async def test_a_body_the_api_refuses_is_recorded_as_rejected_and_counted_by_api(
    pipeline: Callable[..., Awaitable[Pipeline]],
) -> None:
    runs = await pipeline()

    def refuse() -> RunRequest:
        raise invalid_input("'n' is not supported", param="n")

    refused = await runs.refusal(describe=refuse)
    assert (refused.status_code, refused.param) == (400, "n")
    assert refused.headers["x-request-id"]
    assert await runs.statuses() == ["rejected"]
    counted = runs.metrics.requests.labels(INT8, "openai", "rejected")._value.get()
    assert counted == 1
