"""Every refusal of the OpenAI API as the SDK's typed exception, in OpenAI's error format."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.accounting import new_account, wait_for_records
from tests.e2e.test_openai_sdk import FRANCE, INT8, base_urls, sdk_for
from tests.gateway_fixtures import GatewayProcess

pytestmark = pytest.mark.triton


@pytest.fixture(scope="module")
def account(smollm2_gateway: GatewayProcess) -> tuple[str, str]:
    return new_account(smollm2_gateway)


@pytest.fixture
def sdk(smollm2_gateway: GatewayProcess, account: tuple[str, str]) -> Iterator[openai.OpenAI]:
    with sdk_for(smollm2_gateway, account) as client:
        yield client


def error_of(refused: pytest.ExceptionInfo[openai.APIStatusError]) -> dict[str, Any]:
    body = refused.value.response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"logit_bias": {"17": 5}}, "logit_bias"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"store": True}, "store"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "x"}}],
                    }
                ]
            },
            "messages[0].content[0]",
        ),
        ({"messages": [{"role": "tool", "content": "4", "tool_call_id": "c"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": "hi", "name": "ann"}]}, "messages[0].name"),
    ],
)
def test_a_chat_parameter_the_backend_cannot_honour_is_a_400_naming_it(
    sdk: openai.OpenAI, body: dict[str, object], param: str
) -> None:
    request: dict[str, Any] = {"model": INT8, "messages": FRANCE, "max_tokens": 4, **body}
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.chat.completions.create(**request)
    error = error_of(refused)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert f"'{param}' is not supported" in error["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"echo": True}, "echo"),
        ({"best_of": 2}, "best_of"),
        ({"suffix": "end"}, "suffix"),
        ({"logprobs": 1}, "logprobs"),
        ({"prompt": ["one", "two"]}, "prompt"),
        ({"prompt": [1, 2, 3]}, "prompt"),
    ],
)
def test_a_completion_parameter_the_backend_cannot_honour_is_a_400_naming_it(
    sdk: openai.OpenAI, body: dict[str, object], param: str
) -> None:
    request: dict[str, Any] = {"model": INT8, "prompt": "Hi", "max_tokens": 4, **body}
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.completions.create(**request)
    assert error_of(refused)["param"] == param


def test_a_field_openai_does_not_define_is_refused_by_name(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.chat.completions.create(
            model=INT8, messages=FRANCE, max_tokens=4, extra_body={"top_k_please": 3}
        )
    assert "top_k_please" in error_of(refused)["message"]


def test_an_unknown_field_inside_stream_options_is_a_400_not_a_server_error(
    sdk: openai.OpenAI,
) -> None:
    """`stream_options` was also the name of a gateway dependency: Litestar took a body error
    under that key for the dependency's fault, a 500."""
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.chat.completions.create(
            model=INT8,
            messages=FRANCE,
            stream=True,
            extra_body={"stream_options": {"include_usage": True, "nil": 1}},
        )
    assert "nil" in error_of(refused)["message"]


def test_a_value_out_of_range_names_its_field(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.chat.completions.create(model=INT8, messages=FRANCE, temperature=3)
    error = error_of(refused)
    assert error["param"] == "temperature"
    assert "2" in error["message"]


def test_an_unknown_model_is_not_found(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as refused:
        sdk.chat.completions.create(model="@cf/meta/llama-9", messages=FRANCE)
    error = error_of(refused)
    assert (error["code"], error["param"]) == ("model_not_found", "model")
    assert "@cf/meta/llama-9" in error["message"]


def test_max_tokens_over_the_models_output_is_a_400_on_max_tokens(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.chat.completions.create(model=INT8, messages=FRANCE, max_completion_tokens=1801)
    error = error_of(refused)
    assert error["param"] == "max_tokens"
    assert "1800" in error["message"]


def test_a_prompt_over_the_context_is_context_length_exceeded(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.completions.create(model=INT8, prompt="hello " * 3000, max_tokens=4)
    assert error_of(refused)["code"] == "context_length_exceeded"


@pytest.mark.parametrize("base", ["account", "token"])
def test_a_wrong_api_key_is_an_authentication_error(
    smollm2_gateway: GatewayProcess, account: tuple[str, str], base: str
) -> None:
    account_id, _ = account
    path = f"/client/v4/accounts/{account_id}/ai/v1" if base == "account" else "/v1"
    with (
        openai.OpenAI(
            base_url=smollm2_gateway.base_url + path, api_key="gw_wrong", max_retries=0
        ) as sdk,
        pytest.raises(openai.AuthenticationError) as refused,
    ):
        sdk.models.list()
    assert error_of(refused)["code"] == "invalid_api_key"


def test_a_token_of_another_account_is_permission_denied(
    smollm2_gateway: GatewayProcess, account: tuple[str, str]
) -> None:
    _, other_token = new_account(smollm2_gateway)
    base_url = f"{smollm2_gateway.base_url}/client/v4/accounts/{account[0]}/ai/v1"
    with (
        openai.OpenAI(base_url=base_url, api_key=other_token, max_retries=0) as sdk,
        pytest.raises(openai.PermissionDeniedError),
    ):
        sdk.chat.completions.create(model=INT8, messages=FRANCE, max_tokens=4)


def test_a_body_over_the_size_limit_is_413(sdk: openai.OpenAI) -> None:
    huge = [{"role": "user", "content": "x" * (2 * 1024 * 1024)}]
    with pytest.raises(openai.APIStatusError) as refused:
        sdk.chat.completions.create(model=INT8, messages=huge)  # type: ignore[arg-type]
    assert refused.value.status_code == 413
    assert error_of(refused)["code"] == "request_too_large"


def test_over_the_request_rate_is_a_rate_limit_error_with_retry_after(
    smollm2_gateway: GatewayProcess,
) -> None:
    """Three requests at one a minute: at least one is refused, whichever side of a minute
    boundary they fall."""
    account = new_account(smollm2_gateway, requests_per_minute=1)
    with sdk_for(smollm2_gateway, account) as sdk:

        def three_requests() -> None:
            for _ in range(3):
                sdk.chat.completions.create(model=INT8, messages=FRANCE, max_tokens=2)

        with pytest.raises(openai.RateLimitError) as refused:
            three_requests()
    headers = refused.value.response.headers
    assert 1 <= int(headers["retry-after"]) <= 60
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert error_of(refused)["code"] == "rate_limit_exceeded"


def test_an_exhausted_quota_is_insufficient_quota_and_the_sdk_does_not_retry_it(
    smollm2_gateway: GatewayProcess,
) -> None:
    account = new_account(smollm2_gateway, monthly_tokens=10)
    with (
        sdk_for(smollm2_gateway, account, max_retries=2) as sdk,
        pytest.raises(openai.RateLimitError) as refused,
    ):
        sdk.chat.completions.create(model=INT8, messages=FRANCE, max_tokens=2)
    error = error_of(refused)
    assert (error["type"], error["code"]) == ("insufficient_quota", "insufficient_quota")
    assert refused.value.response.headers["x-should-retry"] == "false"
    records = wait_for_records(smollm2_gateway, 1, account_id=account[0])
    assert [record["status"] for record in records] == ["rate_limited"]


def test_errors_outside_the_openai_paths_keep_the_workers_ai_envelope(
    smollm2_gateway: GatewayProcess, account: tuple[str, str]
) -> None:
    reply = httpx.post(
        f"{smollm2_gateway.base_url}/client/v4/accounts/{account[0]}/ai/run/{INT8}",
        json={"prompt": "hi", "n": 2},
        headers={"Authorization": f"Bearer {account[1]}"},
    )
    assert reply.status_code == 400
    assert reply.json()["success"] is False


@pytest.mark.parametrize("base", ["account", "token"])
def test_the_responses_api_is_the_sdks_not_found_error_until_it_exists(
    smollm2_gateway: GatewayProcess, account: tuple[str, str], base: str
) -> None:
    base_url = base_urls(smollm2_gateway, account[0])[base]
    with (
        openai.OpenAI(base_url=base_url, api_key=account[1], max_retries=0) as sdk,
        pytest.raises(openai.NotFoundError) as refused,
    ):
        sdk.responses.create(model=INT8, input="Hi")
    error = error_of(refused)
    assert error["type"] == "invalid_request_error"
    assert error["message"].endswith("/v1/responses")


REFUSALS = {
    "unknown path": ("GET", "/files", {}, 404),
    "base URL itself": ("POST", "", {}, 404),
    "wrong method": ("DELETE", "/chat/completions", {}, 405),
    "malformed JSON": ("POST", "/chat/completions", {"content": b"{", "json_type": True}, 400),
    "body not JSON": ("POST", "/chat/completions", {"content": b"x=1", "form": True}, 415),
    "body too large": ("POST", "/chat/completions", {"content": b"x" * (2 << 20)}, 413),
    "no token": ("GET", "/models", {"no_token": True}, 401),
}


@pytest.mark.parametrize("base", ["account", "token"])
@pytest.mark.parametrize("case", REFUSALS)
def test_every_refusal_under_an_openai_base_url_is_in_openai_format(
    smollm2_gateway: GatewayProcess, account: tuple[str, str], base: str, case: str
) -> None:
    method, path, options, status = REFUSALS[case]
    headers = {} if options.get("no_token") else {"Authorization": f"Bearer {account[1]}"}
    if options.get("json_type"):
        headers["Content-Type"] = "application/json"
    if options.get("form"):
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    base_url = base_urls(smollm2_gateway, account[0])[base]

    reply = httpx.request(
        method, base_url + path, content=options.get("content"), headers=headers, timeout=30
    )

    assert reply.status_code == status
    body = reply.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == "invalid_request_error"


def test_a_wrong_method_names_the_allowed_ones(
    smollm2_gateway: GatewayProcess, account: tuple[str, str]
) -> None:
    reply = httpx.get(
        f"{smollm2_gateway.base_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {account[1]}"},
    )
    assert reply.status_code == 405
    assert "POST" in reply.headers["allow"]
    assert "POST" in reply.json()["error"]["message"].partition("allowed:")[2]


@pytest.mark.parametrize("path", ["/v10/models", "/client/v4/accounts/{account}/ai/nope", "/nope"])
def test_an_unknown_path_outside_the_openai_base_urls_keeps_the_envelope(
    smollm2_gateway: GatewayProcess, account: tuple[str, str], path: str
) -> None:
    reply = httpx.get(smollm2_gateway.base_url + path.format(account=account[0]))
    assert reply.status_code == 404
    assert reply.json()["errors"][0]["code"] == 7003
