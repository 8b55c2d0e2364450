"""A real gateway whose limits live in a redis-server of the test's own, killed, stalled and
restarted under it: fast 503s that say why, streams that finish and are billed, recovery
without a restart, and (when the operator allows it) in-process limits meanwhile."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.health.routes import READINESS_CACHE_SECONDS
from gateway.tokens import revocations
from local_runtime.triton_server import TritonServer
from tests.accounting import RawStream, new_account, run, run_url, wait_for_records
from tests.e2e.test_limits import by_window, per_minute
from tests.gateway_fixtures import DatabaseFactory, GatewayFactory, GatewayProcess
from tests.redis_server import RedisServer

pytestmark = pytest.mark.triton
SHORT_RUN = {"prompt": "hi", "max_tokens": 2}


@pytest.fixture(scope="module")
def shared_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.kill()


@pytest.fixture
def redis(shared_redis: RedisServer) -> RedisServer:
    """The module's Redis, running when the test starts (a test before may have killed it)."""
    shared_redis.kill()
    shared_redis.start()
    return shared_redis


def gateways_on(
    redis: RedisServer,
    database_factory: DatabaseFactory,
    triton: TritonServer,
    repository: Path,
    directory: Path,
    **env: str,
) -> Iterator[GatewayProcess]:
    factory = GatewayFactory(database_factory, triton, repository, directory)
    yield factory("sqlite", REDIS_URL=redis.url, **env)
    for process in factory.started:
        process.stop()


@pytest.fixture(scope="module")
def gateway_on_redis(
    database_factory: DatabaseFactory,
    triton: TritonServer,
    cpu_model_repository: Path,
    tmp_path_factory: pytest.TempPathFactory,
    shared_redis: RedisServer,
) -> Iterator[GatewayProcess]:
    """Limits in Redis, no fallback (the default): a budget is a budget."""
    yield from gateways_on(
        shared_redis, database_factory, triton, cpu_model_repository,
        tmp_path_factory.mktemp("strict"),
    )  # fmt: skip


@pytest.fixture(scope="module")
def gateway_with_fallback(
    database_factory: DatabaseFactory,
    triton: TritonServer,
    cpu_model_repository: Path,
    tmp_path_factory: pytest.TempPathFactory,
    shared_redis: RedisServer,
) -> Iterator[GatewayProcess]:
    yield from gateways_on(
        shared_redis, database_factory, triton, cpu_model_repository,
        tmp_path_factory.mktemp("fallback"), GATEWAY_LIMIT_LOCAL_FALLBACK="true",
    )  # fmt: skip


def timed_run(
    gateway: GatewayProcess, account: tuple[str, str], body: dict[str, object] = SHORT_RUN
) -> tuple[httpx.Response, float]:
    account_id, token = account
    started = time.monotonic()
    with httpx.Client(base_url=gateway.base_url, timeout=10) as client:
        reply = client.post(
            run_url(account_id), json=body, headers={"Authorization": f"Bearer {token}"}
        )
    return reply, time.monotonic() - started


def readyz(gateway: GatewayProcess) -> httpx.Response:
    return httpx.get(f"{gateway.base_url}/readyz", timeout=10)


def store_unavailable(gateway: GatewayProcess, outcome: str) -> float:
    text = httpx.get(gateway.metrics_url, timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "gateway_limit_store_unavailable_total"
        and sample.labels.get("outcome") == outcome
    )


def assert_limits_unavailable(reply: httpx.Response) -> None:
    assert reply.status_code == 503, reply.text
    assert reply.headers["retry-after"] == "2"
    body = reply.json()
    assert body["success"] is False
    assert body["errors"][0]["code"] == 1002
    assert "retry" in body["errors"][0]["message"]


def test_a_run_while_redis_is_killed_is_a_503_with_retry_after_within_2_seconds(
    gateway_on_redis: GatewayProcess, redis: RedisServer
) -> None:
    account = new_account(gateway_on_redis)
    assert run(gateway_on_redis, account, SHORT_RUN).status_code == 200
    redis.kill()
    reply, took = timed_run(gateway_on_redis, account)
    assert_limits_unavailable(reply)
    assert took < 2
    assert reply.headers["x-request-id"]


def test_a_run_while_redis_stalls_is_a_503_within_2_seconds(
    gateway_on_redis: GatewayProcess, redis: RedisServer
) -> None:
    account = new_account(gateway_on_redis)
    assert run(gateway_on_redis, account, SHORT_RUN).status_code == 200
    with redis.stalled():
        reply, took = timed_run(gateway_on_redis, account)
    assert_limits_unavailable(reply)
    assert took < 2


def test_readyz_names_redis_while_it_is_down(
    gateway_on_redis: GatewayProcess, redis: RedisServer
) -> None:
    ready = readyz(gateway_on_redis)
    redis.kill()
    time.sleep(READINESS_CACHE_SECONDS)  # the verdict is kept that long
    down = readyz(gateway_on_redis)
    assert ready.status_code == 200
    assert ready.json()["checks"]["redis"] is True
    assert down.status_code == 503
    assert down.json()["errors"][0]["message"] == "Not ready: redis"


def test_a_stream_in_flight_when_redis_dies_finishes_and_is_billed(
    gateway_on_redis: GatewayProcess, redis: RedisServer
) -> None:
    account = new_account(gateway_on_redis, concurrent_streams=4, tokens_per_minute=100_000)
    stream = RawStream(  # seed 2 runs to max_tokens: the stream outlives the kill
        gateway_on_redis, account, {"prompt": "story", "max_tokens": 300, "seed": 2}
    )
    stream.read_events(1)
    redis.kill()
    stream.read_to_end()
    assert stream.events[-1][0] == "[DONE]"
    usage = json.loads(stream.events[-2][0])["usage"]
    assert usage["completion_tokens"] == 300
    (record,) = wait_for_records(gateway_on_redis, 1, account_id=account[0])
    assert record["request_id"] == stream.request_id
    assert record["status"] == "ok"
    assert record["completion_tokens"] == 300
    assert store_unavailable(gateway_on_redis, "settlement_lost") >= 1


def test_runs_succeed_again_when_redis_returns_without_restarting_the_gateway(
    gateway_on_redis: GatewayProcess, redis: RedisServer
) -> None:
    account = new_account(gateway_on_redis)
    redis.kill()
    assert_limits_unavailable(timed_run(gateway_on_redis, account)[0])
    redis.start()
    assert run(gateway_on_redis, account, SHORT_RUN).status_code == 200
    assert readyz(gateway_on_redis).status_code == 200
    assert gateway_on_redis.process.poll() is None


def test_a_run_is_one_round_trip_per_admission_and_one_per_settlement(
    gateway_on_redis: GatewayProcess, redis: RedisServer
) -> None:
    """Every limit on: requests, tokens per minute, a stream slot, the monthly quota. The
    request and the generation are admitted separately (bad input still counts against the
    requests per minute), so a run is three scripts: admit request, admit generation, settle."""
    account = new_account(
        gateway_on_redis,
        requests_per_minute=100,
        tokens_per_minute=100_000,
        concurrent_streams=4,
        monthly_tokens=1_000_000,
    )
    assert run(gateway_on_redis, account, SHORT_RUN).status_code == 200  # loads the scripts
    wait_until_subscribed(redis)
    with redis.round_trips() as sent:
        assert run(gateway_on_redis, account, SHORT_RUN).status_code == 200
    assert sent == ["evalsha", "evalsha", "evalsha"]


def wait_until_subscribed(redis: RedisServer) -> None:
    """Until the gateway's revocation subscriber is back on the restarted Redis: its HELLO
    and SUBSCRIBE are not a run's round trips, and come late on a busy machine."""
    deadline = time.monotonic() + 10
    while redis.client().pubsub_numsub(revocations.CHANNEL)[0][1] == 0:
        assert time.monotonic() < deadline, "the gateway did not subscribe again"
        time.sleep(0.05)


def test_with_the_local_fallback_runs_succeed_while_redis_is_down(
    gateway_with_fallback: GatewayProcess, redis: RedisServer
) -> None:
    account = new_account(gateway_with_fallback)
    redis.kill()
    reply, took = timed_run(gateway_with_fallback, account)
    assert reply.status_code == 200, reply.text
    assert took < 2
    assert store_unavailable(gateway_with_fallback, "fallback") >= 1


def test_with_the_local_fallback_the_replica_enforces_limits_on_its_own(
    gateway_with_fallback: GatewayProcess, redis: RedisServer
) -> None:
    """Five runs on two a minute: over one minute or two, one counts three or more."""
    account = new_account(gateway_with_fallback, requests_per_minute=2)
    redis.kill()
    replies = [timed_run(gateway_with_fallback, account)[0] for _ in range(5)]
    windows = by_window(replies, "x-ratelimit-reset-requests")
    assert max(len(window) for window in windows) >= 3
    for window in windows:
        assert [reply.status_code for reply in window] == per_minute(2, len(window))


def test_with_the_local_fallback_readyz_is_degraded_not_unready(
    gateway_with_fallback: GatewayProcess, redis: RedisServer
) -> None:
    redis.kill()
    reply = readyz(gateway_with_fallback)
    assert reply.status_code == 200
    assert reply.json()["status"] == "degraded"
    assert reply.json()["checks"]["redis"] is False
