"""Rows of results, from a load's timings, and the Markdown table of them."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from bench.clients import StreamTiming
from bench.load import LoadResult


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 2)


@dataclass(frozen=True)
class GatewayUsage:
    """What the gateway process spent while a load ran."""

    cpu_seconds: float
    rss_kib_added: float
    """Peak resident memory during the load minus the idle figure before it."""
    open_streams_peak: int | None
    """The most streams the gateway itself counted open at once (`gateway_active_streams`)."""


@dataclass
class Row:
    path: str
    streams: int
    paced: bool
    tokens_per_s: float
    ttft_p50_ms: float | None
    ttft_p99_ms: float | None
    itl_p99_ms: float | None
    cpu_s_per_1k_tokens: float | None
    rss_kb_per_stream: float | None
    errors: int
    requests: int
    loadgen_cpu_share: float
    """The load generator's CPU time over its processes' wall time: near 1.0 = saturated."""
    backend_ttft_p50_ms: float | None = None
    backend_ttft_p99_ms: float | None = None
    """Triton's own TTFT (direct gRPC probe requests) during the same load."""
    added_ttft_p50_ms: float | None = None
    added_ttft_p99_ms: float | None = None
    """This path's TTFT minus the backend's, same load, same moments."""
    probe_requests: int = 0
    open_streams_peak: int | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _ttfts(timings: list[StreamTiming]) -> list[float]:
    return [t.ttft for t in timings if t.error is None and t.ttft is not None]


def row(
    path: str,
    streams: int,
    paced: bool,
    result: LoadResult,
    processes: int,
    gateway: GatewayUsage | None = None,
    probe: list[StreamTiming] | None = None,
) -> Row:
    ok = [t for t in result.timings if t.error is None]
    tokens = sum(t.tokens for t in ok)
    ttfts = _ttfts(ok)
    gaps = [gap for t in ok for gap in t.gaps]
    backend = _ttfts(result.during(probe or []))
    measured = Row(
        path=path,
        streams=streams,
        paced=paced,
        tokens_per_s=round(tokens / result.wall_seconds, 1) if result.wall_seconds else 0.0,
        ttft_p50_ms=_ms(percentile(ttfts, 0.50)),
        ttft_p99_ms=_ms(percentile(ttfts, 0.99)),
        itl_p99_ms=_ms(percentile(gaps, 0.99)),
        cpu_s_per_1k_tokens=None,
        rss_kb_per_stream=None,
        errors=len(result.timings) - len(ok),
        requests=len(result.timings),
        loadgen_cpu_share=round(
            result.loadgen_cpu_seconds / (result.wall_seconds * min(processes, streams)), 3
        ),
        backend_ttft_p50_ms=_ms(percentile(backend, 0.50)),
        backend_ttft_p99_ms=_ms(percentile(backend, 0.99)),
        probe_requests=len(backend),
    )
    measured.added_ttft_p50_ms = _minus(measured.ttft_p50_ms, measured.backend_ttft_p50_ms)
    measured.added_ttft_p99_ms = _minus(measured.ttft_p99_ms, measured.backend_ttft_p99_ms)
    if gateway is not None:
        measured.cpu_s_per_1k_tokens = (
            round(gateway.cpu_seconds / tokens * 1000, 4) if tokens else None
        )
        measured.rss_kb_per_stream = round(gateway.rss_kib_added / streams, 1)
        measured.open_streams_peak = gateway.open_streams_peak
    return measured


COLUMNS = (
    ("path", "path"),
    ("streams", "streams"),
    ("paced", "paced"),
    ("tokens_per_s", "tokens/s"),
    ("ttft_p50_ms", "TTFT p50 ms"),
    ("ttft_p99_ms", "TTFT p99 ms"),
    ("itl_p99_ms", "ITL p99 ms"),
    ("cpu_s_per_1k_tokens", "gw CPU s/1k tok"),
    ("rss_kb_per_stream", "gw RSS KiB/stream"),
    ("added_ttft_p50_ms", "added TTFT p50 ms"),
    ("added_ttft_p99_ms", "added TTFT p99 ms"),
    ("open_streams_peak", "gw open streams"),
    ("errors", "errors"),
    ("loadgen_cpu_share", "loadgen CPU"),
)


def markdown(rows: list[Row]) -> str:
    def cell(value: object) -> str:
        return "-" if value is None else str(value)

    lines = [
        "| " + " | ".join(title for _, title in COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for item in rows:
        data = item.as_dict()
        lines.append("| " + " | ".join(cell(data[key]) for key, _ in COLUMNS) + " |")
    return "\n".join(lines)
