"""`python -m bench soak`: thousands of requests with every kind of ending, then idle.

What a finished request leaves behind shows as growth between the gateway's state before
the load and after it has settled: asyncio tasks and armed timers (the gateway's
`gateway_event_loop_tasks` / `gateway_event_loop_timers`), open file descriptors and
resident memory (from /proc), and CPU-seconds spent while nothing is being served.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp
import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench import stack

ENDINGS = ("complete", "max_tokens_cut", "client_left", "left_at_once", "bad_request", "plain",
           "plain_left")  # fmt: skip
"""In turn: a stream read to `[DONE]`; one cut by a small max_tokens; one the client leaves
after two events; one it leaves before any; a refused body (400); a non-streamed run; one
the client leaves before its answer."""
LONG = {"prompt": "Once upon a time", "max_tokens": 1500, "seed": 4}
SHORT = {"prompt": "Tell me a story about the sea", "max_tokens": 16}


@dataclass(frozen=True)
class ProcessState:
    rss_kib: int
    tasks: int
    timers: int
    fds: int
    scrape_ms: float
    """How long `/metrics` took to answer (it walks the loop's timers)."""


def process_state(gateway: stack.Gateway) -> ProcessState:
    started = time.perf_counter()
    text = httpx.get(gateway.metrics_url, timeout=10).text
    scrape_ms = (time.perf_counter() - started) * 1000
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    fds = len(os.listdir(f"/proc/{gateway.process.pid}/fd"))
    return ProcessState(
        gateway.rss_kib(),
        int(samples["gateway_event_loop_tasks"]),
        int(samples["gateway_event_loop_timers"]),
        fds,
        round(scrape_ms, 1),
    )


class Soak:
    """Sends `count` requests, `concurrency` at a time, cycling through ENDINGS."""

    def __init__(self, gateway: stack.Gateway, count: int, concurrency: int, deadline: float):
        self.gateway = gateway
        self.count = count
        self.concurrency = concurrency
        self.deadline = deadline
        self.outcomes: Counter[str] = Counter()
        self.headers = {"Authorization": f"Bearer {gateway.token}"}

    async def run(self) -> None:
        connector = aiohttp.TCPConnector(limit=self.concurrency)
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            endings = itertools.islice(itertools.cycle(ENDINGS), self.count)
            queue: asyncio.Queue[str] = asyncio.Queue()
            for ending in endings:
                queue.put_nowait(ending)
            workers = [self._worker(session, queue) for _ in range(self.concurrency)]
            await asyncio.gather(*workers)

    async def _worker(self, session: aiohttp.ClientSession, queue: asyncio.Queue[str]) -> None:
        while not queue.empty() and time.monotonic() < self.deadline:
            ending = queue.get_nowait()
            try:
                ok = await self._one(session, ending)
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            self.outcomes[ending if ok else f"{ending}:unexpected"] += 1

    async def _one(self, session: aiohttp.ClientSession, ending: str) -> bool:
        url = self.gateway.run_url
        if ending == "bad_request":
            body: dict[str, object] = {"prompt": "hi", "max_tokens": 0, "stream": True}
            async with session.post(url, json=body, headers=self.headers) as reply:
                await reply.read()
                return reply.status == 400
        if ending in ("plain", "plain_left"):
            return await self._plain(session, {"stream": False}, ending == "plain_left")
        if ending == "left_at_once":
            return await self._plain(session, {"stream": True}, leave=True)
        body = {**(LONG if ending == "client_left" else SHORT), "stream": True}
        if ending == "max_tokens_cut":
            body = {**LONG, "max_tokens": 24, "stream": True}
        async with session.post(url, json=body, headers=self.headers) as reply:
            if reply.status != 200:
                return False
            if ending == "client_left":
                events = 0
                async for _ in reply.content:
                    events += 1
                    if events >= 4:  # two events, each a data line and a blank line
                        reply.close()  # hang up mid-stream
                        return True
                return False
            return (await reply.read()).endswith(b"data: [DONE]\n\n")

    async def _plain(
        self, session: aiohttp.ClientSession, extra: dict[str, object], leave: bool
    ) -> bool:
        """A request read whole, or (`leave`) one the client hangs up on at once."""
        body = {**(LONG if leave else SHORT), **extra}
        request = session.post(self.gateway.run_url, json=body, headers=self.headers)
        if not leave:
            async with request as reply:
                await reply.read()
                return reply.status == 200
        try:
            async with asyncio.timeout(0.01):  # hang up before the answer is ready
                async with request as reply:
                    await reply.read()
                    return False
        except TimeoutError:
            return True


def idle_cpu_seconds(gateway: stack.Gateway, seconds: float) -> float:
    before = gateway.cpu_seconds()
    time.sleep(seconds)
    return gateway.cpu_seconds() - before


def soak(args: argparse.Namespace) -> dict[str, object]:
    repository = stack.model_repository(0, 1024)
    with stack.triton(repository, "soak") as triton:
        env = {"GATEWAY_SSE_KEEPALIVE_SECONDS": str(args.keepalive)}
        with stack.gateway(triton, repository, "soak", env=env) as gateway:
            before = process_state(gateway)
            idle_before = idle_cpu_seconds(gateway, args.idle)
            load = Soak(gateway, args.count, args.concurrency, time.monotonic() + args.max_seconds)
            started = time.monotonic()
            asyncio.run(load.run())
            load_seconds = time.monotonic() - started
            after = process_state(gateway)
            time.sleep(args.settle)
            settled = process_state(gateway)
            idle_after = idle_cpu_seconds(gateway, args.idle)
    return {
        "requests": sum(load.outcomes.values()),
        "outcomes": dict(sorted(load.outcomes.items())),
        "load_seconds": round(load_seconds, 1),
        "keepalive_seconds": args.keepalive,
        "idle_window_seconds": args.idle,
        "before": asdict(before),
        "after": asdict(after),
        "settled": asdict(settled),
        "idle_cpu_seconds_before": round(idle_before, 3),
        "idle_cpu_seconds_after": round(idle_after, 3),
    }


def markdown(result: dict[str, object]) -> str:
    states = {name: result[name] for name in ("before", "after", "settled")}
    rows = ["| | RSS (MiB) | tasks | timers | fds | /metrics (ms) |", "|---|---|---|---|---|---|"]
    for name, state in states.items():
        assert isinstance(state, dict)
        rows.append(f"| {name} | {state['rss_kib'] / 1024:.1f} | {state['tasks']} | "
                    f"{state['timers']} | {state['fds']} | {state['scrape_ms']} |")  # fmt: skip
    return "\n".join([
        f"{result['requests']} requests in {result['load_seconds']} s: {result['outcomes']}",
        "", *rows, "",
        f"CPU-seconds in {result['idle_window_seconds']} s idle: before the load "
        f"{result['idle_cpu_seconds_before']}, after it {result['idle_cpu_seconds_after']}",
    ])  # fmt: skip


def main(args: argparse.Namespace, output: Path) -> int:
    result = soak(args)
    print(markdown(result), flush=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {output}")
    unexpected = [name for name in result["outcomes"] if ":" in name]  # type: ignore[attr-defined]
    return 1 if unexpected else 0
