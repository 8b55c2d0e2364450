"""One streaming request per path, timed per token event as a client sees it.

Each function returns a `StreamTiming`; errors are recorded, never raised, so that a
failure counts in the results instead of stopping the load.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import tritonclient.grpc.aio as triton_grpc

from gateway.sampling import SamplingParams
from gateway.triton.inputs import build_inputs


@dataclass
class StreamTiming:
    started: float
    event_times: list[float] = field(default_factory=list)
    event_tokens: list[int] = field(default_factory=list)
    """Tokens each event carried: an event can hold several (whole characters, batching)."""
    tokens: int = 0
    error: str | None = None

    @property
    def ttft(self) -> float | None:
        return self.event_times[0] - self.started if self.event_times else None

    @property
    def gaps(self) -> list[float]:
        """Inter-token latency: the time between events over the tokens the later one carried."""
        times = self.event_times
        return [
            (b - a) / max(1, tokens)
            for (a, b), tokens in zip(itertools.pairwise(times), self.event_tokens[1:], strict=True)
        ]

    def event(self, tokens: int) -> None:
        self.event_times.append(time.perf_counter())
        self.event_tokens.append(tokens)


@dataclass(frozen=True)
class Request:
    prompt: str
    prompt_ids: list[int]
    max_tokens: int
    seed: int
    end_id: int


async def _sse_lines(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    async for line in response.content:
        if line.startswith((b"data: ", b"id: ")):
            yield line.rstrip(b"\r\n")


async def gateway_sse(
    session: aiohttp.ClientSession, url: str, token: str, request: Request
) -> StreamTiming:
    timing = StreamTiming(time.perf_counter())
    body = {
        "prompt": request.prompt,
        "raw": True,
        "max_tokens": request.max_tokens,
        "seed": request.seed,
        "stream": True,
    }
    try:
        async with session.post(
            url, json=body, headers={"Authorization": f"Bearer {token}"}
        ) as response:
            if response.status != 200:
                timing.error = f"HTTP {response.status}: {(await response.text())[:200]}"
                return timing
            last_id = 0
            async for line in _sse_lines(response):
                if line.startswith(b"id: "):
                    # The gateway's id is the count of tokens sent so far.
                    event_id = int(line[4:])
                    timing.event(event_id - last_id)
                    last_id = event_id
                    continue
                data = line[6:]
                if data == b"[DONE]":
                    break
                event = json.loads(data)
                if "usage" in event:
                    timing.tokens = event["usage"]["completion_tokens"]
                elif "errors" in event:
                    timing.error = str(event["errors"])[:200]
                    break
    except (aiohttp.ClientError, TimeoutError) as error:
        timing.error = f"{type(error).__name__}: {error}"
    return timing


async def triton_sse(session: aiohttp.ClientSession, url: str, request: Request) -> StreamTiming:
    """Triton's `generate_stream` on the ensemble: one event per generated token."""
    timing = StreamTiming(time.perf_counter())
    body = {
        "text_input": request.prompt,
        "max_tokens": request.max_tokens,
        "seed": request.seed,
        "stream": True,
    }
    try:
        async with session.post(url, json=body) as response:
            if response.status != 200:
                timing.error = f"HTTP {response.status}: {(await response.text())[:200]}"
                return timing
            async for line in _sse_lines(response):
                if not line.startswith(b"data: "):
                    continue
                event = json.loads(line[6:])
                if "error" in event:
                    timing.error = str(event["error"])[:200]
                    break
                timing.event(1)
                timing.tokens += 1
    except (aiohttp.ClientError, TimeoutError) as error:
        timing.error = f"{type(error).__name__}: {error}"
    return timing


async def triton_grpc_stream(
    client: triton_grpc.InferenceServerClient, model: str, request: Request
) -> StreamTiming:
    """The generation model over gRPC, token ids in and out, as the gateway calls it."""
    timing = StreamTiming(time.perf_counter())
    inputs = build_inputs(
        request.prompt_ids,
        SamplingParams(max_tokens=request.max_tokens, seed=request.seed),
        request.end_id,
    )

    async def one() -> AsyncIterator[dict[str, object]]:
        yield {"model_name": model, "inputs": inputs, "request_id": str(request.seed)}

    try:
        async for result, error in client.stream_infer(one()):
            if error is not None:
                timing.error = str(error)[:200]
                break
            ids = result.as_numpy("output_ids")
            if ids is not None and ids.size:
                timing.event(int(ids.size))
                timing.tokens += int(ids.size)
    except Exception as error:  # a gRPC failure is a result, not a crash of the load
        timing.error = f"{type(error).__name__}: {error}"
    return timing
