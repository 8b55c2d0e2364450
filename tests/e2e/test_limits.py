"""Per-account limits on the run API, held in memory or in Redis: 429s with their headers.

The per-minute windows are fixed calendar minutes and a test may run across the turn of one:
each sends enough runs that the window counting most of them shows the limit, and checks each
window's replies apart (`by_window`), instead of waiting for a fresh minute.
"""

from __future__ import annotations

import time

import httpx
import pytest

from local_runtime.triton_server import TritonServer
from tests.accounting import (
    RawStream,
    new_account,
    run,
    set_limits,
    twin_metric,
    wait_for_records,
    wait_until_idle,
)
from tests.gateway_fixtures import GatewayFactory, GatewayProcess

pytestmark = pytest.mark.triton
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="module", params=["memory", "redis"])
def limited_gateway(
    request: pytest.FixtureRequest, module_gateway_factory: GatewayFactory
) -> GatewayProcess:
    """One gateway per store for the module: each test limits an account of its own."""
    if request.param == "redis":
        return module_gateway_factory("sqlite", REDIS_URL=REDIS_URL)
    return module_gateway_factory("sqlite")


def by_window(replies: list[httpx.Response], reset_header: str) -> list[list[httpx.Response]]:
    """The replies (in the order they were sent, within a minute) grouped by the minute that
    counted them: within one, `reset_header` (seconds to its end) never grows; the next one's
    is larger than the last one's was."""
    windows: list[list[httpx.Response]] = []
    last_reset = 0
    for reply in replies:
        reset = int(reply.headers[reset_header])
        if not windows or reset > last_reset:
            windows.append([])
        windows[-1].append(reply)
        last_reset = reset
    assert len(windows) <= 2, "the runs took more than a minute"
    return windows


def per_minute(limit: int, count: int) -> list[int]:
    """The statuses of `count` runs within one minute, on `limit` runs a minute."""
    return [200] * min(count, limit) + [429] * max(0, count - limit)


def twin_requests(triton: TritonServer) -> float:
    return twin_metric(triton, "cpu_twin_requests_total")


def test_requests_per_minute_trips_after_the_limit_with_retry_after(
    limited_gateway: GatewayProcess,
) -> None:
    """Seven runs on three a minute: over one minute or two, one counts four or more."""
    account = new_account(limited_gateway, requests_per_minute=3)
    replies = [run(limited_gateway, account, {"prompt": "hi", "max_tokens": 2}) for _ in range(7)]
    for window in by_window(replies, "x-ratelimit-reset-requests"):
        assert [reply.status_code for reply in window] == per_minute(3, len(window))
        remaining = [r.headers["x-ratelimit-remaining-requests"] for r in window]
        assert remaining == ["2", "1", "0", "0", "0", "0", "0"][: len(window)]
    refused = next(reply for reply in replies if reply.status_code == 429)
    assert refused.headers["x-ratelimit-limit-requests"] == "3"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert int(refused.headers["x-ratelimit-reset-requests"]) == int(refused.headers["retry-after"])
    assert refused.json()["errors"][0]["code"] == 3040
    assert "3 requests per minute" in refused.json()["errors"][0]["message"]


def test_a_refused_request_costs_the_backend_nothing(
    limited_gateway: GatewayProcess, triton: TritonServer
) -> None:
    """Three runs on one a minute: over one minute or two, at least one is refused. (The
    twins count a request as it ends: an earlier test's must have ended.)"""
    account = new_account(limited_gateway, requests_per_minute=1)
    refused = 0
    for _ in range(3):
        before = settled_twin_requests(triton)
        if run(limited_gateway, account, {"prompt": "hi", "max_tokens": 2}).status_code == 429:
            refused += 1
            assert settled_twin_requests(triton) == before
    assert refused >= 1


def settled_twin_requests(triton: TritonServer) -> float:
    """The twins' finished requests once none is in flight and the count holds still: the
    twin counts a request just after its last response, so a run the gateway has answered
    may not be counted yet."""
    assert wait_until_idle(triton, 30) == 0
    count = twin_requests(triton)
    while True:
        time.sleep(0.2)
        if (now := twin_requests(triton)) == count:
            return count
        count = now


def test_a_rate_limited_request_leaves_a_rate_limited_record(
    limited_gateway: GatewayProcess,
) -> None:
    account = new_account(limited_gateway, requests_per_minute=1)
    replies = [run(limited_gateway, account, {"prompt": "hi", "max_tokens": 2}) for _ in range(3)]
    records = wait_for_records(limited_gateway, 3, account_id=account[0])
    by_id = {record["request_id"]: record for record in records}
    statuses = [by_id[reply.headers["x-request-id"]]["status"] for reply in replies]
    assert statuses == ["ok" if r.status_code == 200 else "rate_limited" for r in replies]
    assert "rate_limited" in statuses


def test_tokens_per_minute_refuses_a_request_that_would_pass_the_budget(
    limited_gateway: GatewayProcess,
) -> None:
    account = new_account(limited_gateway, tokens_per_minute=200)
    first = run(limited_gateway, account, {"prompt": "hi", "max_tokens": 40})
    used = first.json()["result"]["usage"]["prompt_tokens"]
    # Its prompt alone (>= `used`) plus this max_tokens passes 200 only with a run before it in
    # its minute: of two such runs, one has one (the first run, or the other).
    needy = [
        run(limited_gateway, account, {"prompt": "hi", "max_tokens": 201 - 2 * used})
        for _ in range(2)
    ]
    assert first.status_code == 200
    refused = [reply for reply in needy if reply.status_code == 429]
    assert refused
    assert "200 tokens per minute" in refused[0].json()["errors"][0]["message"]
    assert refused[0].headers["x-ratelimit-limit-tokens"] == "200"


def test_a_finished_run_gives_back_the_tokens_it_reserved_but_did_not_use(
    limited_gateway: GatewayProcess,
) -> None:
    """Three runs, each reserving its prompt + 300 and stopping well before (seed 5 samples
    the end token after 31 tokens): over one minute or two, two of them share one, and the
    later finds the earlier counted at what it used."""
    account = new_account(limited_gateway, tokens_per_minute=1000)
    body = {"prompt": "hi", "max_tokens": 300, "seed": 5}
    replies = [run(limited_gateway, account, body) for _ in range(3)]
    windows = by_window(replies, "x-ratelimit-reset-tokens")
    assert max(len(window) for window in windows) >= 2
    for window in windows:
        counted = 0
        for reply in window:
            usage = reply.json()["result"]["usage"]
            reserved = usage["prompt_tokens"] + 300
            assert usage["total_tokens"] < reserved
            remaining = int(reply.headers["x-ratelimit-remaining-tokens"])
            assert remaining == 1000 - counted - reserved
            counted += usage["total_tokens"]


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
    """Nine runs on four a minute, alternating gateways: over one minute or two, one counts
    five or more, and two budgets of four would have let them all through."""
    account = new_account(first, requests_per_minute=4)
    gateways = [first, second] * 4 + [first]
    replies = [run(gateway, account, {"prompt": "hi", "max_tokens": 2}) for gateway in gateways]
    windows = by_window(replies, "x-ratelimit-reset-requests")
    assert max(len(window) for window in windows) >= 5
    for window in windows:
        assert [reply.status_code for reply in window] == per_minute(4, len(window))


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
