"""OpenAI's bodies as runs: what maps onto the pipeline (the rest is refused, see e2e)."""

from __future__ import annotations

import msgspec
import pytest

from gateway.errors import ApiError
from gateway.inference.chat_template import ChatMessage
from gateway.openai_api import requests, schemas


def chat(**fields: object) -> schemas.ChatCompletionRequest:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}
    return msgspec.convert(body, schemas.ChatCompletionRequest)


def test_max_completion_tokens_is_the_runs_max_tokens() -> None:
    assert requests.chat_run(chat(max_completion_tokens=7)).sampling.max_tokens == 7


def test_without_a_maximum_the_run_takes_the_models_own() -> None:
    assert requests.chat_run(chat()).sampling.max_tokens is None


def test_different_max_tokens_and_max_completion_tokens_are_refused() -> None:
    with pytest.raises(ApiError) as refused:
        requests.chat_run(chat(max_tokens=5, max_completion_tokens=6))
    assert refused.value.param == "max_completion_tokens"


def test_text_parts_join_with_newlines_and_developer_is_the_system_role() -> None:
    parts = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    request = requests.chat_run(
        chat(
            messages=[
                {"role": "developer", "content": "Be brief."},
                {"role": "user", "content": parts},
            ]
        )
    )
    assert request.messages == [ChatMessage("system", "Be brief."), ChatMessage("user", "a\nb")]


def test_sampling_options_keep_their_names() -> None:
    sampling = requests.chat_run(
        chat(temperature=0.5, top_p=0.9, seed=4, frequency_penalty=1, presence_penalty=-1)
    ).sampling
    assert (sampling.temperature, sampling.top_p, sampling.seed) == (0.5, 0.9, 4)
    assert (sampling.frequency_penalty, sampling.presence_penalty) == (1, -1)
    assert sampling.top_k is None


def test_one_stop_string_or_a_list_of_them() -> None:
    assert requests.chat_run(chat(stop="x")).stop == ("x",)
    assert requests.chat_run(chat(stop=["x", "y"])).stop == ("x", "y")


def test_a_completion_prompt_is_sent_raw() -> None:
    body = msgspec.convert({"model": "m", "prompt": ["Once"]}, schemas.CompletionRequest)
    request = requests.completion_run(body)
    assert (request.raw_prompt, request.messages) == ("Once", None)
    assert request.sampling.max_tokens == 16
