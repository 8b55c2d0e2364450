"""A client's own request id (`X-Request-Id`) kept with its usage record: the meter writes it
(through the journal, after a crash too), the records API shows it and filters by it, and the
migration adds and removes its column on both databases.

The records here are written through `UsageMeter.open(..., client_request_id=...)` directly;
that a run's header reaches the meter is the run pipeline's test.
"""

from __future__ import annotations

import asyncio
import struct
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from gateway.accounts.models import Account
from gateway.db.engine import create_engine
from gateway.db.models import Base
from gateway.metrics.registry import GatewayMetrics
from gateway.usage.client_request_id import is_client_request_id
from gateway.usage.meter import Meter
from gateway.usage.models import UsageRecord
from gateway.usage.status import RunStatus
from tests.accounting import INT8, usage_records
from tests.gateway_fixtures import DatabaseFactory, GatewayProcess, migrate

pytestmark = pytest.mark.each_database

LONGEST = "A-z.0_9" * 9 + "x"
"""64 characters, every kind the id may hold."""


def test_a_client_request_id_is_1_to_64_ascii_letters_digits_dots_underscores_or_dashes() -> None:
    assert len(LONGEST) == 64
    assert all(is_client_request_id(value) for value in (LONGEST, "a", "req-1.2_3"))
    for bad in (LONGEST + "x", "", "a b", "a/b", "id\n", "\nid", "é", "a\0"):
        assert not is_client_request_id(bad), repr(bad)


async def add_account(engine: AsyncEngine) -> str:
    account = Account(name=f"acct-{uuid.uuid4().hex[:12]}")
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        session.add(account)
        await session.commit()
    return account.id


async def stored(engine: AsyncEngine, account_id: str) -> dict[str, str | None]:
    """Status → client request id of the account's records."""
    async with async_sessionmaker(engine)() as session:
        rows = await session.scalars(
            select(UsageRecord).where(UsageRecord.account_id == account_id)
        )
        return {row.status: row.client_request_id for row in rows}


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, database_factory: DatabaseFactory) -> str:
    return database_factory(request.param)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


def new_meter(engine: AsyncEngine, journal_dir: Path) -> Meter:
    return Meter(async_sessionmaker(engine), journal_dir, 8, 60.0, 8, GatewayMetrics())


async def test_the_meter_writes_the_client_request_id_of_a_run_and_of_a_refusal(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    account_id = await add_account(engine)
    meter = new_meter(engine, tmp_path)
    try:
        meter.open("1" * 32, account_id, "t" * 32, INT8, 5, client_request_id=LONGEST).finish(
            RunStatus.OK
        )
        meter.record_refusal(
            "2" * 32, account_id, "t" * 32, INT8, RunStatus.REJECTED, client_request_id="refused-1"
        )
        meter.open("3" * 32, account_id, "t" * 32, INT8, 5).finish(RunStatus.CLIENT_CANCELLED)
        meter.open("4" * 32, account_id, "t" * 32, INT8, 5, client_request_id="x" * 65).finish(
            RunStatus.BACKEND_ERROR
        )
        assert await meter.flush()
    finally:
        meter.journal.shutdown(keep=False)
    assert await stored(engine, account_id) == {
        "ok": LONGEST,
        "rejected": "refused-1",
        "client_cancelled": None,
        "backend_error": None,  # not an id the column holds: the record is kept without it
    }


async def test_a_dead_processes_open_record_is_written_with_its_client_request_id(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    account_id = await add_account(engine)
    dead = new_meter(engine, tmp_path)
    dead.open("5" * 32, account_id, "t" * 32, INT8, 5, client_request_id=LONGEST).tokens_sent(2)
    dead.journal.shutdown(keep=True)  # as a crash leaves it: the record open, the lock free
    assert await new_meter(engine, tmp_path).reconcile() == 1
    assert await stored(engine, account_id) == {"interrupted": LONGEST}


async def test_a_previous_layouts_journal_is_written_without_client_request_ids(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    account_id = await add_account(engine)
    closed = struct.pack(
        "<BB2xII4xddd32s32s32s100s",
        2,
        0,
        5,
        3,
        1.25,
        1.0,
        2.0,
        b"6" * 32,
        account_id.encode(),
        b"t" * 32,
        INT8.encode(),
    )
    (tmp_path / "old.usage").write_bytes(closed.ljust(256, b"\0"))
    assert await new_meter(engine, tmp_path).reconcile() == 1
    assert await stored(engine, account_id) == {"ok": None}
    assert await new_meter(engine, tmp_path).reconcile() == 0  # and the file is gone


async def column_and_indexes(url: str) -> tuple[set[str], set[str]]:
    def read(connection: Connection) -> tuple[set[str], set[str]]:
        schema = inspect(connection)
        columns = {column["name"] for column in schema.get_columns("usage_records")}
        return columns, {str(index["name"]) for index in schema.get_indexes("usage_records")}

    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(read)
    finally:
        await engine.dispose()


async def schema_drift(url: str) -> list[Any]:
    """What the models have that the migrated `usage_records` table does not, or the reverse."""

    def usage_records_only(item: Any, name: str | None, kind: str, *_: object) -> bool:
        return (name if kind == "table" else item.table.name) == "usage_records"

    def compare(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection, opts={"include_object": usage_records_only}
        )
        return list(compare_metadata(context, Base.metadata))

    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(compare)
    finally:
        await engine.dispose()


async def execute(url: str, statement: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            result = await connection.execute(text(statement))
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_migration_adds_the_column_and_its_index_and_removes_them_keeping_the_records(
    backend: str, database_factory: DatabaseFactory
) -> None:
    url = database_factory(backend)
    index = "ix_usage_records_account_id_client_request_id"
    assert asyncio.run(schema_drift(url)) == []
    columns, indexes = asyncio.run(column_and_indexes(url))
    assert "client_request_id" in columns
    assert index in indexes
    asyncio.run(
        execute(
            url, "INSERT INTO accounts (id, name, created_at) VALUES ('a', 'a', CURRENT_TIMESTAMP)"
        )
    )
    asyncio.run(
        execute(
            url,
            "INSERT INTO usage_records (id, account_id, token_id, model, status, prompt_tokens,"
            " completion_tokens, duration_ms, started_at, client_request_id)"
            " VALUES ('r', 'a', 't', 'm', 'ok', 1, 2, 3.0, CURRENT_TIMESTAMP, 'c-1')",
        )
    )
    migrate(url, "--downgrade", "0002")
    columns, indexes = asyncio.run(column_and_indexes(url))
    assert "client_request_id" not in columns
    assert index not in indexes
    assert "ix_usage_records_account_id_started_at" in indexes
    drift = asyncio.run(schema_drift(url))
    assert sorted(str(change[0]) for change in drift) == ["add_column", "add_index"]
    assert asyncio.run(execute(url, "SELECT id, completion_tokens FROM usage_records")) == [
        ("r", 2)
    ]
    migrate(url)
    assert asyncio.run(execute(url, "SELECT id, client_request_id FROM usage_records")) == [
        ("r", None)
    ]
    assert asyncio.run(schema_drift(url)) == []


async def write_records(
    gateway: GatewayProcess, journal_dir: Path, account_id: str, client_ids: list[str | None]
) -> list[str]:
    """One finished record per client id, written by a meter of the test's own: their ids."""
    engine = create_engine(gateway.database_url)
    meter = new_meter(engine, journal_dir)
    ids = [uuid.uuid4().hex for _ in client_ids]
    try:
        for request_id, client_request_id in zip(ids, client_ids, strict=True):
            meter.open(
                request_id, account_id, "t" * 32, INT8, 5, client_request_id=client_request_id
            ).finish(RunStatus.OK)
            await asyncio.sleep(0.002)  # distinct start times: a defined newest-first order
        assert await meter.flush()
    finally:
        meter.journal.shutdown(keep=False)
        await engine.dispose()
    return ids


@pytest.mark.triton
def test_the_records_api_shows_the_client_request_id_and_finds_the_records_by_it(
    gateway: GatewayProcess, tmp_path: Path
) -> None:
    account_id, other = gateway.create_account(), gateway.create_account()
    ids = asyncio.run(
        write_records(gateway, tmp_path, account_id, [LONGEST, "retry-me", None, LONGEST])
    )
    [other_id] = asyncio.run(write_records(gateway, tmp_path, other, [LONGEST]))

    shown = {
        record["request_id"]: record for record in usage_records(gateway, account_id=account_id)
    }
    mine = usage_records(gateway, account_id=account_id, client_request_id=LONGEST)
    everyones = usage_records(gateway, client_request_id=LONGEST)
    with gateway.client() as client:
        paged = client.get(
            "/admin/v1/usage/records",
            params={"account_id": account_id, "client_request_id": LONGEST, "per_page": "1"},
            headers=gateway.admin_headers,
        ).json()

    assert [shown[i]["client_request_id"] for i in ids] == [LONGEST, "retry-me", None, LONGEST]
    assert [record["request_id"] for record in mine] == [ids[3], ids[0]]
    assert {str(record["request_id"]) for record in everyones} >= {ids[0], ids[3], other_id}
    assert all(record["client_request_id"] == LONGEST for record in everyones)
    assert [record["request_id"] for record in paged["result"]] == [ids[3]]
    assert (paged["result_info"]["total_count"], paged["result_info"]["total_pages"]) == (2, 2)
    assert usage_records(gateway, account_id=account_id, client_request_id="nobody") == []


@pytest.mark.triton
@pytest.mark.parametrize("value", [LONGEST + "x", "", "a b", "id\n", "é", "a;b", "a\0"])
def test_the_records_api_refuses_a_client_request_id_that_no_record_can_have(
    gateway: GatewayProcess, value: str
) -> None:
    with gateway.client() as client:
        reply = client.get(
            "/admin/v1/usage/records",
            params={"client_request_id": value},
            headers=gateway.admin_headers,
        )
    assert reply.status_code == 400, reply.text
    body = reply.json()
    assert body["success"] is False
    [error] = body["errors"]
    assert error["code"] == 5006
    assert "'client_request_id'" in error["message"]
