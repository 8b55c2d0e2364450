"""Per-account limits on the run API, held in memory or in Redis: 429s with their headers."""

from __future__ import annotations

import time

import httpx
import pytest

from local_runtime.triton_server import TritonServer
from tests.accounting import RawStream, new_account, run, set_limits, twin_metric, wait_for_records
from tests.gateway_fixtures import GatewayFactory, GatewayProcess

pytestmark = pytest.mark.triton
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(params=["memory", "redis"])
def limited_gateway(
    request: pytest.FixtureRequest, gateway_factory: GatewayFactory
) -> GatewayProcess:
    if request.param == "redis":
        return gateway_factory("sqlite", REDIS_URL=REDIS_URL)
    return gateway_factory("sqlite")


def in_a_fresh_minute() -> None:
    """Fixed one-minute windows: start a test that counts within one well inside a window."""
    if time.time() % 60 > 50:
        time.sleep(60.5 - time.time() % 60)


def twin_requests(triton: TritonServer) -> float:
    return twin_metric(triton, "cpu_twin_requests_total")


def test_requests_per_minute_trips_after_the_limit_with_retry_after(
    limited_gateway: GatewayProcess,
) -> None:
    account = new_account(limited_gateway, requests_per_minute=3)
    in_a_fresh_minute()
    replies = [run(limited_gateway, account, {"prompt": "hi", "max_tokens": 2}) for _ in range(4)]
    assert [reply.status_code for reply in replies] == [200, 200, 200, 429]
    assert [r.headers["x-ratelimit-remaining-requests"] for r in replies] == ["2", "1", "0", "0"]
    refused = replies[-1]
    assert refused.headers["x-ratelimit-limit-requests"] == "3"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert int(refused.headers["x-ratelimit-reset-requests"]) == int(refused.headers["retry-after"])
    assert refused.json()["errors"][0]["code"] == 3040
    assert "3 requests per minute" in refused.json()["errors"][0]["message"]


def test_a_refused_request_costs_the_backend_nothing(
    limited_gateway: GatewayProcess, triton: TritonServer
) -> None:
    account = new_account(limited_gateway, requests_per_minute=1)
    in_a_fresh_minute()
    run(limited_gateway, account, {"prompt": "hi", "max_tokens": 2})
    before = twin_requests(triton)
    refused = run(limited_gateway, account, {"prompt": "hi", "max_tokens": 2})
    assert refused.status_code == 429
    assert twin_requests(triton) == before


def test_a_rate_limited_request_leaves_a_rate_limited_record(
    limited_gateway: GatewayProcess,
) -> None:
    account = new_account(limited_gateway, requests_per_minute=1)
    in_a_fresh_minute()
    run(limited_gateway, account, {"prompt": "hi", "max_tokens": 2})
    refused = run(limited_gateway, account, {"prompt": "hi", "max_tokens": 2})
    records = wait_for_records(limited_gateway, 2, account_id=account[0])
    by_id = {record["request_id"]: record for record in records}
    assert by_id[refused.headers["x-request-id"]]["status"] == "rate_limited"


def test_tokens_per_minute_refuses_a_request_that_would_pass_the_budget(
    limited_gateway: GatewayProcess,
) -> None:
    account = new_account(limited_gateway, tokens_per_minute=200)
    in_a_fresh_minute()
    first = run(limited_gateway, account, {"prompt": "hi", "max_tokens": 40})
    used = first.json()["result"]["usage"]["prompt_tokens"]
    # Its prompt alone (>= `used`) plus this max_tokens passes 200 only because of the first.
    second = run(limited_gateway, account, {"prompt": "hi", "max_tokens": 201 - 2 * used})
    assert first.status_code == 200
    assert second.status_code == 429
    assert "200 tokens per minute" in second.json()["errors"][0]["message"]
    assert second.headers["x-ratelimit-limit-tokens"] == "200"


def test_a_finished_run_gives_back_the_tokens_it_reserved_but_did_not_use(
    limited_gateway: GatewayProcess,
) -> None:
    account = new_account(limited_gateway, tokens_per_minute=1000)
    in_a_fresh_minute()
    first = run(limited_gateway, account, {"prompt": "hi", "max_tokens": 300, "seed": 3})
    usage = first.json()["result"]["usage"]
    second = run(limited_gateway, account, {"prompt": "hi", "max_tokens": 10})
    assert int(first.headers["x-ratelimit-remaining-tokens"]) == 1000 - (
        usage["prompt_tokens"] + 300
    )
    assert int(second.headers["x-ratelimit-remaining-tokens"]) == 1000 - usage["total_tokens"] - (
        usage["prompt_tokens"] + 10
    )


def test_concurrent_streams_refuses_one_more_until_one_finishes(
    limited_gateway: GatewayProcess,
) -> None:
    account = new_account(limited_gateway, concurrent_streams=1)
    stream = RawStream(  # seed 2 runs to max_tokens: the stream outlives the refused run
        limited_gateway, account, {"prompt": "story", "max_tokens": 300, "seed": 2}
    )
    stream.read_events(1)
    refused = run(limited_gateway, account, {"prompt": "hi", "max_tokens": 2})
    stream.read_to_end()
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert "at most 1 at a time" in refused.json()["errors"][0]["message"]
    assert run(limited_gateway, account, {"prompt": "hi", "max_tokens": 2}).status_code == 200


def test_monthly_quota_refuses_with_a_message_saying_so_and_when_it_resets(
    limited_gateway: GatewayProcess,
) -> None:
    account = new_account(limited_gateway, monthly_tokens=100)
    first = run(limited_gateway, account, {"prompt": "hi", "max_tokens": 20})
    refused = run(limited_gateway, account, {"prompt": "hi", "max_tokens": 90})
    assert first.status_code == 200
    assert first.headers["x-ratelimit-limit-monthly-tokens"] == "100"
    assert refused.status_code == 429
    assert refused.json()["errors"][0]["code"] == 3036
    message = refused.json()["errors"][0]["message"]
    assert "Monthly token quota exhausted" in message
    assert "resets at" in message


def test_monthly_quota_counts_usage_recorded_before_a_restart(
    gateway_factory: GatewayFactory,
) -> None:
    first = gateway_factory("sqlite")
    account = new_account(first, monthly_tokens=1000)
    usage = run(first, account, {"prompt": "hi", "max_tokens": 30}).json()["result"]["usage"]
    first.stop()
    second = gateway_factory(database_url=first.database_url)
    reply = run(second, account, {"prompt": "hi", "max_tokens": 10})
    assert int(reply.headers["x-ratelimit-remaining-monthly-tokens"]) == 1000 - usage[
        "total_tokens"
    ] - (usage["prompt_tokens"] + 10)


def test_two_gateways_sharing_redis_enforce_one_budget(gateway_factory: GatewayFactory) -> None:
    first = gateway_factory("postgresql", REDIS_URL=REDIS_URL)
    second = gateway_factory(database_url=first.database_url, REDIS_URL=REDIS_URL)
    account = new_account(first, requests_per_minute=4)
    in_a_fresh_minute()
    statuses = [
        run(gateway, account, {"prompt": "hi", "max_tokens": 2}).status_code
        for gateway in (first, second, first, second, first, second)
    ]
    assert statuses == [200, 200, 200, 200, 429, 429]


def test_limits_are_set_and_read_through_the_admin_api(gateway: GatewayProcess) -> None:
    account_id = gateway.create_account()
    set_limits(gateway, account_id, requests_per_minute=5, monthly_tokens=0)
    with gateway.client() as client:
        result = client.get(
            f"/admin/v1/accounts/{account_id}/limits", headers=gateway.admin_headers
        ).json()["result"]
    assert result["own"]["requests_per_minute"] == 5
    assert result["own"]["tokens_per_minute"] is None
    assert result["effective"]["requests_per_minute"] == 5
    assert result["effective"]["tokens_per_minute"] > 0
    assert result["effective"]["monthly_tokens"] == 0


def test_negative_limits_are_bad_input(gateway: GatewayProcess) -> None:
    account_id = gateway.create_account()
    with httpx.Client(base_url=gateway.base_url) as client:
        reply = client.put(
            f"/admin/v1/accounts/{account_id}/limits",
            json={"requests_per_minute": -1},
            headers=gateway.admin_headers,
        )
    assert reply.status_code == 400
    assert reply.json()["success"] is False
