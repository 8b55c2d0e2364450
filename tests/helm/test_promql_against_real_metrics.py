"""Every PromQL expression of the dashboards and alerts selects metrics, labels and label
values that a running gateway and tritonserver really export."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from local_runtime.triton_server import TritonServer
from tests.accounting import new_account, run
from tests.gateway_fixtures import GatewayFactory
from tests.helm.promql import (
    EXPRESSIONS,
    grouping_labels,
    label_matchers,
    metric_names,
    variable_queries,
)

pytestmark = pytest.mark.triton

# Labels (None: any value) of each exported series name.
Series = dict[str, dict[str, set[str] | None]]
# The TensorRT-LLM backend's and the GPU metrics, which a CPU-only Triton cannot export:
# from ../shared/reference/triton-trtllm.md ("Metrics (port 8002)"); GPU series carry
# `gpu_uuid` (Triton's docs/user_guide/metrics.md).
TRT_LLM: dict[str, set[str] | None] = {"model": None, "version": None}
GPU: dict[str, set[str] | None] = {"gpu_uuid": None}
GPU_ONLY_SERIES: Series = {
    "nv_trt_llm_request_metrics": {
        **TRT_LLM,
        "request_type": {"active", "max", "scheduled", "context", "waiting"},
    },
    "nv_trt_llm_runtime_memory_metrics": {**TRT_LLM, "memory_type": {"cpu", "gpu", "pinned"}},
    "nv_trt_llm_kv_cache_block_metrics": {
        **TRT_LLM,
        "kv_cache_block_type": {"max", "free", "used", "tokens_per", "reused", "fraction"},
    },
    "nv_trt_llm_inflight_batcher_metrics": {
        **TRT_LLM,
        "inflight_batcher_specific_metric": {
            "total_context_tokens",
            "generation_requests",
            "micro_batch_id",
            "paused_requests",
        },
    },
    "nv_trt_llm_general_metrics": {**TRT_LLM, "general_type": {"timestamp", "iteration_counter"}},
    "nv_gpu_utilization": GPU,
    "nv_gpu_memory_used_bytes": GPU,
    "nv_gpu_memory_total_bytes": GPU,
    "nv_gpu_power_usage": GPU,
}


def exported(text: str) -> Series:
    """Sample names as the exposition text spells them (Triton's counters have no `_total`),
    with their labels and values."""
    series: dict[str, dict[str, set[str] | None]] = {}
    for line in text.splitlines():
        match = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s", line)
        if not match:
            continue
        labels = series.setdefault(match[1], {})
        for label, value in re.findall(r'([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"', match[2] or ""):
            values = labels.setdefault(label, set())
            assert values is not None
            values.add(value)
    return series


@pytest.fixture(scope="module")
def real_series(
    database_factory: Callable[[str], str],
    triton: TritonServer,
    cpu_model_repository: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Series:
    """What a gateway that served traffic, and the Triton behind it, export; and the
    TensorRT-LLM and GPU series a GPU Triton would add."""
    factory = GatewayFactory(
        database_factory, triton, cpu_model_repository, tmp_path_factory.mktemp("promql")
    )
    gateway = factory("sqlite")
    try:
        account = new_account(gateway)
        run(gateway, account, {"prompt": "hi", "max_tokens": 4})
        run(gateway, account, {"prompt": "hi", "max_tokens": 4, "stream": True})
        gateway_text = httpx.get(gateway.metrics_url, timeout=10).text
    finally:
        gateway.stop()
    with urllib.request.urlopen(triton.metrics_url) as reply:  # noqa: S310 (http only)
        triton_text = reply.read().decode()
    return {**exported(gateway_text), **exported(triton_text), **GPU_ONLY_SERIES}


@pytest.mark.parametrize("source", EXPRESSIONS)
def test_every_promql_expression_names_only_exported_metrics(
    real_series: Series, source: str
) -> None:
    used = set().union(*(metric_names(expression) for expression in EXPRESSIONS[source]()))
    assert used, "no metric names found"
    assert used - set(real_series) == set()


@pytest.mark.parametrize("source", EXPRESSIONS)
def test_every_label_matcher_selects_a_label_and_values_its_metric_has(
    real_series: Series, source: str
) -> None:
    matchers = [m for expression in EXPRESSIONS[source]() for m in label_matchers(expression)]
    assert matchers
    for metric, label, operator, value in matchers:
        assert label in real_series[metric], (metric, label)
        known = real_series[metric][label]
        if known is None or "$" in value or operator.startswith("!"):
            continue
        wanted = value.split("|") if operator == "=~" else [value]
        assert set(wanted) <= known, (metric, label, value, known)


@pytest.mark.parametrize("source", EXPRESSIONS)
def test_every_grouping_label_is_a_label_of_a_metric_of_its_expression(
    real_series: Series, source: str
) -> None:
    for expression in EXPRESSIONS[source]():
        labels = set().union(*(set(real_series[name]) for name in metric_names(expression)))
        assert grouping_labels(expression) <= labels, expression


def test_every_dashboard_variable_queries_a_label_its_metric_has(real_series: Series) -> None:
    queries = variable_queries()
    assert queries
    for metric, label in queries:
        assert label in real_series[metric], (metric, label)
