"""The OpenAI API's bytes on the wire, its usage records and metrics, as a raw HTTP client sees
them: the same pipeline as Workers AI's run, on both databases."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.accounting import INT8, bearer, gateway_metric, new_account, run, wait_for_records
from tests.e2e.sse import stream_run
from tests.e2e.test_openai_sdk import sdk_for
from tests.gateway_fixtures import GatewayProcess

pytestmark = pytest.mark.triton

HELLO = [{"role": "user", "content": "hello"}]


def chat_url(account_id: str) -> str:
    return f"/client/v4/accounts/{account_id}/ai/v1/chat/completions"


def test_a_chat_stream_is_chunks_then_usage_then_done_as_openai_sends_them(
    gateway: GatewayProcess, account: tuple[str, str]
) -> None:
    account_id, token = account
    body = {
        "model": INT8,
        "messages": HELLO,
        "max_tokens": 12,
        "seed": 3,
        "stream_options": {"include_usage": True},
    }
    with gateway.client() as client:
        events = stream_run(client, chat_url(account_id), token, body)
    assert events.status_code == 200
    assert events.headers["content-type"].startswith("text/event-stream")
    assert events.raw.endswith(b"\n\ndata: [DONE]\n\n")
    assert events.ids == []
    chunks = events.json_events
    request_id = events.headers["x-request-id"]
    for chunk in chunks:
        assert chunk["id"] == f"chatcmpl-{request_id}"
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["model"] == INT8
        assert set(chunk) == {"id", "object", "created", "model", "choices", "usage"}
    assert len({chunk["created"] for chunk in chunks}) == 1
    first, *middle, last_choice, usage = chunks
    assert first["choices"] == [
        {
            "index": 0,
            "delta": {"role": "assistant", "content": ""},
            "logprobs": None,
            "finish_reason": None,
        }
    ]
    assert all(set(chunk["choices"][0]["delta"]) == {"content"} for chunk in middle)  # type: ignore[index]
    assert last_choice["choices"][0]["delta"] == {}  # type: ignore[index]
    assert last_choice["choices"][0]["finish_reason"] in ("stop", "length")  # type: ignore[index]
    assert all(chunk["usage"] is None for chunk in chunks[:-1])
    assert usage["choices"] == []
    counts = usage["usage"]
    assert isinstance(counts, dict)
    assert counts["total_tokens"] == counts["prompt_tokens"] + counts["completion_tokens"]


def test_a_completion_stream_carries_text_choices(
    gateway: GatewayProcess, account: tuple[str, str]
) -> None:
    account_id, token = account
    url = f"/client/v4/accounts/{account_id}/ai/v1/completions"
    body = {"model": INT8, "prompt": "Once", "max_tokens": 6, "seed": 1}
    with gateway.client() as client:
        events = stream_run(client, url, token, body)
        whole = client.post(url, json=body, headers=bearer(token)).json()
    chunks = events.json_events
    assert all(chunk["object"] == "text_completion" for chunk in chunks)
    assert all(set(chunk) == {"id", "object", "created", "model", "choices"} for chunk in chunks)
    text = "".join(chunk["choices"][0]["text"] for chunk in chunks)  # type: ignore[index]
    assert text == whole["choices"][0]["text"]
    assert chunks[-1]["choices"][0]["finish_reason"] == whole["choices"][0]["finish_reason"]  # type: ignore[index]


def test_runs_by_the_openai_api_are_billed_and_limited_as_workers_ai_runs_are(
    gateway: GatewayProcess,
) -> None:
    account = new_account(gateway, tokens_per_minute=1000)
    account_id, token = account
    body = {"max_tokens": 10, "seed": 8}
    workers_ai = run(gateway, account, {"messages": HELLO, **body})
    with gateway.client() as client:
        openai_body = {"model": INT8, "messages": HELLO, **body}
        openai_reply = client.post(chat_url(account_id), json=openai_body, headers=bearer(token))
    assert workers_ai.json()["result"]["usage"] == openai_reply.json()["usage"]
    for reply in (workers_ai, openai_reply):
        assert reply.headers["x-ratelimit-limit-tokens"] == "1000"
    records = wait_for_records(gateway, 2, account_id=account_id)
    by_id = {record["request_id"]: record for record in records}
    for reply, usage in (
        (workers_ai, workers_ai.json()["result"]["usage"]),
        (openai_reply, openai_reply.json()["usage"]),
    ):
        record = by_id[reply.headers["x-request-id"]]
        assert record["status"] == "ok"
        assert record["model"] == INT8
        assert (record["prompt_tokens"], record["completion_tokens"]) == (
            usage["prompt_tokens"],
            usage["completion_tokens"],
        )
    with gateway.client() as client:
        report = client.get(
            f"/client/v4/accounts/{account_id}/ai/usage",
            params={"group_by": "model"},
            headers=bearer(token),
        ).json()["result"]
    [row] = report["rows"]
    assert row["requests"] == 2


def test_the_request_metric_counts_runs_by_api(gateway: GatewayProcess) -> None:
    account = new_account(gateway)
    before = gateway_metric(gateway, "gateway_requests_total", api="openai", status="ok")
    with sdk_for(gateway, account) as sdk:
        sdk.chat.completions.create(model=INT8, messages=HELLO, max_tokens=2)  # type: ignore[arg-type]
    after = gateway_metric(gateway, "gateway_requests_total", api="openai", status="ok")
    assert after == before + 1


def test_a_client_that_leaves_a_stream_cancels_its_run(gateway: GatewayProcess) -> None:
    account = new_account(gateway)
    with sdk_for(gateway, account) as sdk:
        stream = sdk.chat.completions.create(
            model=INT8, messages=HELLO, max_tokens=1500, seed=4, stream=True
        )
        request_id = stream.response.headers["x-request-id"]
        for _, _ in zip(range(3), stream, strict=False):
            pass
        stream.close()
    [record] = wait_for_records(gateway, 1, request_id=request_id)
    deadline = time.monotonic() + 10
    while record["status"] != "client_cancelled" and time.monotonic() < deadline:
        [record] = wait_for_records(gateway, 1, request_id=request_id)
    assert record["status"] == "client_cancelled"
    assert 0 < int(record["completion_tokens"]) < 1500  # type: ignore[call-overload]


def test_the_sdk_reads_the_request_id_of_each_run(gateway: GatewayProcess) -> None:
    account = new_account(gateway)
    with sdk_for(gateway, account) as sdk:
        completion = sdk.chat.completions.create(model=INT8, messages=HELLO, max_tokens=2)  # type: ignore[arg-type]
    assert completion._request_id == completion.id.removeprefix("chatcmpl-")


def test_the_json_error_body_is_openai_shaped_without_the_sdk(
    gateway: GatewayProcess, account: tuple[str, str]
) -> None:
    reply = httpx.post(
        f"{gateway.base_url}/v1/chat/completions",
        content=b"{not json",
        headers={**bearer(account[1]), "content-type": "application/json"},
    )
    assert reply.status_code == 400
    error = json.loads(reply.content)["error"]
    assert error["type"] == "invalid_request_error"
    assert "JSON" in error["message"]
