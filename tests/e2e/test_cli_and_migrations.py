"""`gateway` CLI administration and Alembic migrations, on both databases."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from tests.e2e.test_admin_api import verify
from tests.gateway_fixtures import DatabaseFactory, GatewayProcess, migrate

pytestmark = pytest.mark.each_database


def gateway_cli(gateway: GatewayProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        env={**os.environ, **gateway.env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_creates_an_account_and_a_token_that_the_api_accepts(gateway: GatewayProcess) -> None:
    account = json.loads(gateway_cli(gateway, "accounts", "create", "from-cli", "--json").stdout)
    token = json.loads(
        gateway_cli(gateway, "tokens", "create", account["id"], "--name", "ci", "--json").stdout
    )
    assert verify(gateway, account["id"], token["token"]).status_code == 200


def test_cli_lists_tokens_without_secrets_and_revokes(gateway: GatewayProcess) -> None:
    account_id = gateway.create_account()
    created = gateway.create_token(account_id)
    listing = gateway_cli(gateway, "tokens", "list", account_id)
    revoked = gateway_cli(gateway, "tokens", "revoke", account_id, str(created["id"]))
    assert str(created["id"]) in listing.stdout
    assert str(created["token"]) not in listing.stdout
    assert revoked.returncode == 0
    assert verify(gateway, account_id, str(created["token"])).status_code == 401


def test_cli_reports_a_duplicate_account_as_an_error(gateway: GatewayProcess) -> None:
    gateway_cli(gateway, "accounts", "create", "dup-cli")
    again = gateway_cli(gateway, "accounts", "create", "dup-cli")
    assert again.returncode == 1
    assert "already exists" in again.stderr


async def table_names(url: str) -> set[str]:
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        names = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    await engine.dispose()
    return names


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migrations_upgrade_downgrade_and_upgrade_again(
    backend: str, database_factory: DatabaseFactory
) -> None:
    url = database_factory(backend, migrated=False)
    migrate(url)
    assert {"accounts", "api_tokens"} <= asyncio.run(table_names(url))
    migrate(url, "--downgrade", "base")
    assert not {"accounts", "api_tokens"} & asyncio.run(table_names(url))
    migrate(url)
    assert {"accounts", "api_tokens"} <= asyncio.run(table_names(url))
