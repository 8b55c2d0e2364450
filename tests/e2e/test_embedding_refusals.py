"""Every refusal of an embeddings request, on both APIs: a 4xx that names the input at fault,
before anything reaches Triton, recorded like any refused run; the limits that apply to
embeddings as to text generation; and a backend that is down."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from gateway.error_codes import ErrorCode
from local_runtime.ports import free_port
from tests.accounting import bearer, gateway_metric, new_account, run, wait_for_records
from tests.gateway_fixtures import GatewayFactory, GatewayProcess

pytestmark = pytest.mark.triton

MODEL = "@twin/all-minilm-l6-v2/bge-small-en-v1.5"
SMOLLM2 = "@twin/smollm2-135m-instruct/llama-2-7b-chat-int8"
LONG = "word " * 600
"""600 tokens and [CLS]/[SEP]: over the model's 512 per input."""


@pytest.fixture(scope="module")
def gateway(smollm2_gateway: GatewayProcess) -> GatewayProcess:
    """The embedded default's gateway: its embedding twin runs the real weights."""
    return smollm2_gateway


@pytest.fixture(scope="module")
def account(gateway: GatewayProcess) -> tuple[str, str]:
    return new_account(gateway)


def openai_embeddings(
    gateway: GatewayProcess, account: tuple[str, str], **body: object
) -> httpx.Response:
    with gateway.client() as client:
        return client.post(
            "/v1/embeddings", json={"model": MODEL, **body}, headers=bearer(account[1])
        )


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [
        ({"text": []}, ErrorCode.BAD_INPUT, "'text' is empty"),
        ({"text": ["a", ""]}, ErrorCode.BAD_INPUT, "text"),
        ({"text": ["a"] * 101}, ErrorCode.BAD_INPUT, "101 inputs, over the limit of 100"),
        ({"text": ["a", LONG]}, ErrorCode.CONTEXT_WINDOW_EXCEEDED, "text[1] is 602 tokens"),
        ({"text": "a", "pooling": "max"}, ErrorCode.BAD_INPUT, "pooling"),
        ({"text": "a", "dimensions": 384}, ErrorCode.BAD_INPUT, "dimensions"),
        ({"prompt": "a"}, ErrorCode.BAD_INPUT, "prompt"),
    ],
)
def test_workers_ai_refuses_a_bad_embeddings_body_naming_what_is_wrong(
    gateway: GatewayProcess,
    account: tuple[str, str],
    body: dict[str, object],
    code: int,
    fragment: str,
) -> None:
    reply = run(gateway, account, body, MODEL)
    assert reply.status_code == 400, reply.text
    error = reply.json()["errors"][0]
    assert error["code"] == code
    assert fragment in error["message"], error["message"]


def test_a_text_over_the_limit_is_cut_to_it_when_the_request_asks(
    gateway: GatewayProcess,
) -> None:
    account_id, token = new_account(gateway)
    reply = run(gateway, (account_id, token), {"text": ["a", LONG], "truncate_inputs": True}, MODEL)
    assert reply.status_code == 200, reply.text
    assert reply.json()["result"]["shape"] == [2, 384]
    (record,) = wait_for_records(gateway, 1, account_id=account_id)
    assert record["prompt_tokens"] == 3 + 512


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        ({"input": [[101, 30522]]}, "input[0]", "input[0][1] is 30522, not a token id"),
        ({"input": [[7], []]}, "input[1]", "input[1] is an empty list of token ids"),
        ({"input": ""}, "input[0]", "input[0] is an empty string"),
        ({"input": ["a", 7]}, "input", "a list of lists of token ids"),
        ({"input": [True]}, "input", "a list of lists of token ids"),
        ({"input": "a", "dimensions": 256}, "dimensions", "384 dimensions"),
        ({"input": ["a", LONG]}, "input[1]", "input[1] is 602 tokens"),
        ({"input": [1] * 600}, "input[0]", "input[0] is 602 tokens"),
    ],
)
def test_openai_refuses_a_bad_embeddings_input_naming_its_index(
    gateway: GatewayProcess,
    account: tuple[str, str],
    body: dict[str, object],
    param: str,
    fragment: str,
) -> None:
    reply = openai_embeddings(gateway, account, **body)
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)
    assert fragment in error["message"], error["message"]


def test_an_embeddings_call_to_a_text_model_and_a_chat_call_to_an_embedding_model_say_so(
    gateway: GatewayProcess, account: tuple[str, str]
) -> None:
    with gateway.client() as client:
        embeddings = client.post(
            "/v1/embeddings", json={"model": SMOLLM2, "input": "a"}, headers=bearer(account[1])
        )
        chat = client.post(
            "/v1/chat/completions",
            json={"model": MODEL, "messages": [{"role": "user", "content": "a"}]},
            headers=bearer(account[1]),
        )
    assert embeddings.status_code == chat.status_code == 400
    assert (
        "is a 'Text Generation' model; embeddings serves 'Text Embeddings'"
        in (embeddings.json()["error"]["message"])
    )
    assert "is a 'Text Embeddings' model" in chat.json()["error"]["message"]


def test_a_refused_embeddings_request_is_recorded_and_counted_under_its_task(
    gateway: GatewayProcess,
) -> None:
    account_id, token = new_account(gateway)
    labels = {"model": MODEL, "task": "text_embeddings"}
    before = gateway_metric(gateway, "gateway_requests_total", status="rejected", **labels)
    ok_before = gateway_metric(gateway, "gateway_requests_total", status="ok", **labels)
    assert run(gateway, (account_id, token), {"text": []}, MODEL).status_code == 400
    assert run(gateway, (account_id, token), {"text": "a"}, MODEL).status_code == 200
    records = wait_for_records(gateway, 2, account_id=account_id)
    assert sorted(record["status"] for record in records) == ["ok", "rejected"]
    assert gateway_metric(gateway, "gateway_requests_total", status="rejected", **labels) == (
        before + 1
    )
    assert gateway_metric(gateway, "gateway_requests_total", status="ok", **labels) == (
        ok_before + 1
    )


def test_the_tokens_per_minute_limit_counts_embedding_tokens(
    gateway: GatewayProcess,
) -> None:
    account = new_account(gateway, tokens_per_minute=40)
    assert run(gateway, account, {"text": "word " * 30}, MODEL).status_code == 200
    refused = run(gateway, account, {"text": "word " * 30}, MODEL)
    assert refused.status_code == 429, refused.text


def test_an_embeddings_request_to_a_backend_that_is_down_is_a_503_billed_nothing(
    gateway_factory: GatewayFactory, smollm2_model_repository: Path
) -> None:
    """No Triton listens at the gateway's address: every batch of the request fails."""
    gateway = gateway_factory(
        TRITON_GRPC_URL=f"127.0.0.1:{free_port()}",
        GATEWAY_MODEL_REPOSITORY=str(smollm2_model_repository),
    )
    account_id, token = new_account(gateway)
    refused = run(gateway, (account_id, token), {"text": ["a", "word " * 20]}, MODEL)
    assert refused.status_code == 503, refused.text
    assert refused.json()["errors"][0]["code"] == ErrorCode.BACKEND_UNAVAILABLE
    (record,) = wait_for_records(gateway, 1, account_id=account_id)
    assert record["status"] == "backend_error"
