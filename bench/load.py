"""The load: several processes, each an event loop driving its share of the streams.

Every stream runs `rounds` requests one after another (a closed loop), all streams start
together behind a barrier, and each worker reports its own CPU time so that the report can
show the load generator was not the bottleneck.

A `Probe` runs beside a load in a process of its own: short requests straight to the
generation model over gRPC, one after another, so that Triton's own time to first token is
known for the same moments as the load's (a path's added time to first token is its TTFT
minus the probe's, both under the same backend load).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import time
from dataclasses import asdict, dataclass
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Barrier, Event
from types import TracebackType
from typing import Any

import aiohttp
import tritonclient.grpc.aio as triton_grpc

from bench.clients import Request, StreamTiming, gateway_sse, triton_grpc_stream, triton_sse


@dataclass(frozen=True)
class LoadSpec:
    path: str
    """`triton_sse`, `triton_grpc` or `gateway_sse`."""
    target: str
    """The SSE URL, or the gRPC address."""
    model: str
    streams: int
    rounds: int
    max_tokens: int
    prompt: str
    prompt_ids: tuple[int, ...]
    end_id: int
    token: str = ""
    processes: int = 2
    ramp_seconds: float = 1.0
    """Stream i starts at i/streams of this: a steady concurrency, not one synchronized burst."""


@dataclass
class LoadResult:
    timings: list[StreamTiming]
    wall_seconds: float
    loadgen_cpu_seconds: float
    started: float = 0.0
    """`time.perf_counter()` when the streams were released (the clock is system-wide)."""

    def during(self, timings: list[StreamTiming]) -> list[StreamTiming]:
        """The `timings` (of a probe) that started while this load ran."""
        return [t for t in timings if self.started <= t.started <= self.started + self.wall_seconds]


async def _worker_streams(spec: LoadSpec, indexes: list[int]) -> list[StreamTiming]:
    def request(stream: int, round_: int) -> Request:
        return Request(
            spec.prompt, list(spec.prompt_ids), spec.max_tokens, 1 + stream * 1000 + round_,
            spec.end_id,
        )  # fmt: skip

    if spec.path == "triton_grpc":
        client = triton_grpc.InferenceServerClient(spec.target)
        try:

            async def grpc_stream(stream: int) -> list[StreamTiming]:
                await asyncio.sleep(spec.ramp_seconds * stream / spec.streams)
                return [
                    await triton_grpc_stream(client, spec.model, request(stream, r))
                    for r in range(spec.rounds)
                ]

            nested = await asyncio.gather(*(grpc_stream(i) for i in indexes))
        finally:
            await client.close()
        return [timing for timings in nested for timing in timings]

    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def sse_stream(stream: int) -> list[StreamTiming]:
            await asyncio.sleep(spec.ramp_seconds * stream / spec.streams)
            out = []
            for r in range(spec.rounds):
                if spec.path == "gateway_sse":
                    out.append(
                        await gateway_sse(session, spec.target, spec.token, request(stream, r))
                    )
                else:
                    out.append(await triton_sse(session, spec.target, request(stream, r)))
            return out

        nested = await asyncio.gather(*(sse_stream(i) for i in indexes))
    return [timing for timings in nested for timing in timings]


def _worker(spec: LoadSpec, indexes: list[int], barrier: Barrier, results: Any) -> None:
    barrier.wait()
    cpu_before = time.process_time()
    timings = asyncio.run(_worker_streams(spec, indexes))
    results.put(([asdict(t) for t in timings], time.process_time() - cpu_before))


def _collect(results: Any, workers: list[BaseProcess], timeout: float) -> list[Any]:
    """One result per worker; a worker that dies without one fails the run, never hangs it."""
    collected: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(collected) < len(workers):
        try:
            collected.append(results.get(timeout=0.5))
        except queue.Empty:
            dead = [w for w in workers if w.exitcode not in (None, 0)]
            if dead or time.monotonic() > deadline:
                for worker in workers:
                    worker.kill()
                reason = f"exit code {dead[0].exitcode}" if dead else f"no result in {timeout} s"
                raise RuntimeError(f"a load generator process failed: {reason}") from None
    return collected


def run_load(spec: LoadSpec, timeout: float = 900.0) -> LoadResult:
    context = multiprocessing.get_context("spawn")
    processes = max(1, min(spec.processes, spec.streams))
    shares = [list(range(spec.streams))[p::processes] for p in range(processes)]
    barrier = context.Barrier(processes + 1, timeout=120)
    results = context.Queue()
    workers: list[BaseProcess] = [
        context.Process(target=_worker, args=(spec, share, barrier, results), daemon=True)
        for share in shares
    ]
    for worker in workers:
        worker.start()
    barrier.wait()
    started = time.perf_counter()
    collected = _collect(results, workers, timeout)
    wall = time.perf_counter() - started
    for worker in workers:
        worker.join(10)
    timings = [StreamTiming(**t) for batch, _ in collected for t in batch]
    return LoadResult(timings, wall, sum(cpu for _, cpu in collected), started)


@dataclass(frozen=True)
class ProbeSpec:
    target: str
    """Triton's gRPC address."""
    model: str
    prompt: str
    prompt_ids: tuple[int, ...]
    end_id: int
    max_tokens: int = 1
    pause_seconds: float = 0.02
    """Between probe requests: a light load beside the one measured (a prefill every few
    decode steps), and one a backend with in-flight batching serves without queueing."""


async def _probe_requests(spec: ProbeSpec, ready: Event, stop: Event) -> list[StreamTiming]:
    client = triton_grpc.InferenceServerClient(spec.target)
    timings: list[StreamTiming] = []
    try:
        for seed in range(1, 1_000_000):
            request = Request(spec.prompt, list(spec.prompt_ids), spec.max_tokens, seed,
                              spec.end_id)  # fmt: skip
            timing = await triton_grpc_stream(client, spec.model, request)
            if seed == 1:  # the channel's setup is not the backend's latency
                ready.set()
            else:
                timings.append(timing)
            if stop.is_set():
                break
            await asyncio.sleep(spec.pause_seconds)
    finally:
        await client.close()
    return timings


def _probe_worker(spec: ProbeSpec, ready: Event, stop: Event, results: Any) -> None:
    timings = asyncio.run(_probe_requests(spec, ready, stop))
    results.put([asdict(t) for t in timings])


class Probe:
    """Triton's own time to first token, sampled while a load runs (`with Probe(spec):`)."""

    def __init__(self, spec: ProbeSpec) -> None:
        context = multiprocessing.get_context("spawn")
        self._ready = context.Event()
        self._stop = context.Event()
        self._results = context.Queue()
        self._process = context.Process(
            target=_probe_worker, args=(spec, self._ready, self._stop, self._results), daemon=True
        )
        self.timings: list[StreamTiming] = []

    def __enter__(self) -> Probe:
        self._process.start()
        if not self._ready.wait(60):
            self._process.kill()
            raise RuntimeError("the TTFT probe did not start")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        if exc_type is not None:
            self._process.kill()
            return
        [batch] = _collect(self._results, [self._process], 120)
        self._process.join(10)
        self.timings = [StreamTiming(**t) for t in batch]
