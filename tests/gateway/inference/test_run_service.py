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
from gateway.inference.catalog import TEXT_GENERATION, CatalogEntry, twin_catalog
from gateway.inference.chat_template import ChatMessage
from gateway.inference.errors import invalid_input
from gateway.inference.run_request import ReadRequest, RequestParser, RunRequest
from gateway.inference.run_service import RunService
from gateway.inference.service import InferenceService
from gateway.limits.service import LimitsService
from gateway.limits.store import MemoryLimitStore
from gateway.metrics.registry import GatewayMetrics
from gateway.sampling import SamplingParams
from gateway.settings import LimitSettings
from gateway.tokens.auth import Caller
from gateway.triton.client import TritonClient
from gateway.usage.meter import Meter
from gateway.usage.models import UsageRecord
from tests.accounting import INT8
from tests.gateway.clock import SteppedClock
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
        read: ReadRequest | None = None,
        task: str = TEXT_GENERATION,
    ) -> ApiError:
        request = RunRequest(
            SamplingParams(max_tokens=max_tokens), messages=[ChatMessage("user", "hi")]
        )
        parser = RequestParser(model, "the endpoint", {task: read or (lambda entry: request)})
        with pytest.raises(ApiError) as refused:
            await self.runs.start(CALLER, Api.OPENAI, parser)
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
    generator = TritonClient("127.0.0.1:9")
    inference = InferenceService.from_catalog(twin_catalog(cpu_model_repository), generator)
    meters: list[Meter] = []

    async def make(journal_slots: int = 8, **limits: int) -> Pipeline:
        metrics = GatewayMetrics()
        meter = Meter(sessions, tmp_path / f"journal{len(meters)}", journal_slots, 1, 100, metrics)
        meters.append(meter)
        settings = LimitSettings(**{"monthly_tokens": 0, **limits})  # type: ignore[arg-type]
        clock = SteppedClock(1_718_445_630)  # 10:00:30 UTC: mid-minute, every run in one
        service = LimitsService(MemoryLimitStore(clock), settings, sessions, metrics, clock)
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

    def refuse(entry: CatalogEntry) -> RunRequest:
        raise invalid_input("'n' is not supported", param="n")

    refused = await runs.refusal(read=refuse)
    assert (refused.status_code, refused.param) == (400, "n")
    assert refused.headers["x-request-id"]
    assert await runs.statuses() == ["rejected"]
    counted = runs.metrics.requests.labels(
        INT8, "openai", "text_generation", "rejected"
    )._value.get()
    assert counted == 1


async def test_the_request_is_read_for_the_task_of_the_model_it_names(
    pipeline: Callable[..., Awaitable[Pipeline]],
) -> None:
    runs = await pipeline()
    read_for: list[str] = []

    def read(entry: CatalogEntry) -> RunRequest:
        read_for.append(entry.name)
        raise invalid_input("stop here")

    await runs.refusal(read=read)
    assert read_for == [INT8]


async def test_a_model_whose_task_the_endpoint_does_not_serve_is_refused_naming_both(
    pipeline: Callable[..., Awaitable[Pipeline]],
) -> None:
    runs = await pipeline()
    refused = await runs.refusal(task="Text Embeddings")
    assert (refused.status_code, refused.param) == (400, "model")
    assert "is a 'Text Generation' model; the endpoint serves 'Text Embeddings'" in (
        refused.message
    )
    assert await runs.statuses() == ["rejected"]


async def test_an_unknown_model_is_refused_before_its_request_is_read(
    pipeline: Callable[..., Awaitable[Pipeline]],
) -> None:
    runs = await pipeline()

    def read(entry: CatalogEntry) -> RunRequest:
        raise AssertionError("an unknown model's request is never read")

    assert (await runs.refusal(UNKNOWN, read=read)).status_code == 404


async def test_a_refusal_carries_the_run_id_and_echoes_the_clients_id(
    pipeline: Callable[..., Awaitable[Pipeline]],
) -> None:
    runs = await pipeline()
    parser = RequestParser(UNKNOWN, "the endpoint", {})
    with pytest.raises(ApiError) as refused:
        await runs.runs.start(CALLER, Api.OPENAI, parser, "client-id.1")
    headers = refused.value.headers
    assert headers["x-request-id"] == "client-id.1"
    assert headers["x-run-id"] not in ("", "client-id.1")
