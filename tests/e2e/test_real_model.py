"""The embedded default answers: both twins run SmolLM2-135M-Instruct, gateway → tritonserver.

Greedy answers to simple questions are checked for their fact; the model is small, so the
questions are the kind it gets right, and the checks look for the fact, not the wording.
"""

from __future__ import annotations

import pytest

from tests.accounting import new_account, run, run_url
from tests.e2e.sse import stream_run
from tests.gateway_fixtures import GatewayProcess

pytestmark = pytest.mark.triton

INT8 = "@twin/smollm2-135m-instruct/llama-2-7b-chat-int8"
FP16 = "@twin/smollm2-135m-instruct/llama-2-7b-chat-fp16"
MODELS = [INT8, FP16]
"""Both twins run the same model: the int8 one answers in the test of the turn's end, the
others ask the fp16 one."""
GREEDY = {"temperature": 0, "max_tokens": 64}


@pytest.fixture(scope="module")
def account(smollm2_gateway: GatewayProcess) -> tuple[str, str]:
    return new_account(smollm2_gateway)


def answer(gateway: GatewayProcess, account: tuple[str, str], model: str, **body: object) -> dict:  # type: ignore[type-arg]
    reply = run(gateway, account, {**GREEDY, **body}, model)
    assert reply.status_code == 200, reply.text
    return reply.json()["result"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("question", "fact"),
    [
        ("What is the capital of France?", "Paris"),
        ("What is the capital of Japan?", "Tokyo"),
        ("What color is the sky on a clear day?", "blue"),
    ],
)
def test_greedy_answers_to_simple_questions_are_right(
    smollm2_gateway: GatewayProcess, account: tuple[str, str], question: str, fact: str
) -> None:
    result = answer(smollm2_gateway, account, FP16, prompt=question)
    assert fact.lower() in result["response"].lower(), result["response"]


@pytest.mark.parametrize("model", MODELS)
def test_answers_stop_by_themselves_at_the_end_of_the_turn(
    smollm2_gateway: GatewayProcess, account: tuple[str, str], model: str
) -> None:
    result = answer(smollm2_gateway, account, model, prompt="What is the capital of France?")
    assert result["usage"]["completion_tokens"] < GREEDY["max_tokens"]
    assert "<|im_end|>" not in result["response"]


def test_the_model_hears_the_system_message(
    smollm2_gateway: GatewayProcess, account: tuple[str, str]
) -> None:
    messages = [
        {"role": "system", "content": "Always answer with one word: the word 'banana'."},
        {"role": "user", "content": "What fruit is yellow and long?"},
    ]
    result = answer(smollm2_gateway, account, FP16, messages=messages)
    assert "banana" in result["response"].lower(), result["response"]


def test_earlier_chat_turns_reach_the_model(
    smollm2_gateway: GatewayProcess, account: tuple[str, str]
) -> None:
    messages = [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Nice to meet you, Ada!"},
        {"role": "user", "content": "What is my name?"},
    ]
    result = answer(smollm2_gateway, account, FP16, messages=messages)
    assert "Ada" in result["response"], result["response"]


@pytest.mark.parametrize(
    "prompt",
    [
        "Write one sentence about the sea.",
        "日本語で「こんにちは」と書いてください。",
        "用中文说你好。",
    ],
)
def test_streamed_text_equals_the_whole_text_for_the_same_seed(
    smollm2_gateway: GatewayProcess, account: tuple[str, str], prompt: str
) -> None:
    body = {"prompt": prompt, "max_tokens": 32, "seed": 11, "temperature": 0.8}
    whole = answer(smollm2_gateway, account, FP16, **body)
    account_id, token = account
    with smollm2_gateway.client() as client:
        events = stream_run(client, run_url(account_id, FP16), token, body)
    assert events.text == whole["response"]
    assert "\ufffd" not in events.text
    assert events.json_events[-1]["usage"] == whole["usage"]


def test_a_chinese_answer_streams_as_whole_characters(
    smollm2_gateway: GatewayProcess, account: tuple[str, str]
) -> None:
    account_id, token = account
    body = {"prompt": "请用中文回答:中国的首都是哪里?", **GREEDY}
    with smollm2_gateway.client() as client:
        events = stream_run(client, run_url(account_id, FP16), token, body)
    pieces = [str(event["response"]) for event in events.json_events]
    assert any("\u4e00" <= char <= "\u9fff" for char in events.text), events.text
    assert not any("\ufffd" in piece for piece in pieces)
