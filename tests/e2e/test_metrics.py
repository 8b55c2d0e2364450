"""`/metrics` exposes every gateway metric, with counts that match the traffic."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.accounting import INT8, new_account, run, run_url, wait_for_records
from tests.e2e.sse import stream_run
from tests.gateway_fixtures import GatewayFactory, GatewayProcess

pytestmark = pytest.mark.triton

GATEWAY_METRICS = {
    "gateway_requests_total",
    "gateway_time_to_first_token_seconds_count",
    "gateway_inter_token_latency_seconds_count",
    "gateway_request_duration_seconds_count",
    "gateway_prompt_tokens_total",
    "gateway_completion_tokens_total",
    "gateway_account_tokens_total",
    "gateway_active_streams",
    "gateway_backend_errors_total",
    "gateway_rate_limit_rejections_total",
    "gateway_usage_queue_depth",
    "gateway_usage_flush_duration_seconds_count",
    "gateway_usage_flush_failures_total",
    "gateway_usage_records_dropped_total",
}


def scrape(gateway: GatewayProcess) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    reply = httpx.get(gateway.metrics_url, timeout=5)
    assert reply.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(reply.text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float:  # fmt: skip
    return sum(v for (n, found), v in samples.items() if n == name and set(labels.items()) <= found)


@pytest.fixture(scope="module")
def traffic(
    database_factory,  # type: ignore[no-untyped-def]
    triton,  # type: ignore[no-untyped-def]
    cpu_model_repository,  # type: ignore[no-untyped-def]
    tmp_path_factory: pytest.TempPathFactory,
) -> object:
    """One gateway, known traffic: 2 streamed + 1 plain run, 1 unknown model, and 3 runs on an
    account allowed 1 a minute: over one minute or two, 1 or 2 of them are admitted (yielded)
    and the rest refused."""
    factory = GatewayFactory(
        database_factory, triton, cpu_model_repository, tmp_path_factory.mktemp("metrics")
    )
    gateway = factory("sqlite", GATEWAY_METRICS_PER_ACCOUNT="true")
    account = new_account(gateway)
    limited = new_account(gateway, requests_per_minute=1)
    with gateway.client() as client:
        streamed = [
            stream_run(
                client, run_url(account[0]), account[1], {"prompt": "More", "max_tokens": 20}
            )
            for _ in range(2)
        ]
    plain = run(gateway, account, {"prompt": "Hi", "max_tokens": 10})
    run(gateway, account, {"prompt": "Hi"}, model="@cf/no/such-model")
    limited_runs = [run(gateway, limited, {"prompt": "Hi", "max_tokens": 2}) for _ in range(3)]
    admitted = sum(reply.status_code == 200 for reply in limited_runs)
    assert 1 <= admitted <= 2
    wait_for_records(gateway, 4, account_id=account[0])
    wait_for_records(gateway, 3, account_id=limited[0])
    usages = [events.json_events[-1]["usage"] for events in streamed]
    usages.append(plain.json()["result"]["usage"])
    yield gateway, account, usages, admitted
    for process in factory.started:
        process.stop()


def test_every_gateway_metric_is_exposed(
    traffic: tuple[GatewayProcess, object, object, int],
) -> None:
    names = {name for name, _ in scrape(traffic[0])}
    assert names >= GATEWAY_METRICS


def test_requests_are_counted_by_model_and_status(
    traffic: tuple[GatewayProcess, object, object, int],
) -> None:
    gateway, _, _, admitted = traffic
    samples = scrape(gateway)
    assert value(samples, "gateway_requests_total", model=INT8, status="ok") == 3 + admitted
    assert value(samples, "gateway_requests_total", model="unknown", status="rejected") == 1
    assert value(samples, "gateway_requests_total", status="rate_limited") == 3 - admitted
    assert value(samples, "gateway_rate_limit_rejections_total", limit="requests_per_minute") == (
        3 - admitted
    )


def test_token_counters_match_the_usage_sent_to_clients(
    traffic: tuple[GatewayProcess, tuple[str, str], list[dict[str, int]], int],
) -> None:
    gateway, account, usages, _ = traffic
    samples = scrape(gateway)
    completion = sum(u["completion_tokens"] for u in usages)
    prompt = sum(u["prompt_tokens"] for u in usages)
    # The limited account's admitted runs are counted too.
    assert value(samples, "gateway_completion_tokens_total", model=INT8) >= completion
    assert (
        value(samples, "gateway_account_tokens_total", account=account[0], kind="completion")
        == completion
    )
    assert value(samples, "gateway_account_tokens_total", account=account[0], kind="prompt") == (
        prompt
    )


def test_latency_histograms_count_each_admitted_run(
    traffic: tuple[GatewayProcess, object, object, int],
) -> None:
    gateway, _, _, admitted = traffic
    samples = scrape(gateway)
    assert value(samples, "gateway_time_to_first_token_seconds_count", model=INT8) == 3 + admitted
    assert value(samples, "gateway_request_duration_seconds_count", model=INT8) == 3 + admitted
    # One observation per text event after a stream's first (an event may carry several).
    assert 0 < value(samples, "gateway_inter_token_latency_seconds_count", model=INT8) <= 40


def test_no_stream_is_left_active_and_the_usage_queue_is_drained(
    traffic: tuple[GatewayProcess, object, object, int],
) -> None:
    samples = scrape(traffic[0])
    assert value(samples, "gateway_active_streams", model=INT8) == 0
    assert value(samples, "gateway_usage_queue_depth") == 0
    assert value(samples, "gateway_usage_flush_duration_seconds_count") >= 1


def test_an_unreachable_backend_counts_as_a_backend_error(
    gateway_factory: GatewayFactory,
) -> None:
    gateway = gateway_factory("sqlite", TRITON_GRPC_URL="127.0.0.1:9")
    account = new_account(gateway)
    reply = run(gateway, account, {"prompt": "Hi", "max_tokens": 2})
    samples = scrape(gateway)
    assert reply.status_code == 503
    assert value(samples, "gateway_backend_errors_total", model=INT8, kind="unavailable") == 1
    assert value(samples, "gateway_requests_total", model=INT8, status="backend_error") == 1
