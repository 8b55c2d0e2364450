"""Hostile input is refused cleanly: a 4xx in the envelope, never a 5xx or a hang, nothing
half-written, and the gateway goes on serving (checked after every test)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator

import httpx
import pytest

from tests.accounting import INT8, bearer, new_account, run, run_url, wait_for_records
from tests.cloudflare_lists import every_item
from tests.gateway_fixtures import GatewayFactory, GatewayProcess
from tests.raw_http import raw_request

pytestmark = pytest.mark.triton

SQL = "x'); DROP TABLE accounts; --"
TIMEOUT = 10
"""Seconds: every hostile request is answered well within this, or the test fails."""
BODY_LIMIT = 256 * 1024
"""The session gateway's GATEWAY_MAX_BODY_BYTES."""


@pytest.fixture(autouse=True)
def the_gateway_keeps_serving(gateway: GatewayProcess, account: tuple[str, str]) -> Iterator[None]:
    """After each test, the gateway still runs a model."""
    yield
    reply = run(gateway, account, {"prompt": "Still there?", "max_tokens": 1})
    assert reply.status_code == 200, f"after the abuse: {reply.status_code} {reply.text[:300]}"


def client(gateway: GatewayProcess) -> httpx.Client:
    return httpx.Client(base_url=gateway.base_url, timeout=TIMEOUT)


def assert_refused(reply: httpx.Response, status: int, code: int | None = None) -> str:
    """The reply is `status` in the envelope (with `code`, if given); its message."""
    assert reply.status_code == status, reply.text[:300]
    body = reply.json()
    assert (body["result"], body["success"], body["messages"]) == (None, False, []), body
    [error] = body["errors"]
    assert type(error["code"]) is int, body
    assert isinstance(error["message"], str), body
    assert error["message"], body
    if code is not None:
        assert error["code"] == code, body
    return str(error["message"])


def account_names(gateway: GatewayProcess) -> set[str]:
    with client(gateway) as http:
        return {
            account["name"]
            for account in every_item(http, "/admin/v1/accounts", gateway.admin_headers)
        }


def backend_of(gateway: GatewayProcess) -> str:
    return gateway.database_url.partition("+")[0]


# Oversized bodies


@pytest.mark.parametrize("endpoint", ["run", "new account", "limits"])
def test_a_body_over_the_limit_is_413_in_the_envelope(
    gateway: GatewayProcess, account: tuple[str, str], endpoint: str
) -> None:
    account_id, token = account
    method, path, headers = {
        "run": ("POST", run_url(account_id), bearer(token)),
        "new account": ("POST", "/admin/v1/accounts", gateway.admin_headers),
        "limits": ("PUT", f"/admin/v1/accounts/{account_id}/limits", gateway.admin_headers),
    }[endpoint]
    body = b'{"name": "' + b"a" * (BODY_LIMIT + 1) + b'"}'
    with client(gateway) as http:
        reply = http.request(
            method, path, content=body, headers={**headers, "content-type": "application/json"}
        )
    assert_refused(reply, 413, 3006)


def test_a_chunked_body_over_the_limit_is_413_in_the_envelope(
    gateway: GatewayProcess, account: tuple[str, str]
) -> None:
    def chunks() -> Iterable[bytes]:
        yield b'{"prompt": "'
        for _ in range(BODY_LIMIT // 65536 + 1):
            yield b"a" * 65536
        yield b'"}'

    with client(gateway) as http:
        reply = http.post(
            run_url(account[0]),
            content=chunks(),
            headers={**bearer(account[1]), "content-type": "application/json"},
        )
    assert "content-length" not in reply.request.headers
    assert_refused(reply, 413, 3006)


def test_a_declared_length_over_the_limit_is_413_before_the_body_arrives(
    gateway: GatewayProcess, account: tuple[str, str]
) -> None:
    reply = raw_request(  # a terabyte announced, and no body sent
        gateway,
        "POST",
        run_url(account[0]),
        {**bearer(account[1]), "Content-Type": "application/json", "Content-Length": str(10**12)},
    )
    assert_refused(reply, 413, 3006)


# Deeply nested JSON


@pytest.mark.parametrize(
    ("endpoint", "body"),
    [
        ("run", b'{"prompt": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"),
        ("run", b'{"prompt": ' + b'{"a": ' * 20_000 + b"1" + b"}" * 20_000 + b"}"),
        ("new account", b'{"name": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"),
    ],
    ids=["arrays in a run", "objects in a run", "arrays in a new account"],
)
def test_deeply_nested_json_is_400_in_the_envelope(
    gateway: GatewayProcess, account: tuple[str, str], endpoint: str, body: bytes
) -> None:
    path, headers = {
        "run": (run_url(account[0]), bearer(account[1])),
        "new account": ("/admin/v1/accounts", gateway.admin_headers),
    }[endpoint]
    with client(gateway) as http:
        reply = http.post(
            path, content=body, headers={**headers, "content-type": "application/json"}
        )
    assert "nested too deeply" in assert_refused(reply, 400, 5006)


# Invalid UTF-8


@pytest.mark.parametrize("endpoint", ["run", "new account", "new token"])
def test_a_body_that_is_not_utf8_is_400_in_the_envelope(
    gateway: GatewayProcess, account: tuple[str, str], endpoint: str
) -> None:
    account_id, token = account
    path, headers, body = {
        "run": (run_url(account_id), bearer(token), b'{"prompt": "\xff\xfe"}'),
        "new account": ("/admin/v1/accounts", gateway.admin_headers, b'{"name": "a\xc3"}'),
        "new token": (
            f"/admin/v1/accounts/{account_id}/tokens",
            gateway.admin_headers,
            b'{"name": "\xed\xa0\x80"}',  # an encoded surrogate: not UTF-8
        ),
    }[endpoint]
    with client(gateway) as http:
        reply = http.post(
            path, content=body, headers={**headers, "content-type": "application/json"}
        )
    assert_refused(reply, 400, 3003)


@pytest.mark.parametrize("endpoint", ["run", "new account", "new token"])
def test_an_escaped_lone_surrogate_is_400_in_the_envelope(
    gateway: GatewayProcess, account: tuple[str, str], endpoint: str
) -> None:
    account_id, token = account
    path, headers, body = {
        "run": (run_url(account_id), bearer(token), b'{"prompt": "a\\ud800"}'),
        "new account": ("/admin/v1/accounts", gateway.admin_headers, b'{"name": "a\\udfff"}'),
        "new token": (
            f"/admin/v1/accounts/{account_id}/tokens",
            gateway.admin_headers,
            b'{"name": "\\ud800"}',
        ),
    }[endpoint]
    with client(gateway) as http:
        reply = http.post(
            path, content=body, headers={**headers, "content-type": "application/json"}
        )
    assert_refused(reply, 400)


def test_invalid_utf8_in_the_model_is_a_404_in_the_envelope(
    gateway: GatewayProcess, account: tuple[str, str]
) -> None:
    reply = raw_request(
        gateway,
        "POST",
        run_url(account[0], "%ff%fe%ed%a0%80"),
        {**bearer(account[1]), "Content-Type": "application/json"},
        b'{"prompt": "a"}',
    )
    assert_refused(reply, 404, 3042)


def test_invalid_utf8_in_a_query_parameter_is_400_in_the_envelope(
    gateway: GatewayProcess, account: tuple[str, str]
) -> None:
    reply = raw_request(
        gateway, "GET", f"/client/v4/accounts/{account[0]}/ai/usage?since=%ff", bearer(account[1])
    )
    assert_refused(reply, 400, 5006)


# Header injection


@pytest.mark.parametrize("crlf", ["%0d%0a", "%0D%0A", "%0a", "%0d", "%E5%98%8A%E5%98%8D"])
def test_an_encoded_crlf_in_the_model_is_a_404_without_the_injected_header(
    gateway: GatewayProcess, account: tuple[str, str], crlf: str
) -> None:
    model = f"x{crlf}Set-Cookie:%20injected=1{crlf}X-Injected:%20yes"
    with client(gateway) as http:
        reply = http.post(
            run_url(account[0], model), json={"prompt": "a"}, headers=bearer(account[1])
        )
    assert_refused(reply, 404, 3042)
    assert "set-cookie" not in reply.headers
    assert "x-injected" not in reply.headers


def test_a_raw_crlf_in_the_request_line_injects_no_header(
    gateway: GatewayProcess, account: tuple[str, str]
) -> None:
    """The server ends the request line at the CR/LF: what follows is a request header, and
    the model is `x`."""
    reply = raw_request(
        gateway,
        "POST",
        run_url(account[0], "x\r\nSet-Cookie: injected=1\r\nX-Injected: yes"),
        {**bearer(account[1]), "Content-Type": "application/json"},
        b'{"prompt": "a"}',
    )
    assert_refused(reply, 404, 3042)
    assert "set-cookie" not in reply.headers
    assert "x-injected" not in reply.headers


def test_an_encoded_crlf_in_the_bearer_token_is_401(
    gateway: GatewayProcess, account: tuple[str, str]
) -> None:
    with client(gateway) as http:
        reply = http.post(
            run_url(account[0]),
            json={"prompt": "a"},
            headers={"Authorization": f"Bearer {account[1]}%0d%0aX-Injected: yes"},
        )
    assert_refused(reply, 401, 10000)
    assert "x-injected" not in reply.headers


def test_a_request_line_over_the_head_limit_is_431(gateway: GatewayProcess) -> None:
    """The connection refuses it before the app sees it (`gateway/http_protocol.py`)."""
    reply = raw_request(gateway, "GET", f"/admin/v1/accounts/{'a' * 200_000}", {})
    assert reply.status_code == 431
    assert reply.json()["errors"][0]["code"] == 5006


# Path traversal


@pytest.mark.parametrize(
    "model",
    [
        "../../admin/v1/accounts",
        "%2e%2e%2f%2e%2e%2fadmin%2fv1%2faccounts",
        "%2e%2e/%2e%2e/admin/v1/accounts",
        "..%2F..%2F..%2F..%2Fadmin%2Fv1%2Faccounts",
        "@twin/meta/../../../../../../admin/v1/accounts",
        "..%5c..%5cadmin%5cv1%5caccounts",
    ],
)
def test_path_traversal_in_the_model_is_a_404_in_the_envelope(
    gateway: GatewayProcess, account: tuple[str, str], model: str
) -> None:
    reply = raw_request(
        gateway,
        "POST",
        run_url(account[0], model),
        {**bearer(account[1]), "Content-Type": "application/json"},
        b'{"prompt": "a"}',
    )
    assert "No such model" in assert_refused(reply, 404, 3042)


@pytest.mark.parametrize(
    "path",
    [
        "/client/v4/accounts/{id}/ai/../../../../admin/v1/accounts",
        "/client/v4/accounts/{id}/ai/%2e%2e/%2e%2e/%2e%2e/%2e%2e/admin/v1/accounts",
        "/client/v4/accounts/../../admin/v1/accounts",
    ],
)
def test_path_traversal_out_of_the_account_api_is_a_404_in_the_envelope(
    gateway: GatewayProcess, account: tuple[str, str], path: str
) -> None:
    name = f"traversal-{uuid.uuid4().hex[:8]}"
    reply = raw_request(
        gateway,
        "POST",
        path.format(id=account[0]),
        {**gateway.admin_headers, "Content-Type": "application/json"},
        f'{{"name": "{name}"}}'.encode(),
    )
    assert_refused(reply, 404, 7003)
    assert name not in account_names(gateway)


# SQL metacharacters


@pytest.mark.each_database
def test_sql_in_an_account_name_is_400_and_changes_nothing(gateway: GatewayProcess) -> None:
    before = account_names(gateway)
    with client(gateway) as http:
        reply = http.post("/admin/v1/accounts", json={"name": SQL}, headers=gateway.admin_headers)
    assert_refused(reply, 400, 5006)
    assert account_names(gateway) == before


@pytest.mark.each_database
def test_sql_in_a_token_name_is_stored_as_text(gateway: GatewayProcess) -> None:
    account_id = gateway.create_account()
    created = gateway.create_token(account_id, name=SQL)
    with client(gateway) as http:
        listed = http.get(
            f"/admin/v1/accounts/{account_id}/tokens", headers=gateway.admin_headers
        ).json()["result"]
    assert created["name"] == SQL
    assert [token["name"] for token in listed] == [SQL]


@pytest.mark.each_database
@pytest.mark.parametrize(
    "model",
    ["x' OR '1'='1", "@cf/x'; DROP TABLE usage_records; --", 'x" OR 1=1 --', "x\\'; SELECT 1;"],
)
def test_sql_in_a_model_name_is_a_404_with_a_complete_rejected_record(
    gateway: GatewayProcess, model: str
) -> None:
    account = new_account(gateway)
    with client(gateway) as http:
        reply = http.post(
            run_url(account[0], model), json={"prompt": "a"}, headers=bearer(account[1])
        )
    assert_refused(reply, 404, 3042)
    [record] = wait_for_records(gateway, 1, request_id=reply.headers["x-request-id"])
    assert (record["account_id"], record["status"]) == (account[0], "rejected")
    assert (record["prompt_tokens"], record["completion_tokens"]) == (0, 0)


@pytest.mark.each_database
@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("since", f"2026-01-01{SQL}"),
        ("since", "' OR '1'='1"),
        ("until", "2026-01-01'; DELETE FROM usage_records; --"),
        ("group_by", "day'; DROP TABLE usage_records; --"),
        ("since", "9" * 400),
    ],
)
def test_sql_in_usage_query_parameters_is_400(
    gateway: GatewayProcess, account: tuple[str, str], parameter: str, value: str
) -> None:
    with client(gateway) as http:
        reply = http.get(
            f"/client/v4/accounts/{account[0]}/ai/usage",
            params={parameter: value},
            headers=bearer(account[1]),
        )
    assert_refused(reply, 400, 5006)


@pytest.mark.each_database
@pytest.mark.parametrize("parameter", ["account_id", "request_id"])
def test_sql_in_an_admin_usage_filter_matches_nothing(
    gateway: GatewayProcess, parameter: str
) -> None:
    with client(gateway) as http:
        reply = http.get(
            "/admin/v1/usage/records",
            params={parameter: "' OR '1'='1"},
            headers=gateway.admin_headers,
        )
    assert reply.status_code == 200, reply.text
    assert reply.json()["result"] == []


@pytest.mark.each_database
def test_sql_in_the_account_id_of_the_path_is_403(
    gateway: GatewayProcess, account: tuple[str, str]
) -> None:
    with client(gateway) as http:
        reply = http.post(run_url("' OR '1'='1"), json={"prompt": "a"}, headers=bearer(account[1]))
    assert_refused(reply, 403, 10000)


# Values the database cannot hold


@pytest.mark.each_database
@pytest.mark.parametrize("name", ["a\x00b", "\x00"])
@pytest.mark.parametrize("endpoint", ["new account", "new token"])
def test_a_nul_byte_in_a_name_is_400(gateway: GatewayProcess, endpoint: str, name: str) -> None:
    path = "/admin/v1/accounts"
    if endpoint == "new token":
        path = f"/admin/v1/accounts/{gateway.create_account()}/tokens"
    with client(gateway) as http:
        reply = http.post(path, json={"name": name}, headers=gateway.admin_headers)
    assert_refused(reply, 400, 5006)


@pytest.mark.each_database
def test_a_nul_byte_in_a_prompt_is_generated_from(
    gateway: GatewayProcess, account: tuple[str, str]
) -> None:
    reply = run(gateway, account, {"prompt": "before\x00after", "max_tokens": 2})
    assert reply.status_code == 200, reply.text


@pytest.mark.each_database
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/admin/v1/accounts/%00"),
        ("GET", "/admin/v1/accounts/a%00b/tokens"),
        ("GET", "/admin/v1/accounts/%00/limits"),
        ("PUT", "/admin/v1/accounts/%00/limits"),
        ("POST", "/admin/v1/accounts/%00/tokens"),
        ("DELETE", "/admin/v1/accounts/{id}/tokens/%00"),
    ],
)
def test_a_nul_byte_in_an_id_is_a_4xx_in_the_envelope(
    gateway: GatewayProcess, method: str, path: str
) -> None:
    """A 404 where the database can compare it (SQLite), a 400 where it cannot (PostgreSQL)."""
    body = {"PUT": {"requests_per_minute": 1}, "POST": {"name": "n"}}.get(method)
    with client(gateway) as http:
        reply = http.request(
            method,
            path.format(id=gateway.create_account()),
            json=body,
            headers=gateway.admin_headers,
        )
    if backend_of(gateway) == "postgresql":
        assert_refused(reply, 400, 5006)
    else:
        assert_refused(reply, 404, 7003)


@pytest.mark.each_database
@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/admin/v1/usage/records", "account_id"),
        ("/admin/v1/usage/records", "request_id"),
        ("/admin/v1/usage", "account_id"),
    ],
)
def test_a_nul_byte_in_a_usage_filter_matches_nothing_or_is_400(
    gateway: GatewayProcess, path: str, parameter: str
) -> None:
    """Nothing matches where the database can compare it (SQLite), a 400 where it cannot
    (PostgreSQL)."""
    with client(gateway) as http:
        reply = http.get(path, params={parameter: "a\x00"}, headers=gateway.admin_headers)
    if backend_of(gateway) == "postgresql":
        assert_refused(reply, 400, 5006)
    else:
        assert reply.status_code == 200, reply.text
        result = reply.json()["result"]
        assert result == [] or result["rows"] == [], result


@pytest.mark.each_database
@pytest.mark.parametrize(
    ("limit", "value"),
    [
        ("requests_per_minute", 2**31),
        ("tokens_per_minute", 2**40),
        ("concurrent_streams", 2**62),
        ("monthly_tokens", 2**63),
    ],
)
def test_a_limit_too_large_for_the_database_is_400(
    gateway: GatewayProcess, limit: str, value: int
) -> None:
    account_id = gateway.create_account()
    with client(gateway) as http:
        reply = http.put(
            f"/admin/v1/accounts/{account_id}/limits",
            json={limit: value},
            headers=gateway.admin_headers,
        )
        own = http.get(
            f"/admin/v1/accounts/{account_id}/limits", headers=gateway.admin_headers
        ).json()["result"]["own"]
    assert_refused(reply, 400, 5006)
    assert own[limit] is None


@pytest.mark.each_database
@pytest.mark.parametrize(
    ("model", "stored"),
    [("m" * 101, "unknown"), ("a%00b", "unknown")],
    ids=["101 characters", "a NUL byte"],
)
def test_a_model_name_the_records_cannot_hold_still_leaves_a_complete_record(
    gateway: GatewayProcess,
    gateway_factory: GatewayFactory,
    model: str,
    stored: str,
) -> None:
    """A gateway of its own: the failure this guards against would stop its metering.

    The rejected record names the model `unknown`: a tenant's text never reaches a report."""
    own = gateway_factory(backend_of(gateway))
    try:
        account = new_account(own)
        with client(own) as http:
            refused = http.post(
                run_url(account[0], model), json={"prompt": "a"}, headers=bearer(account[1])
            )
        assert_refused(refused, 404, 3042)
        served = run(own, account, {"prompt": "And then?", "max_tokens": 1})
        assert served.status_code == 200, served.text
        records = wait_for_records(own, 2, timeout=5, account_id=account[0])
        outcomes = {record["request_id"]: (record["status"], record["model"]) for record in records}
        assert outcomes == {
            refused.headers["x-request-id"]: ("rejected", stored),
            served.headers["x-request-id"]: ("ok", INT8),
        }
    finally:
        own.process.kill()  # a stuck meter would hold up a graceful stop for its drain timeout
