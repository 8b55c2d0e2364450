"""The meter's writer against a real database: a record it refuses stops no other record."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from gateway.db.engine import create_engine
from gateway.metrics.registry import GatewayMetrics
from gateway.usage.meter import Meter
from tests.accounting import INT8, wait_for_records
from tests.gateway_fixtures import GatewayProcess

pytestmark = [pytest.mark.triton, pytest.mark.each_database]


async def flush_one_run_per_account(
    database_url: str, journal_dir: Path, accounts: list[str], metrics: GatewayMetrics
) -> tuple[bool, int]:
    """One finished run per account, flushed as one batch: (flushed, journal slots in use)."""
    engine = create_engine(database_url)
    meter = Meter(async_sessionmaker(engine), journal_dir, 16, 60.0, 16, metrics)
    try:
        for account_id in accounts:
            run = meter.open(uuid.uuid4().hex, account_id, "t" * 32, INT8, 5)
            run.tokens_sent(3)
            run.finish("ok")
        return await meter.flush(), meter.journal.in_use
    finally:
        meter.journal.shutdown(keep=False)
        await engine.dispose()


def test_a_record_the_database_refuses_is_dropped_and_the_rest_of_its_batch_written(
    gateway: GatewayProcess, tmp_path: Path
) -> None:
    """An account deleted mid-run: its record breaks a foreign key; its neighbours do not."""
    kept = [gateway.create_account(), gateway.create_account()]
    deleted = uuid.uuid4().hex
    metrics = GatewayMetrics()
    flushed, in_use = asyncio.run(
        flush_one_run_per_account(
            gateway.database_url, tmp_path, [kept[0], deleted, kept[1]], metrics
        )
    )
    assert (flushed, in_use) == (True, 0)
    assert metrics.usage_records_dropped._value.get() == 1
    for account_id in kept:
        [record] = wait_for_records(gateway, 1, account_id=account_id)
        assert (record["status"], record["completion_tokens"]) == ("ok", 3)
