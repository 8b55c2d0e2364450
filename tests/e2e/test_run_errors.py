"""Every refusal of the run API: its status, its code, a message that says why, the envelope."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import unquote

import httpx
import pytest

from gateway.error_codes import ErrorCode
from local_runtime.ports import free_port
from tests.accounting import FP16, INT8, bearer, run, run_url
from tests.gateway_fixtures import GatewayProcess, start_gateway
from tests.raw_http import raw_request

pytestmark = pytest.mark.triton


def assert_error(reply: httpx.Response, status: int, code: int, fragment: str) -> None:
    body = reply.json()
    assert reply.status_code == status, reply.text
    assert (body["success"], body["result"], body["messages"]) == (False, None, [])
    assert body["errors"][0]["code"] == code
    assert fragment in body["errors"][0]["message"], body["errors"][0]["message"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"prompt": "a", "messages": [{"role": "user", "content": "b"}]}, "exactly one of"),
        ({}, "exactly one of"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "a", "temperature": 5.1}, "temperature"),
        ({"prompt": "a", "top_p": 0}, "top_p"),
        ({"prompt": "a", "top_k": 51}, "top_k"),
        ({"prompt": "a", "seed": 0}, "seed"),
        ({"prompt": "a", "repetition_penalty": 2.5}, "repetition_penalty"),
        ({"prompt": "a", "repetition_penalty": 0}, "repetition_penalty"),
        ({"prompt": "a", "repetition_penalty": 1e-300}, "repetition_penalty"),
        ({"prompt": "a", "presence_penalty": -3}, "presence_penalty"),
        ({"prompt": "a", "max_tokens": 0}, "max_tokens"),
        ({"prompt": "a", "max_token": 5}, "max_token"),
        (
            {"messages": [{"role": "user", "content": "b"}], "raw": True},
            "'raw' applies to 'prompt'",
        ),
        (
            {"messages": [{"role": "robot", "content": "b"}]},
            "Conversation roles must alternate user/assistant/user/assistant/...",
        ),
    ],
)
def test_bad_input_is_400_with_the_reason(
    gateway: GatewayProcess, account: tuple[str, str], body: dict[str, object], fragment: str
) -> None:
    assert_error(run(gateway, account, body), 400, 5006, fragment)


@pytest.mark.parametrize(("model", "context_length"), [(INT8, 2048), (FP16, 3072)])
def test_prompt_over_the_context_length_is_400_saying_by_how_much(
    gateway: GatewayProcess, account: tuple[str, str], model: str, context_length: int
) -> None:
    prompt = "\x01" * (context_length - 1)  # <s>, the leading ▁ and one byte token per char
    reply = run(gateway, account, {"prompt": prompt, "raw": True, "max_tokens": 1}, model)
    assert_error(reply, 400, 5021, f"context length of {context_length} tokens by 1")


def test_prompt_at_the_context_length_is_accepted(
    gateway: GatewayProcess, account: tuple[str, str]
) -> None:
    reply = run(gateway, account, {"prompt": "\x01" * 2046, "raw": True, "max_tokens": 1})
    assert reply.status_code == 200, reply.text
    assert reply.json()["result"]["usage"]["prompt_tokens"] == 2048


@pytest.mark.parametrize(("model", "sequence_length"), [(INT8, 1800), (FP16, 2500)])
def test_max_tokens_over_the_sequence_length_is_400_saying_by_how_much(
    gateway: GatewayProcess, account: tuple[str, str], model: str, sequence_length: int
) -> None:
    reply = run(gateway, account, {"prompt": "a", "max_tokens": sequence_length + 1}, model)
    assert_error(reply, 400, 5006, f"maximum output of {sequence_length} tokens by 1")


def test_unknown_model_is_404(gateway: GatewayProcess, account: tuple[str, str]) -> None:
    assert_error(
        run(gateway, account, {"prompt": "a"}, "@cf/meta/nope"), 404, 3042, "No such model"
    )


@pytest.mark.parametrize(
    "model",
    [
        "..%2F..%2Fetc%2Fpasswd",
        "@twin/meta/../../admin",
        "../../../../../admin/v1/accounts",
        "x%0D%0ASet-Cookie:%20a=b",
    ],
)
def test_hostile_model_names_are_refused_as_unknown_models_as_sent(
    gateway: GatewayProcess, account: tuple[str, str], model: str
) -> None:
    """Sent byte for byte (httpx would resolve `..` before sending, and test another path):
    no part of the stack resolves the dots, so the name reaches the catalog as it was sent
    and is refused there, never routed elsewhere (e.g. to the admin API)."""
    account_id, token = account
    reply = raw_request(
        gateway,
        "POST",
        f"/client/v4/accounts/{account_id}/ai/run/{model}",
        {**bearer(token), "Content-Type": "application/json"},
        b'{"prompt": "a"}',
    )
    assert_error(reply, 404, ErrorCode.INVALID_MODEL, f"No such model: {unquote(model)!r}")
    assert "set-cookie" not in reply.headers


def test_missing_token_is_401(gateway: GatewayProcess, account: tuple[str, str]) -> None:
    with gateway.client() as client:
        reply = client.post(run_url(account[0]), json={"prompt": "a"})
    assert_error(reply, 401, 10000, "missing API token")


@pytest.mark.parametrize("token", ["gwk_not-a-real-token", "nonsense"])
def test_invalid_token_is_401(
    gateway: GatewayProcess, account: tuple[str, str], token: str
) -> None:
    with gateway.client() as client:
        reply = client.post(run_url(account[0]), json={"prompt": "a"}, headers=bearer(token))
    assert_error(reply, 401, 10000, "API token")
    assert token not in reply.text


def test_token_of_another_account_is_403(gateway: GatewayProcess, account: tuple[str, str]) -> None:
    other = gateway.create_account()
    with gateway.client() as client:
        reply = client.post(run_url(other), json={"prompt": "a"}, headers=bearer(account[1]))
    assert_error(reply, 403, 10000, "another account")


def test_body_over_the_limit_is_413(gateway: GatewayProcess, account: tuple[str, str]) -> None:
    reply = run(gateway, account, {"prompt": "a" * (300 * 1024)})
    assert_error(reply, 413, 3006, "too large")


def test_body_that_is_not_json_is_400(gateway: GatewayProcess, account: tuple[str, str]) -> None:
    with gateway.client() as client:
        reply = client.post(
            run_url(account[0]),
            content=b"{not json",
            headers={**bearer(account[1]), "content-type": "application/json"},
        )
    assert reply.status_code == 400
    assert reply.json()["success"] is False


def test_invalid_utf8_body_is_400(gateway: GatewayProcess, account: tuple[str, str]) -> None:
    with gateway.client() as client:
        reply = client.post(
            run_url(account[0]),
            content=b'{"prompt": "\xff\xfe"}',
            headers={**bearer(account[1]), "content-type": "application/json"},
        )
    assert reply.status_code == 400
    assert reply.json()["success"] is False


@pytest.fixture(scope="module")
def gateway_without_triton(
    gateway: GatewayProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    """The same database, a Triton address where nothing listens."""
    process = start_gateway(
        {
            **gateway.env,
            "TRITON_GRPC_URL": f"127.0.0.1:{free_port()}",
            "GATEWAY_METRICS_PORT": str(free_port()),
        },
        tmp_path_factory.mktemp("gw-no-triton") / "gateway.log",
    )
    yield process
    process.stop()


@pytest.mark.parametrize("stream", [False, True])
def test_unreachable_backend_is_503(
    gateway_without_triton: GatewayProcess, account: tuple[str, str], stream: bool
) -> None:
    reply = run(gateway_without_triton, account, {"prompt": "a", "stream": stream})
    assert_error(reply, 503, 3045, "unavailable")


def test_readiness_fails_without_triton(gateway_without_triton: GatewayProcess) -> None:
    reply = httpx.get(f"{gateway_without_triton.base_url}/readyz", timeout=10)
    assert reply.status_code == 503
    assert "triton" in reply.json()["errors"][0]["message"]


def test_readiness_passes_with_database_and_triton(gateway: GatewayProcess) -> None:
    reply = httpx.get(f"{gateway.base_url}/readyz", timeout=10)
    assert reply.status_code == 200
    assert reply.json()["checks"] == {"database": True, "triton": True}
