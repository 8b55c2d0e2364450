"""A client's `X-Request-Id` is echoed and stored beside its usage record; the run's own id is
always the gateway's, so a replayed or another tenant's id changes nothing but the echo."""

from __future__ import annotations

import json

import pytest

from tests.accounting import FP16, INT8, bearer, new_account, run_url, wait_for_records
from tests.gateway_fixtures import GatewayProcess

pytestmark = pytest.mark.triton

CLIENT_ID = "order-42.retry_1"


def _run(
    gateway: GatewayProcess, account: tuple[str, str], client_id: str | None, **body: object
) -> tuple[int, dict[str, str], dict[str, object]]:
    headers = bearer(account[1])
    if client_id is not None:
        headers["X-Request-Id"] = client_id
    with gateway.client() as client:
        reply = client.post(
            run_url(account[0], INT8),
            json={"prompt": "Hi", "max_tokens": 4, **body},
            headers=headers,
        )
    return reply.status_code, dict(reply.headers), reply.json()


def test_a_clients_request_id_is_echoed_and_stored_beside_the_runs_own(
    gateway: GatewayProcess,
) -> None:
    account = new_account(gateway)
    status, headers, _ = _run(gateway, account, CLIENT_ID)
    assert status == 200
    assert headers["x-request-id"] == CLIENT_ID
    [record] = wait_for_records(gateway, 1, account_id=account[0])
    assert record["client_request_id"] == CLIENT_ID
    assert record["request_id"] == headers["x-run-id"] != CLIENT_ID


def test_without_a_client_id_the_request_id_is_the_runs(gateway: GatewayProcess) -> None:
    account = new_account(gateway)
    _, headers, _ = _run(gateway, account, None)
    assert headers["x-request-id"] == headers["x-run-id"]
    [record] = wait_for_records(gateway, 1, account_id=account[0])
    assert record["client_request_id"] is None


def test_a_replayed_client_id_leaves_a_record_per_run(gateway: GatewayProcess) -> None:
    account = new_account(gateway)
    first = _run(gateway, account, CLIENT_ID)[1]["x-run-id"]
    second = _run(gateway, account, CLIENT_ID)[1]["x-run-id"]
    records = wait_for_records(gateway, 2, client_request_id=CLIENT_ID, account_id=account[0])
    assert first != second
    assert sorted(str(record["request_id"]) for record in records) == sorted([first, second])
    assert {record["status"] for record in records} == {"ok"}


def test_another_tenants_run_id_as_a_client_id_touches_nothing_of_theirs(
    gateway: GatewayProcess,
) -> None:
    """Sent while the other tenant's generation streams: that stream ends as it would have,
    and its record keeps its id, account and status."""
    owner, intruder = new_account(gateway), new_account(gateway)
    url = run_url(owner[0], FP16)
    body = {"prompt": "Tell me a long story", "max_tokens": 60, "stream": True}
    with (
        gateway.client() as client,
        client.stream("POST", url, json=body, headers=bearer(owner[1])) as stream,
    ):
        run_id = stream.headers["x-run-id"]
        lines = stream.iter_lines()
        assert next(line for line in lines if line.startswith("data:"))
        status, headers, _ = _run(gateway, intruder, run_id)
        rest = [line for line in lines if line.startswith("data:")]
    assert (status, headers["x-request-id"]) == (200, run_id)
    assert headers["x-run-id"] != run_id
    assert rest[-1] == "data: [DONE]"
    usage = json.loads(rest[-2].removeprefix("data: "))["usage"]
    [record] = wait_for_records(gateway, 1, account_id=owner[0])
    assert (record["request_id"], record["status"]) == (run_id, "ok")
    assert record["completion_tokens"] == usage["completion_tokens"]
    [theirs] = wait_for_records(gateway, 1, account_id=intruder[0])
    assert (theirs["client_request_id"], theirs["request_id"]) == (run_id, headers["x-run-id"])


@pytest.mark.parametrize(
    "client_id", ["", "x" * 65, "has space", "semi;colon", "ünïcode"], ids=repr
)
def test_an_unusable_client_id_is_refused_naming_the_header(
    gateway: GatewayProcess, client_id: str
) -> None:
    account = new_account(gateway)
    with gateway.client() as client:
        reply = client.post(
            run_url(account[0], INT8),
            json={"prompt": "Hi", "max_tokens": 4},
            headers={**bearer(account[1]), "X-Request-Id": client_id.encode()},
        )
    assert reply.status_code == 400
    assert "X-Request-Id must be 1 to 64 characters" in reply.json()["errors"][0]["message"]
    assert "x-request-id" not in reply.headers


def test_openai_runs_echo_the_client_id_too(gateway: GatewayProcess) -> None:
    account = new_account(gateway)
    with gateway.client() as client:
        reply = client.post(
            "/v1/chat/completions",
            json={"model": INT8, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3},
            headers={**bearer(account[1]), "X-Request-Id": CLIENT_ID},
        )
    assert reply.status_code == 200
    assert reply.headers["x-request-id"] == CLIENT_ID
    assert reply.json()["id"] == f"chatcmpl-{reply.headers['x-run-id']}"


def test_an_error_before_any_run_echoes_the_client_id(gateway: GatewayProcess) -> None:
    with gateway.client() as client:
        reply = client.post(
            "/v1/chat/completions",
            json={"model": INT8, "messages": []},
            headers={"Authorization": "Bearer gwk_wrong", "X-Request-Id": CLIENT_ID},
        )
    assert reply.status_code == 401
    assert reply.headers["x-request-id"] == CLIENT_ID
