"""No usage record is lost: not on SIGTERM, not in a database outage, not in a crash."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.health.routes import READINESS_CACHE_SECONDS
from tests.accounting import RawStream, new_account, run, wait_for_records
from tests.gateway_fixtures import POSTGRES_ADMIN_DSN, GatewayFactory, GatewayProcess

pytestmark = pytest.mark.triton
LONG = {"prompt": "Once upon a time", "max_tokens": 400, "seed": 1}
"""Seed 1 runs to `max_tokens` (unseeded runs may sample the end token within a few)."""


async def _query(dsn: str, statement: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(dsn)
    try:
        return list(await connection.fetch(statement))
    finally:
        await connection.close()


def database_name(gateway: GatewayProcess) -> str:
    return gateway.database_url.rsplit("/", 1)[1]


def stored_records(gateway: GatewayProcess) -> dict[str, asyncpg.Record]:
    dsn = f"postgresql://postgres@127.0.0.1:5432/{database_name(gateway)}"
    rows = asyncio.run(_query(dsn, "SELECT * FROM usage_records"))
    return {row["id"]: row for row in rows}


@contextmanager
def database_outage(gateway: GatewayProcess) -> Iterator[None]:
    """The gateway's PostgreSQL database refuses connections and drops the open ones."""
    name = database_name(gateway)
    asyncio.run(_query(POSTGRES_ADMIN_DSN, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
    asyncio.run(
        _query(
            POSTGRES_ADMIN_DSN,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "  # noqa: S608 (test's own name)
            f"WHERE datname = '{name}' AND pid <> pg_backend_pid()",
        )
    )
    try:
        yield
    finally:
        asyncio.run(_query(POSTGRES_ADMIN_DSN, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))


def open_streams(gateway: GatewayProcess, account: tuple[str, str], count: int) -> list[RawStream]:
    streams = [RawStream(gateway, account, LONG) for _ in range(count)]
    for stream in streams:
        stream.read_events(1)
    return streams


def test_sigterm_lets_open_streams_finish_and_writes_every_record_before_exit(
    gateway_factory: GatewayFactory,
) -> None:
    gateway = gateway_factory("postgresql")
    account = new_account(gateway)
    streams = open_streams(gateway, account, 6)
    gateway.process.send_signal(signal.SIGTERM)
    for stream in streams:
        stream.read_to_end()
    assert gateway.process.wait(60) == 0
    records = stored_records(gateway)
    assert all(b"data: [DONE]" in stream.received for stream in streams)
    assert {s.request_id: s.last_event_id for s in streams} == {
        s.request_id: records[s.request_id]["completion_tokens"] for s in streams
    }
    assert {records[s.request_id]["status"] for s in streams} == {"ok"}


def test_sigterm_refuses_new_connections_while_streams_drain(
    gateway_factory: GatewayFactory,
) -> None:
    gateway = gateway_factory("sqlite")
    account = new_account(gateway)
    streams = open_streams(gateway, account, 1)
    gateway.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    while listening(gateway):
        assert time.monotonic() < deadline, "the gateway kept accepting connections"
        time.sleep(0.05)
    assert gateway.process.poll() is None, "the gateway exited instead of draining its stream"
    streams[0].read_to_end()
    assert b"data: [DONE]" in streams[0].received


def listening(gateway: GatewayProcess) -> bool:
    """A connection the kernel queued just before the gateway closed its listening socket is
    reset, not refused: either way the gateway took no new connection."""
    try:
        httpx.get(f"{gateway.base_url}/healthz", timeout=2)
    except (httpx.ConnectError, httpx.ReadError):
        return False
    return True


def test_records_of_a_database_outage_are_written_when_it_returns(
    gateway_factory: GatewayFactory,
) -> None:
    gateway = gateway_factory("postgresql")
    account = new_account(gateway)
    streams = open_streams(gateway, account, 4)
    with database_outage(gateway):
        for stream in streams:
            stream.read_to_end()
        deadline = time.monotonic() + 10
        while gateway_metric(gateway, "gateway_usage_flush_failures_total") == 0:
            assert time.monotonic() < deadline, "the writer never tried the database"
            time.sleep(0.1)
        assert gateway_metric(gateway, "gateway_usage_queue_depth") == 4
    records = wait_for_records(gateway, 4, account_id=account[0])
    assert {str(r["request_id"]): r["completion_tokens"] for r in records} == {
        s.request_id: s.last_event_id for s in streams
    }


def gateway_metric(gateway: GatewayProcess, name: str) -> float:
    text = httpx.get(gateway.metrics_url, timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )


def test_a_run_during_a_database_outage_fails_fast_with_503_and_recovers(
    gateway_factory: GatewayFactory,
) -> None:
    gateway = gateway_factory("postgresql")
    account = new_account(gateway)
    with database_outage(gateway):
        started = time.monotonic()
        reply = run(gateway, account, {"prompt": "hi", "max_tokens": 4})
        elapsed = time.monotonic() - started
        readiness_during = httpx.get(f"{gateway.base_url}/readyz", timeout=10).status_code
    assert reply.status_code == 503
    assert reply.json()["errors"][0]["code"] == 1001
    assert reply.headers["retry-after"]
    assert elapsed < 3
    assert readiness_during == 503
    time.sleep(READINESS_CACHE_SECONDS)  # the verdict is kept that long
    assert httpx.get(f"{gateway.base_url}/readyz", timeout=10).status_code == 200
    assert run(gateway, account, {"prompt": "hi", "max_tokens": 4}).status_code == 200


def test_a_gateway_killed_mid_stream_has_its_record_written_by_the_next_one(
    gateway_factory: GatewayFactory,
) -> None:
    first = gateway_factory("postgresql")
    account = new_account(first)
    [stream] = open_streams(first, account, 1)
    stream.read_events(5)
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(10)
    stream.leave()
    journal_dir = first.env["GATEWAY_USAGE_JOURNAL_DIR"]
    second = gateway_factory(database_url=first.database_url, GATEWAY_USAGE_JOURNAL_DIR=journal_dir)
    [record] = wait_for_records(second, 1, account_id=account[0])
    assert record["request_id"] == stream.request_id
    assert record["status"] == "interrupted"
    # A kill between the socket write and the journal store can leave out the last event:
    # billing errs by at most one event, and never above what the client received.
    assert stream.last_event_id - 1 <= record["completion_tokens"] <= stream.last_event_id
    assert record["completion_tokens"] > 0


def test_a_full_usage_backlog_refuses_new_work_with_503(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory("sqlite", GATEWAY_USAGE_MAX_PENDING="2")
    account = new_account(gateway)
    streams = open_streams(gateway, account, 2)
    refused = run(gateway, account, {"prompt": "hi", "max_tokens": 4})
    for stream in streams:
        stream.read_to_end()
    wait_for_records(gateway, 2, account_id=account[0])
    assert refused.status_code == 503
    assert refused.headers["retry-after"]
    assert "usage" in refused.json()["errors"][0]["message"].lower()
    assert run(gateway, account, {"prompt": "hi", "max_tokens": 4}).status_code == 200
