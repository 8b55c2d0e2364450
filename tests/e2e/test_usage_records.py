"""Every run leaves one usage record; the usage API and CLI report them."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest

from tests.accounting import (
    FP16,
    INT8,
    LONG_FP16_RUN,
    abandon_run,
    bearer,
    new_account,
    run,
    wait_for_records,
)
from tests.e2e.sse import stream_run
from tests.e2e.test_cli_and_migrations import gateway_cli
from tests.gateway_fixtures import GatewayProcess

pytestmark = [pytest.mark.triton, pytest.mark.each_database]


def test_a_streamed_run_leaves_one_ok_record_with_the_tokens_it_sent(
    gateway: GatewayProcess,
) -> None:
    account = new_account(gateway)
    with gateway.client() as client:
        events = stream_run(
            client,
            f"/client/v4/accounts/{account[0]}/ai/run/{INT8}",
            account[1],
            {"prompt": "Tell me a story", "max_tokens": 30},
        )
    usage = events.json_events[-1]["usage"]
    assert isinstance(usage, dict)
    [record] = wait_for_records(gateway, 1, account_id=account[0])
    assert record["request_id"] == events.headers["x-request-id"]
    assert record["status"] == "ok"
    assert record["model"] == INT8
    assert (record["prompt_tokens"], record["completion_tokens"]) == (
        usage["prompt_tokens"],
        usage["completion_tokens"],
    )
    assert record["completion_tokens"] == events.ids[-1]
    assert record["time_to_first_token_ms"] is not None
    assert record["duration_ms"] >= record["time_to_first_token_ms"]


def test_a_non_streamed_run_leaves_one_ok_record_matching_its_usage(
    gateway: GatewayProcess,
) -> None:
    account = new_account(gateway)
    reply = run(gateway, account, {"prompt": "Hello", "max_tokens": 12})
    [record] = wait_for_records(gateway, 1, account_id=account[0])
    usage = reply.json()["result"]["usage"]
    assert record["status"] == "ok"
    assert record["request_id"] == reply.headers["x-request-id"]
    assert record["prompt_tokens"] == usage["prompt_tokens"]
    assert record["completion_tokens"] == usage["completion_tokens"]


def test_a_non_streamed_run_whose_client_left_is_recorded_cancelled_with_no_completion_tokens(
    gateway: GatewayProcess,
) -> None:
    """Its answer was never sent, so none of it is billed."""
    account = new_account(gateway)
    abandon_run(gateway, account, LONG_FP16_RUN, FP16)
    [record] = wait_for_records(gateway, 1, account_id=account[0])
    assert (record["status"], record["completion_tokens"]) == ("client_cancelled", 0)
    assert record["prompt_tokens"] > 3000


def test_a_refused_run_leaves_a_rejected_record_with_no_tokens(gateway: GatewayProcess) -> None:
    account = new_account(gateway)
    reply = run(gateway, account, {"prompt": "x", "max_tokens": 5000})
    [record] = wait_for_records(gateway, 1, account_id=account[0])
    assert reply.status_code == 400
    assert record["request_id"] == reply.headers["x-request-id"]
    assert (record["status"], record["prompt_tokens"], record["completion_tokens"]) == (
        "rejected",
        0,
        0,
    )


def test_account_usage_api_totals_this_accounts_runs_by_model(gateway: GatewayProcess) -> None:
    account = new_account(gateway)
    other = new_account(gateway)
    replies = [
        run(gateway, account, {"prompt": "a", "max_tokens": 5}),
        run(gateway, account, {"prompt": "b", "max_tokens": 7}),
        run(gateway, account, {"prompt": "c", "max_tokens": 3}, model=FP16),
        run(gateway, other, {"prompt": "d", "max_tokens": 9}),
    ]
    wait_for_records(gateway, 3, account_id=account[0])
    with gateway.client() as client:
        report = client.get(
            f"/client/v4/accounts/{account[0]}/ai/usage",
            params={"group_by": "model"},
            headers=bearer(account[1]),
        ).json()["result"]
    rows = {row["key"]: row for row in report["rows"]}
    usages = [reply.json()["result"]["usage"] for reply in replies[:3]]
    assert set(rows) == {INT8, FP16}
    assert rows[INT8]["requests"] == 2
    assert rows[INT8]["total_tokens"] == usages[0]["total_tokens"] + usages[1]["total_tokens"]
    assert rows[FP16]["completion_tokens"] == usages[2]["completion_tokens"]


def test_account_usage_api_groups_by_day(gateway: GatewayProcess) -> None:
    account = new_account(gateway)
    run(gateway, account, {"prompt": "a", "max_tokens": 4})
    wait_for_records(gateway, 1, account_id=account[0])
    with gateway.client() as client:
        report = client.get(
            f"/client/v4/accounts/{account[0]}/ai/usage",
            params={"group_by": "day", "since": "2020-01-01"},
            headers=bearer(account[1]),
        ).json()["result"]
    assert [row["key"] for row in report["rows"]] == [datetime.now(UTC).strftime("%Y-%m-%d")]


def test_account_usage_api_refuses_a_period_that_ends_before_it_starts(
    gateway: GatewayProcess,
) -> None:
    account = new_account(gateway)
    with gateway.client() as client:
        reply = client.get(
            f"/client/v4/accounts/{account[0]}/ai/usage",
            params={"since": "2026-02-01", "until": "2026-01-01"},
            headers=bearer(account[1]),
        )
    assert reply.status_code == 400
    assert "'since' must be before 'until'" in reply.json()["errors"][0]["message"]


@pytest.mark.parametrize("path", ["/client/v4/accounts/{account}/ai/usage", "/admin/v1/usage"])
def test_a_usage_period_starting_before_year_1_in_utc_is_400(
    gateway: GatewayProcess, path: str
) -> None:
    account = new_account(gateway)
    headers = gateway.admin_headers if path.startswith("/admin") else bearer(account[1])
    with gateway.client() as client:
        reply = client.get(
            path.format(account=account[0]),
            params={"since": "0001-01-01T00:00:00+01:00"},
            headers=headers,
        )
    assert reply.status_code == 400
    assert "within years 1-9999 UTC" in reply.json()["errors"][0]["message"]


def test_admin_usage_api_totals_every_account(gateway: GatewayProcess) -> None:
    first, second = new_account(gateway), new_account(gateway)
    run(gateway, first, {"prompt": "a", "max_tokens": 4})
    run(gateway, second, {"prompt": "b", "max_tokens": 4})
    wait_for_records(gateway, 1, account_id=second[0])
    wait_for_records(gateway, 1, account_id=first[0])
    with gateway.client() as client:
        report = client.get(
            "/admin/v1/usage", params={"group_by": "account"}, headers=gateway.admin_headers
        ).json()["result"]
    keys = {row["key"] for row in report["rows"]}
    assert {first[0], second[0]} <= keys


def test_cli_usage_prints_a_table_and_csv_of_the_same_totals(gateway: GatewayProcess) -> None:
    account = new_account(gateway)
    reply = run(gateway, account, {"prompt": "a", "max_tokens": 6})
    wait_for_records(gateway, 1, account_id=account[0])
    total = reply.json()["result"]["usage"]["total_tokens"]
    arguments = ("usage", "--group-by", "model", "--account", account[0])
    table = gateway_cli(gateway, *arguments)
    as_csv = gateway_cli(gateway, *arguments, "--csv")
    as_json = gateway_cli(gateway, *arguments, "--json")
    [row] = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert table.returncode == 0, table.stderr
    assert INT8 in table.stdout
    assert f"{total:,}" in table.stdout.splitlines()[-1]
    assert (row["model"], int(row["requests"]), int(row["total_tokens"])) == (f"'{INT8}", 1, total)
    assert json.loads(as_json.stdout)[0]["total_tokens"] == total
