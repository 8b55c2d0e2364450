"""Every request body is strict JSON or refused before it is read: declared as JSON (or not
declared), well formed, each key once per object, and no sampling value that the backend's
float32 would turn into another. Each refusal comes before a run reaches Triton, so the
gateway here has none."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.accounting import INT8, bearer, new_account, run_url
from tests.gateway_fixtures import GatewayProcess

NOT_JSON = 3003
BAD_INPUT = 5006
UNSUPPORTED_MEDIA_TYPE = 3049
JSON = {"content-type": "application/json"}
SCHEMA_ERROR = b'{"prompt": "a", "temperature": 9}'
"""Strict JSON that the run's schema refuses (5006): what reaches the handler."""


@pytest.fixture(scope="module")
def account(gateway_without_backend: GatewayProcess) -> tuple[str, str]:
    return new_account(gateway_without_backend)


def endpoint(
    gateway: GatewayProcess, account: tuple[str, str], api: str
) -> tuple[str, dict[str, str]]:
    """(path, headers) of a body-taking route of `api`."""
    account_id, token = account
    return {
        "run": (run_url(account_id), bearer(token)),
        "admin": ("/admin/v1/accounts", gateway.admin_headers),
        "openai": ("/v1/chat/completions", bearer(token)),
    }[api]


def post(
    gateway: GatewayProcess, path: str, body: bytes, headers: dict[str, str]
) -> httpx.Response:
    with gateway.client() as client:
        return client.post(path, content=body, headers=headers)


def envelope_error(reply: httpx.Response, status: int, code: int) -> str:
    """The reply is `status` with `code` in the Workers AI envelope; its message."""
    assert reply.status_code == status, reply.text[:500]
    body = reply.json()
    assert (body["success"], body["result"], body["messages"]) == (False, None, []), body
    [error] = body["errors"]
    assert error["code"] == code, body
    return str(error["message"])


def openai_error(reply: httpx.Response, status: int) -> dict[str, Any]:
    """The reply is `status` in OpenAI's error format; its `error`."""
    assert reply.status_code == status, reply.text[:500]
    body = reply.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    assert body["error"]["type"] == "invalid_request_error", body
    return body["error"]  # type: ignore[no-any-return]


def error_message(reply: httpx.Response, status: int, code: int, api: str) -> str:
    if api == "openai":
        return str(openai_error(reply, status)["message"])
    return envelope_error(reply, status, code)


# Duplicate keys


@pytest.mark.parametrize("api", ["run", "admin", "openai"])
@pytest.mark.parametrize(
    ("body", "key"),
    [
        (
            b'{"prompt": "a", "name": "a", "model": "m", "prompt": "b", "name": "b", "model": "n"}',
            "prompt",
        ),
        (
            b'{"messages": [{"role": "user", "content": "a", "role": "system"}], "name": "a"}',
            "role",
        ),
    ],
    ids=["top level", "nested"],
)
def test_a_key_twice_in_one_object_is_refused_as_not_acceptable_json_naming_it(
    gateway_without_backend: GatewayProcess,
    account: tuple[str, str],
    api: str,
    body: bytes,
    key: str,
) -> None:
    path, headers = endpoint(gateway_without_backend, account, api)
    reply = post(gateway_without_backend, path, body, {**headers, **JSON})
    message = error_message(reply, 400, NOT_JSON, api)
    assert "not acceptable JSON" in message
    assert f"the key {key!r} appears twice" in message


def test_a_key_twice_in_an_admin_body_creates_nothing(
    gateway_without_backend: GatewayProcess,
) -> None:
    """A proxy keeping the first `name` and the gateway the last would disagree on what was
    created: nothing is."""
    body = b'{"name": "dup-first-4c1e", "name": "dup-last-4c1e"}'
    reply = post(
        gateway_without_backend,
        "/admin/v1/accounts",
        body,
        {**gateway_without_backend.admin_headers, **JSON},
    )
    assert "'name' appears twice" in envelope_error(reply, 400, NOT_JSON)
    with gateway_without_backend.client() as client:
        listed = client.get(
            "/admin/v1/accounts", headers=gateway_without_backend.admin_headers
        ).json()
    assert not {"dup-first-4c1e", "dup-last-4c1e"} & {row["name"] for row in listed["result"]}


def test_a_key_twice_deep_in_a_large_body_is_refused(
    gateway_without_backend: GatewayProcess, account: tuple[str, str]
) -> None:
    """Bodies over 64 KiB are scanned in a thread: the same verdict, far into the body."""
    messages = [{"role": "user", "content": ""}] * 20_000
    unique = json.dumps({"messages": messages, "temperature": 9}).encode()
    repeated = unique.replace(b'"content": ""}]', b'"content": "", "content": "x"}]')
    assert len(repeated) > 400_000
    path, headers = endpoint(gateway_without_backend, account, "run")

    refused = post(gateway_without_backend, path, repeated, {**headers, **JSON})
    read = post(gateway_without_backend, path, unique, {**headers, **JSON})

    assert "'content' appears twice" in envelope_error(refused, 400, NOT_JSON)
    assert "temperature" in envelope_error(read, 400, BAD_INPUT)


# Content-Type


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",  # what `curl -d` declares
        "text/plain;charset=UTF-8",  # what fetch() declares for a string
        "multipart/form-data; boundary=x",
        "text/json",
        "",
    ],
)
def test_a_body_declared_as_anything_but_json_is_415_saying_what_to_send(
    gateway_without_backend: GatewayProcess, account: tuple[str, str], content_type: str
) -> None:
    """The same bytes are read when declared as JSON, in any of its spellings, or not
    declared at all (simple clients send none): only the declared type is refused."""
    path, headers = endpoint(gateway_without_backend, account, "run")
    refused = post(
        gateway_without_backend, path, SCHEMA_ERROR, {**headers, "content-type": content_type}
    )
    assert "Content-Type: application/json" in envelope_error(refused, 415, UNSUPPORTED_MEDIA_TYPE)
    for declared in (
        {},
        {"content-type": "application/json; charset=utf-8"},
        {"content-type": "Application/JSON"},
        {"content-type": "application/merge-patch+json"},
    ):
        read = post(gateway_without_backend, path, SCHEMA_ERROR, {**headers, **declared})
        assert "temperature" in envelope_error(read, 400, BAD_INPUT), declared


def test_a_form_sent_to_the_admin_api_is_415_and_creates_nothing(
    gateway_without_backend: GatewayProcess,
) -> None:
    """`curl -d '{"name": …}'` without `-H 'Content-Type: application/json'`."""
    headers = {
        **gateway_without_backend.admin_headers,
        "content-type": "application/x-www-form-urlencoded",
    }
    reply = post(gateway_without_backend, "/admin/v1/accounts", b'{"name": "form-9b1f"}', headers)
    envelope_error(reply, 415, UNSUPPORTED_MEDIA_TYPE)
    with gateway_without_backend.client() as client:
        listed = client.get(
            "/admin/v1/accounts", headers=gateway_without_backend.admin_headers
        ).json()
    assert "form-9b1f" not in {row["name"] for row in listed["result"]}


def test_a_body_declared_as_anything_but_json_under_v1_is_415_in_openai_format(
    gateway_without_backend: GatewayProcess, account: tuple[str, str]
) -> None:
    body = json.dumps({"model": INT8, "messages": [{"role": "user", "content": "a"}]}).encode()
    reply = post(
        gateway_without_backend,
        "/v1/chat/completions",
        body,
        {**bearer(account[1]), "content-type": "text/plain;charset=UTF-8"},
    )
    error = openai_error(reply, 415)
    assert error["code"] == "unsupported_media_type"
    assert "application/json" in error["message"]


# Malformed JSON


@pytest.mark.parametrize("api", ["run", "admin", "openai"])
@pytest.mark.parametrize(
    "body",
    [b"{not json", b'{"prompt": ', b'{"prompt": "a"} trailing', b'{"prompt": NaN}', b"  "],
    ids=["not json", "truncated", "trailing", "NaN", "blank"],
)
def test_malformed_json_is_3003_on_every_api(
    gateway_without_backend: GatewayProcess, account: tuple[str, str], api: str, body: bytes
) -> None:
    path, headers = endpoint(gateway_without_backend, account, api)
    reply = post(gateway_without_backend, path, body, {**headers, **JSON})
    assert error_message(reply, 400, NOT_JSON, api).startswith("Request body is not valid")


@pytest.mark.parametrize("api", ["run", "admin", "openai"])
def test_a_missing_body_is_3003_on_every_api(
    gateway_without_backend: GatewayProcess, account: tuple[str, str], api: str
) -> None:
    path, headers = endpoint(gateway_without_backend, account, api)
    reply = post(gateway_without_backend, path, b"", headers)
    assert error_message(reply, 400, NOT_JSON, api).startswith("Request body is missing")


@pytest.mark.parametrize("query", ["?via=JSON-tools", "?via=decoder-7b"])
@pytest.mark.parametrize("api", ["run", "openai"])
def test_a_schema_error_is_5006_whatever_the_url_says(
    gateway_without_backend: GatewayProcess, account: tuple[str, str], api: str, query: str
) -> None:
    """The refusal was once classified by its message, which names the URL."""
    path, headers = endpoint(gateway_without_backend, account, api)
    body = (
        SCHEMA_ERROR
        if api == "run"
        else json.dumps(
            {"model": INT8, "messages": [{"role": "user", "content": "a"}], "temperature": 9}
        ).encode()
    )
    reply = post(gateway_without_backend, path + query, body, {**headers, **JSON})
    assert "temperature" in error_message(reply, 400, BAD_INPUT, api)


# Sampling values float32 cannot hold


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", 1e-320),
        ("frequency_penalty", -1e-320),
        ("presence_penalty", 5e-324),
        ("temperature", 1e-40),
    ],
    ids=["0 in float32", "-0 in float32", "the smallest double", "subnormal in float32"],
)
def test_a_sampling_value_that_float32_cannot_hold_is_refused_naming_it(
    gateway_without_backend: GatewayProcess, account: tuple[str, str], field: str, value: float
) -> None:
    account_id, token = account
    body = json.dumps({"prompt": "a", field: value}).encode()
    reply = post(gateway_without_backend, run_url(account_id), body, {**bearer(token), **JSON})
    message = envelope_error(reply, 400, BAD_INPUT)
    assert f"'{field}' is {value!r}" in message
    assert "32-bit float" in message


@pytest.mark.parametrize(
    ("field", "value"),
    [("temperature", 1e-320), ("top_p", 1e-300), ("presence_penalty", -7e-46)],
)
def test_a_sampling_value_that_float32_holds_as_0_under_v1_names_its_param(
    gateway_without_backend: GatewayProcess, account: tuple[str, str], field: str, value: float
) -> None:
    body = json.dumps(
        {"model": INT8, "messages": [{"role": "user", "content": "a"}], field: value}
    ).encode()
    reply = post(
        gateway_without_backend, "/v1/chat/completions", body, {**bearer(account[1]), **JSON}
    )
    error = openai_error(reply, 400)
    assert error["param"] == field
    assert "32-bit float" in error["message"]
