"""`POST /client/v4/accounts/{id}/ai/run/{model}` end to end: gateway process → tritonserver."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from gateway.inference.tokenization import ChatMessage, ModelTokenizer
from llm_contract.engines import ENGINE_SPECS
from local_runtime.triton_server import TritonServer
from tests.accounting import (
    FP16,
    INT8,
    LONG_FP16_RUN,
    abandon_run,
    bearer,
    run,
    run_url,
    twin_metric,
)
from tests.e2e.sse import stream_run
from tests.gateway_fixtures import GatewayProcess

pytestmark = pytest.mark.triton


@pytest.fixture(scope="module")
def tokenizer(cpu_model_repository: Path) -> ModelTokenizer:
    directory = cpu_model_repository / ENGINE_SPECS["int8"].generation_model / "tokenizer"
    return ModelTokenizer.from_directory(directory)


def test_non_streamed_run_returns_text_and_exact_usage_in_the_envelope(
    gateway: GatewayProcess, account: tuple[str, str], tokenizer: ModelTokenizer
) -> None:
    reply = run(gateway, account, {"prompt": "Tell me a story", "max_tokens": 24, "seed": 5})
    body = reply.json()
    assert reply.status_code == 200
    assert body["success"] is True
    assert body["errors"] == []
    assert body["messages"] == []
    usage = body["result"]["usage"]
    assert usage["prompt_tokens"] == len(
        tokenizer.encode_chat([ChatMessage("user", "Tell me a story")])
    )
    assert 1 <= usage["completion_tokens"] <= 24
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert isinstance(body["result"]["response"], str)


def test_stream_is_server_sent_events_ending_with_usage_then_done(
    gateway: GatewayProcess, account: tuple[str, str]
) -> None:
    account_id, token = account
    with gateway.client() as client:
        events = stream_run(
            client, run_url(account_id), token, {"prompt": "hello", "max_tokens": 16, "seed": 3}
        )
    assert events.status_code == 200
    assert events.headers["content-type"].startswith("text/event-stream")
    assert events.headers["x-accel-buffering"] == "no"
    assert "no-cache" in events.headers["cache-control"]
    assert events.raw.endswith(b"data: [DONE]\n\n")
    assert all(chunk.startswith(b"data: ") for chunk in events.raw.split(b"\n\n") if chunk)
    assert events.data[-1] == "[DONE]"
    last = events.json_events[-1]
    assert last["response"] == ""
    assert set(last["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}  # type: ignore[arg-type]
    assert all(set(event) == {"response"} for event in events.json_events[:-1])


def test_the_usage_event_carries_the_id_of_every_completion_token_billed(
    gateway: GatewayProcess, account: tuple[str, str]
) -> None:
    """Also when the last token adds no text, the last `id:` is what the run was billed."""
    account_id, token = account
    with gateway.client() as client:
        events = stream_run(
            client, run_url(account_id), token, {"prompt": "hello", "max_tokens": 16, "seed": 3}
        )
    usage = events.json_events[-1]["usage"]
    assert isinstance(usage, dict)
    assert events.raw.endswith(b"\nid: %d\n\ndata: [DONE]\n\n" % usage["completion_tokens"])
    assert events.ids == sorted(events.ids)


@pytest.mark.parametrize("model", [INT8, FP16])
def test_streamed_text_and_usage_equal_the_non_streamed_run_for_the_same_seed(
    gateway: GatewayProcess, account: tuple[str, str], model: str
) -> None:
    body = {"prompt": "Grüße, 東京 🚀", "max_tokens": 64, "seed": 42, "temperature": 1.0}
    whole = run(gateway, account, body, model).json()["result"]
    account_id, token = account
    with gateway.client() as client:
        events = stream_run(client, run_url(account_id, model), token, body)
    assert events.text == whole["response"]
    assert events.json_events[-1]["usage"] == whole["usage"]


def test_completion_tokens_equal_the_tokens_the_backend_generated(
    gateway: GatewayProcess, account: tuple[str, str], triton: TritonServer
) -> None:
    before = twin_metric(
        triton,
        "cpu_twin_generated_tokens_total",
        model=ENGINE_SPECS["fp16"].generation_model,
    )
    usage = run(gateway, account, {"prompt": "count", "max_tokens": 33, "seed": 9}, FP16).json()[
        "result"
    ]["usage"]
    generated = (
        twin_metric(
            triton,
            "cpu_twin_generated_tokens_total",
            model=ENGINE_SPECS["fp16"].generation_model,
        )
        - before
    )
    assert usage["completion_tokens"] in (
        generated,
        generated - 1,
    )  # an end token is generated but not sent


def test_messages_are_rendered_with_the_llama2_chat_template(
    gateway: GatewayProcess, account: tuple[str, str], tokenizer: ModelTokenizer
) -> None:
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    usage = run(gateway, account, {"messages": messages, "max_tokens": 4}).json()["result"]["usage"]
    expected = tokenizer.encode_chat([ChatMessage(m["role"], m["content"]) for m in messages])
    assert usage["prompt_tokens"] == len(expected)


def test_raw_prompt_skips_the_chat_template(
    gateway: GatewayProcess, account: tuple[str, str], tokenizer: ModelTokenizer
) -> None:
    usage = run(gateway, account, {"prompt": "hi", "raw": True, "max_tokens": 4}).json()["result"][
        "usage"
    ]
    assert usage["prompt_tokens"] == len(tokenizer.encode_raw("hi"))


def test_model_search_lists_the_catalog_with_limits(
    gateway: GatewayProcess, account: tuple[str, str]
) -> None:
    account_id, token = account
    with gateway.client() as client:
        reply = client.get(
            f"/client/v4/accounts/{account_id}/ai/models/search", headers=bearer(token)
        )
    models = {model["name"]: model for model in reply.json()["result"]}
    assert reply.status_code == 200
    assert (models[INT8]["context_length"], models[INT8]["sequence_length"]) == (2048, 1800)
    assert (models[FP16]["context_length"], models[FP16]["sequence_length"]) == (3072, 2500)
    assert models[INT8]["task"] == "Text Generation"
    assert models[FP16]["precision"] == "fp16"


def disconnect_after_first_event(
    gateway: GatewayProcess, path: str, token: str, body: bytes
) -> None:
    """A client that reads the first event and then closes its socket, as a browser tab does."""
    host, port = gateway.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        received = b""
        while b"data: " not in received:
            chunk = connection.recv(4096)
            assert chunk, f"connection closed before the first event: {received!r}"
            received += chunk


def runs_ended_early(triton: TritonServer) -> float:
    """Generations the twin ended before their end: cancelled, or stopped by request id."""
    return sum(
        twin_metric(triton, "cpu_twin_requests_total", outcome=outcome)
        for outcome in ("cancelled", "stop")
    )


def assert_ended_within_a_second(triton: TritonServer, before: float, since: float) -> None:
    while runs_ended_early(triton) == before:
        assert time.monotonic() - since < 5, "the backend was never cancelled"
        time.sleep(0.02)
    assert time.monotonic() - since < 1.0, (
        f"cancelled only {time.monotonic() - since:.2f}s after the disconnect"
    )


def test_client_disconnect_cancels_the_backend_request_within_a_second(
    gateway: GatewayProcess, account: tuple[str, str], triton: TritonServer
) -> None:
    before = runs_ended_early(triton)
    account_id, token = account
    body = json.dumps({**LONG_FP16_RUN, "stream": True}).encode()
    disconnect_after_first_event(gateway, run_url(account_id, FP16), token, body)
    assert_ended_within_a_second(triton, before, time.monotonic())


def test_a_non_streamed_run_whose_client_disconnects_is_cancelled_within_a_second(
    gateway: GatewayProcess, account: tuple[str, str], triton: TritonServer
) -> None:
    before = runs_ended_early(triton)
    abandon_run(gateway, account, LONG_FP16_RUN, FP16)
    assert_ended_within_a_second(triton, before, time.monotonic())
