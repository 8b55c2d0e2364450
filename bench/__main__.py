"""`python -m bench`: Triton's SSE endpoint, a direct gRPC stream and the gateway, side by side.

    python -m bench                 # 1, 64, 256 streams; unpaced and paced; + 1,000 open streams
    python -m bench --quick         # 1 and 64 streams, fewer tokens: under two minutes
    python -m bench metering        # gateway throughput with metering on vs off, same run
    python -m bench soak            # 2,000 requests of mixed endings: what they leave behind
    python -m bench embeddings      # texts/s, gateway and Triton side by side (bench/embeddings.py)

Prints a Markdown table and writes bench/results.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench import embeddings, soak, stack
from bench.clients import StreamTiming
from bench.load import LoadSpec, Probe, ProbeSpec, run_load
from bench.report import GatewayUsage, Row, markdown, row
from gateway.inference.tokenization import ModelTokenizer

PROMPT = "Tell me a story about the sea"
RESULTS = Path(__file__).parent / "results.json"
SOAK_RESULTS = Path(__file__).parent / "soak.json"
PATHS = ("triton_sse", "triton_grpc", "gateway_sse")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("mode", nargs="?",
                        choices=("compare", "metering", "soak", "embeddings"),
                        default="compare")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="1 and 64 streams, short runs")
    parser.add_argument("--streams", type=lambda v: [int(s) for s in v.split(",")],
                        help="concurrent streams, e.g. 1,64,256")  # fmt: skip
    parser.add_argument("--tokens", type=int, help="max_tokens per request (default 128)")
    parser.add_argument("--rounds", type=int, help="requests per stream (default 2)")
    parser.add_argument("--paced-rate", type=float, default=25.0,
                        help="paced runs: tokens per second per stream (default 25)")  # fmt: skip
    parser.add_argument("--no-paced", action="store_true", help="skip the paced runs")
    parser.add_argument("--open-streams", type=int, default=1000,
                        help="the capacity run's concurrent streams (0: skip it)")  # fmt: skip
    parser.add_argument("--processes", type=int, default=2, help="load generator processes")
    parser.add_argument("--ramp", type=float, default=1.0,
                        help="seconds over which the streams start (0: all at once)")  # fmt: skip
    parser.add_argument("--no-probe", action="store_true",
                        help="no TTFT probe of Triton beside the loads")  # fmt: skip
    parser.add_argument("--database-url", help="the gateway's database (default: SQLite)")
    parser.add_argument("--redis-url", help="the gateway's limits in Redis (default: in process)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="default: %(default)s")
    parser.add_argument("--count", type=int, default=2000, help="soak: requests (default 2000)")
    parser.add_argument("--concurrency", type=int, default=32,
                        help="soak: requests at once (default 32)")  # fmt: skip
    parser.add_argument("--keepalive", type=float, default=0.02,
                        help="soak: the gateway's SSE keep-alive (default 0.02 s)")  # fmt: skip
    parser.add_argument("--idle", type=float, default=10.0,
                        help="soak: idle window whose CPU is measured (default 10 s)")  # fmt: skip
    parser.add_argument("--settle", type=float, default=5.0,
                        help="soak: wait after the load before the settled figures")  # fmt: skip
    parser.add_argument("--clients", type=lambda v: [int(s) for s in v.split(",")],
                        help="embeddings: concurrent clients, e.g. 1,8,64")  # fmt: skip
    parser.add_argument("--texts", type=int,
                        help="embeddings: texts per run (default 512; --quick 64)")  # fmt: skip
    parser.add_argument("--repository", type=Path,
                        help="embeddings: a CPU repository holding the embedding twin "
                        "(default: build one in var/bench)")  # fmt: skip
    parser.add_argument("--max-seconds", type=float, default=240.0,
                        help="soak: stop sending after this long (default 240)")  # fmt: skip
    args = parser.parse_args(argv)
    args.clients = args.clients or list(embeddings.CLIENTS)
    args.texts = args.texts or (64 if args.quick else 512)
    if args.quick:
        args.streams = args.streams or [1, 64]
        args.tokens = args.tokens or 64
        args.rounds = args.rounds or 1
        args.open_streams = 0 if args.open_streams == 1000 else args.open_streams
    args.streams = args.streams or [1, 64, 256]
    args.tokens = args.tokens or 128
    args.rounds = args.rounds or 2
    return args


@dataclass(frozen=True)
class Workload:
    """What every request asks for, and how the load generator is shaped."""

    model: str
    prompt_ids: tuple[int, ...]
    end_id: int
    processes: int
    ramp_seconds: float

    @classmethod
    def from_args(cls, args: argparse.Namespace, repository: Path) -> Workload:
        model = stack.SPEC.generation_model
        tokenizer = ModelTokenizer.from_directory(repository / model / "tokenizer")
        prompt_ids = tuple(tokenizer.encode_raw(PROMPT))
        return cls(model, prompt_ids, tokenizer.eos_id, args.processes, args.ramp)

    def load(
        self, path: str, target: str, streams: int, rounds: int, tokens: int, token: str
    ) -> LoadSpec:
        return LoadSpec(path, target, self.model, streams, rounds, tokens, PROMPT,
                        self.prompt_ids, self.end_id, token, self.processes,
                        self.ramp_seconds)  # fmt: skip

    def probe(self, triton_grpc_url: str) -> ProbeSpec:
        return ProbeSpec(triton_grpc_url, self.model, PROMPT, self.prompt_ids, self.end_id)


class GatewaySampler:
    """The gateway's peak resident memory and peak open streams while a load runs."""

    def __init__(self, gateway: stack.Gateway) -> None:
        self._gateway = gateway
        self.rss_peak = 0
        self.open_streams_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> GatewaySampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        next_scrape = 0.0
        while not self._stop.is_set():
            self.rss_peak = max(self.rss_peak, self._gateway.rss_kib())
            if time.monotonic() >= next_scrape:  # a scrape costs the gateway a little CPU
                next_scrape = time.monotonic() + 0.25
                with contextlib.suppress(httpx.HTTPError):
                    opened = self._gateway.open_streams()
                    self.open_streams_peak = max(self.open_streams_peak, opened)
            time.sleep(0.02)


def measure(
    spec: LoadSpec,
    paced: bool,
    gateway: stack.Gateway | None = None,
    probe: ProbeSpec | None = None,
) -> Row:
    """One load; the gateway's CPU, memory and open streams if it is the path measured."""
    with ExitStack() as around:
        probing = around.enter_context(Probe(probe)) if probe else None
        if gateway is None:
            result = run_load(spec)
            usage = None
        else:
            idle = gateway.rss_kib()
            cpu_before = gateway.cpu_seconds()
            with GatewaySampler(gateway) as sampled:
                result = run_load(spec)
            usage = GatewayUsage(gateway.cpu_seconds() - cpu_before,
                                 max(0, sampled.rss_peak - idle),
                                 sampled.open_streams_peak)  # fmt: skip
    timings: list[StreamTiming] = probing.timings if probing else []
    measured = row(spec.path, spec.streams, paced, result, spec.processes, usage, timings)
    print(markdown([measured]).splitlines()[-1], flush=True)
    return measured


def compare(args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    for rate in [0.0] if args.no_paced else [0.0, args.paced_rate]:
        paced = rate > 0
        repository = stack.model_repository(rate, 1024)
        workload = Workload.from_args(args, repository)
        with ExitStack() as servers:
            triton = servers.enter_context(stack.triton(repository, f"{rate:g}"))
            gateway = servers.enter_context(
                stack.gateway(triton, repository, f"{rate:g}", database_url=args.database_url,
                              redis_url=args.redis_url)
            )  # fmt: skip
            targets = {
                "triton_sse": (
                    f"{triton.http_url}/v2/models/{stack.SPEC.triton_model('ensemble')}"
                    "/generate_stream"
                ),
                "triton_grpc": triton.grpc_url,
                "gateway_sse": gateway.run_url,
            }
            probe = None if args.no_probe else workload.probe(triton.grpc_url)
            for streams in args.streams:
                rounds = args.rounds * (3 if streams == 1 else 1)
                for path in PATHS:
                    spec = workload.load(path, targets[path], streams, rounds, args.tokens,
                                         gateway.token)  # fmt: skip
                    measured_gateway = gateway if path == "gateway_sse" else None
                    rows.append(
                        measure(spec, paced, measured_gateway, probe if streams > 1 else None)
                    )
            if paced and args.open_streams:
                spec = workload.load("gateway_sse", gateway.run_url, args.open_streams, 1,
                                     min(args.tokens, 100), gateway.token)  # fmt: skip
                rows.append(measure(spec, True, gateway, probe))
    return rows


def summarize(rows: list[Row]) -> str:
    lines = []
    for paced in (False, True):
        at = {r.path: r for r in rows if r.streams == 64 and r.paced == paced}
        if {"triton_sse", "gateway_sse", "triton_grpc"} <= set(at):
            sse, gw, grpc = at["triton_sse"], at["gateway_sse"], at["triton_grpc"]
            ratio = gw.tokens_per_s / sse.tokens_per_s if sse.tokens_per_s else float("nan")
            lines.append(
                f"- 64 streams, {'paced' if paced else 'unpaced'}: gateway throughput "
                f"{ratio:.2f} x Triton SSE (target >= 0.8); gateway-added TTFT (vs Triton's "
                f"own, same load) p50 {_ms(gw.added_ttft_p50_ms)} (target <= 2), p99 "
                f"{_ms(gw.added_ttft_p99_ms)} (target <= 10); vs the separate gRPC run: "
                f"p50 {_diff(gw.ttft_p50_ms, grpc.ttft_p50_ms)}, "
                f"p99 {_diff(gw.ttft_p99_ms, grpc.ttft_p99_ms)}"
            )
    for r in rows:
        if r.streams >= 1000:
            lines.append(
                f"- {r.streams} streams (paced): {r.open_streams_peak} open at once in the "
                f"gateway, {r.errors} errors, {r.rss_kb_per_stream} KiB per stream"
            )
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.2f} ms"


def _diff(a: float | None, b: float | None) -> str:
    return "n/a" if a is None or b is None else f"{a - b:+.2f} ms"


def metering(args: argparse.Namespace) -> list[Row]:
    """The same load through two gateways, metering on and off, alternating, same Triton."""
    repository = stack.model_repository(0, 1024)
    workload = Workload.from_args(args, repository)
    streams = (args.streams or [64])[-1] if args.quick else 64
    rows: list[Row] = []
    with ExitStack() as servers:
        triton = servers.enter_context(stack.triton(repository, "metering"))
        gateways = {
            on: servers.enter_context(stack.gateway(triton, repository, f"metering-{on}",
                                                    metering=on,
                                                    database_url=args.database_url,
                                                    redis_url=args.redis_url))
            for on in (True, False)
        }  # fmt: skip
        for _ in range(1 if args.quick else 3):
            for on, gateway in gateways.items():
                spec = workload.load("gateway_sse", gateway.run_url, streams, args.rounds,
                                     args.tokens, gateway.token)  # fmt: skip
                measured = measure(spec, False, gateway)
                measured.path = f"gateway_sse_metering_{'on' if on else 'off'}"
                rows.append(measured)
    return rows


def metering_summary(rows: list[Row]) -> str:
    def mean(values: list[float]) -> float:
        return sum(values) / len(values) if values else float("nan")

    on = [r for r in rows if r.path.endswith("_on")]
    off = [r for r in rows if r.path.endswith("_off")]
    tps_on, tps_off = mean([r.tokens_per_s for r in on]), mean([r.tokens_per_s for r in off])
    cpu_on = mean([r.cpu_s_per_1k_tokens or 0.0 for r in on])
    cpu_off = mean([r.cpu_s_per_1k_tokens or 0.0 for r in off])
    return (
        f"- metering on: {tps_on:.0f} tokens/s, off: {tps_off:.0f} tokens/s: "
        f"{(tps_off - tps_on) / tps_off * 100:+.1f}% (target < 5%)\n"
        f"- gateway CPU per 1k tokens: on {cpu_on:.4f} s, off {cpu_off:.4f} s: "
        f"{(cpu_on - cpu_off) / cpu_off * 100:+.1f}%"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.mode == "soak":
        return soak.main(args, SOAK_RESULTS if args.output == RESULTS else args.output)
    if args.mode == "embeddings":
        output = embeddings.RESULTS if args.output == RESULTS else args.output
        return embeddings.main(args, output)
    header = markdown([]).splitlines()
    print("\n".join(header), flush=True)
    run: Callable[[argparse.Namespace], list[Row]] = (
        metering if args.mode == "metering" else compare
    )
    rows = run(args)
    summary = metering_summary(rows) if args.mode == "metering" else summarize(rows)
    print(f"\n{markdown(rows)}\n\n{summary}")
    args.output.write_text(json.dumps([r.as_dict() for r in rows], indent=2) + "\n")
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
