"""How the gateway abandons a generation, against the real tritonserver: with TensorRT-LLM's
`stop`, never by cancelling a call the model may be answering on (Triton 24.10's gRPC stream
handler mishandles a cancel that races a request's final response)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from gateway.sampling import SamplingParams
from gateway.triton.client import TritonClient
from gateway.triton.errors import BackendError
from gateway.triton.token_stream import TokenStream
from llm_contract.engines import ENGINE_SPECS
from local_runtime.triton_server import TritonServer
from tests.accounting import twin_metric

pytestmark = pytest.mark.triton
MODEL = ENGINE_SPECS["int8"].generation_model
PROMPT = [1, 450, 496, 173, 170, 299, 432, 172]
END_ID = 2
LONG = SamplingParams(max_tokens=1500, seed=4)
"""Seed 4 samples 1,189 tokens before the end token: about three seconds at 400 tokens/s."""


@pytest.fixture
async def generator(triton: TritonServer) -> AsyncIterator[TritonClient]:
    generator = TritonClient(triton.grpc_url)
    yield generator
    await generator.close()


def outcomes(triton: TritonServer) -> dict[str, float]:
    return {
        outcome: twin_metric(triton, "cpu_twin_requests_total", model=MODEL, outcome=outcome)
        for outcome in ("cancelled", "stop", "length", "end_id")
    }


async def outcomes_after_one_more(
    triton: TritonServer, before: dict[str, float], seconds: float
) -> dict[str, float]:
    """The twin's outcomes once one more request has ended (or `seconds` passed)."""
    deadline = time.monotonic() + seconds
    after = outcomes(triton)
    while sum(after.values()) == sum(before.values()) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
        after = outcomes(triton)
    return after


async def read_all(stream: TokenStream) -> None:
    async for _ in stream:
        pass


async def ended_within(stream: TokenStream, seconds: float) -> bool:
    for _ in range(round(seconds / 0.01)):
        if stream.ended:
            break
        await asyncio.sleep(0.01)
    return stream.ended


async def test_a_cancelled_stream_ends_by_a_stop_as_any_other_stream_ends(
    triton: TritonServer, generator: TritonClient
) -> None:
    before = outcomes(triton)
    stream = generator.generate(MODEL, PROMPT, LONG, END_ID, request_id="abandoned-mid-way")
    await anext(stream)
    stream.cancel()
    assert [token async for token in stream] == []  # the end, not an error
    after = outcomes(triton)
    assert after["stop"] == before["stop"] + 1
    assert after["cancelled"] == before["cancelled"]
    assert generator.calls_cancelled == 0


async def test_cancelling_the_task_reading_a_stream_leaves_its_generation_running(
    triton: TritonServer, generator: TritonClient
) -> None:
    before = outcomes(triton)
    stream = generator.generate(
        MODEL, PROMPT, SamplingParams(max_tokens=200), END_ID, request_id="reader-cancelled"
    )
    reading = asyncio.ensure_future(read_all(stream))
    await asyncio.sleep(0.2)
    assert not reading.done()
    reading.cancel()
    after = await outcomes_after_one_more(triton, before, seconds=10)
    assert after["cancelled"] == before["cancelled"]
    assert after["length"] + after["end_id"] == before["length"] + before["end_id"] + 1


async def test_a_stop_sent_before_the_first_response_is_sent_again_when_it_arrives(
    triton: TritonServer, generator: TritonClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop can overtake the request it stops and find nothing to stop; here the first one
    is dropped on the way, as if it had."""
    stops: list[str] = []
    send_stop = generator.request_stop

    def first_stop_lost(model: str, request_id: str, end_id: int, url: str | None = None) -> None:
        stops.append(request_id)
        if len(stops) > 1:
            send_stop(model, request_id, end_id, url)

    monkeypatch.setattr(generator, "request_stop", first_stop_lost)
    before = outcomes(triton)
    stream = generator.generate(MODEL, PROMPT, LONG, END_ID, request_id="abandoned-at-once")
    stream.cancel()
    after = await outcomes_after_one_more(triton, before, seconds=5)
    assert stops == ["abandoned-at-once", "abandoned-at-once"]
    assert after["stop"] == before["stop"] + 1
    assert generator.calls_cancelled == 0


async def test_a_generation_whose_stop_is_ignored_has_its_call_cancelled_after_the_grace(
    triton: TritonServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backend that ignores `stop` (a fault the twin never has) still loses the request."""
    generator = TritonClient(triton.grpc_url, stop_grace_seconds=0.3)
    monkeypatch.setattr(generator, "request_stop", lambda *arguments: None)
    before = outcomes(triton)
    stream = generator.generate(MODEL, PROMPT, LONG, END_ID, request_id="stop-ignored")
    await anext(stream)
    stream.cancel()
    assert not await ended_within(stream, 0.2)
    assert await ended_within(stream, 1)
    assert generator.calls_cancelled == 1
    with pytest.raises(BackendError):
        await anext(stream)
    after = await outcomes_after_one_more(triton, before, seconds=2)
    assert after["cancelled"] == before["cancelled"] + 1
    await generator.close()
