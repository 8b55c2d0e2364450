"""The official `openai` SDK against the gateway, at both base URLs, on the embedded default
(SmolLM2-135M-Instruct in both twins), as an application developer calls it."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest
from openai.types.chat import ChatCompletionChunk

from llm_contract.engines import ENGINE_SPECS
from local_runtime.triton_server import TritonServer
from tests.accounting import new_account, run, twin_metric, wait_for_records
from tests.gateway_fixtures import GatewayProcess

pytestmark = pytest.mark.triton

INT8 = "@twin/smollm2-135m-instruct/llama-2-7b-chat-int8"
FP16 = "@twin/smollm2-135m-instruct/llama-2-7b-chat-fp16"
MINILM = "@twin/all-minilm-l6-v2/bge-small-en-v1.5"
GREEDY = {"temperature": 0, "max_tokens": 48}
FRANCE = [{"role": "user", "content": "What is the capital of France?"}]
STORY = [{"role": "user", "content": "Write a long story about a dragon who learns to bake."}]


@pytest.fixture(scope="module")
def account(smollm2_gateway: GatewayProcess) -> tuple[str, str]:
    return new_account(smollm2_gateway)


def base_urls(gateway: GatewayProcess, account_id: str) -> dict[str, str]:
    return {
        "account": f"{gateway.base_url}/client/v4/accounts/{account_id}/ai/v1",
        "token": f"{gateway.base_url}/v1",
    }


@pytest.fixture(params=["account", "token"])
def client(
    request: pytest.FixtureRequest, smollm2_gateway: GatewayProcess, account: tuple[str, str]
) -> Iterator[openai.OpenAI]:
    """The SDK at one of the two base URLs; no retries, so that each refusal is seen once."""
    account_id, token = account
    base_url = base_urls(smollm2_gateway, account_id)[request.param]
    with openai.OpenAI(base_url=base_url, api_key=token, max_retries=0) as sdk:
        yield sdk


def sdk_for(
    gateway: GatewayProcess, account: tuple[str, str], max_retries: int = 0
) -> openai.OpenAI:
    """The SDK at `/v1`; no retries unless asked, so that each refusal is seen once."""
    return openai.OpenAI(
        base_url=f"{gateway.base_url}/v1", api_key=account[1], max_retries=max_retries
    )


@pytest.fixture
def sdk(smollm2_gateway: GatewayProcess, account: tuple[str, str]) -> Iterator[openai.OpenAI]:
    """The SDK at `/v1`, for what does not depend on the base URL."""
    with sdk_for(smollm2_gateway, account) as client:
        yield client


def test_models_list_names_every_catalog_model_with_its_limits(client: openai.OpenAI) -> None:
    models = {model.id: model for model in client.models.list()}
    assert set(models) == {INT8, FP16, MINILM}
    int8 = models[INT8]
    assert int8.object == "model"
    assert int8.owned_by
    limits = ENGINE_SPECS["int8"].limits
    assert int8.model_extra == {
        "context_length": limits.max_input_len,
        "max_output_tokens": limits.max_output_len,
        "task": "Text Generation",
        "dimensions": None,
    }
    assert models[MINILM].model_extra == {
        "context_length": 512,
        "max_output_tokens": None,
        "task": "Text Embeddings",
        "dimensions": 384,
    }


def test_a_model_is_retrieved_by_its_id(client: openai.OpenAI) -> None:
    assert client.models.retrieve(FP16).id == FP16


def test_retrieving_an_unknown_model_is_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as refused:
        client.models.retrieve("@cf/no/such-model")
    assert refused.value.code == "model_not_found"


def test_a_chat_completion_answers_with_the_fact_and_exact_usage(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model=INT8, messages=FRANCE, **GREEDY)  # type: ignore[arg-type]
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == INT8
    [choice] = completion.choices
    assert choice.message.role == "assistant"
    assert "Paris" in (choice.message.content or "")
    assert choice.finish_reason == "stop"
    usage = completion.usage
    assert usage is not None
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert 0 < usage.completion_tokens < GREEDY["max_tokens"]


def test_the_chat_answer_and_usage_equal_the_workers_ai_runs_for_the_same_messages(
    smollm2_gateway: GatewayProcess, account: tuple[str, str], sdk: openai.OpenAI
) -> None:
    completion = sdk.chat.completions.create(model=FP16, messages=FRANCE, **GREEDY)  # type: ignore[arg-type]
    workers_ai = run(smollm2_gateway, account, {"messages": FRANCE, **GREEDY}, FP16).json()
    assert completion.choices[0].message.content == workers_ai["result"]["response"]
    assert completion.usage is not None
    assert completion.usage.model_dump() == {
        **workers_ai["result"]["usage"],
        "completion_tokens_details": None,
        "prompt_tokens_details": None,
    }


def stream_chat(client: openai.OpenAI, **body: object) -> list[ChatCompletionChunk]:
    stream = client.chat.completions.create(model=INT8, stream=True, **body)  # type: ignore[call-overload]
    return list(stream)


def test_streamed_chat_deltas_join_to_the_answer_and_end_with_the_usage(
    client: openai.OpenAI,
) -> None:
    whole = client.chat.completions.create(model=INT8, messages=FRANCE, **GREEDY)  # type: ignore[arg-type]
    chunks = stream_chat(client, messages=FRANCE, stream_options={"include_usage": True}, **GREEDY)
    assert len({(chunk.id, chunk.created, chunk.model) for chunk in chunks}) == 1
    assert chunks[0].id.startswith("chatcmpl-")
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    *choice_chunks, usage_chunk = chunks
    text = "".join(chunk.choices[0].delta.content or "" for chunk in choice_chunks)
    assert text == whole.choices[0].message.content
    assert [chunk.choices[0].finish_reason for chunk in choice_chunks][-1] == "stop"
    assert all(chunk.choices[0].finish_reason is None for chunk in choice_chunks[:-1])
    assert all(chunk.usage is None for chunk in choice_chunks)
    assert usage_chunk.choices == []
    assert usage_chunk.usage == whole.usage


def test_without_include_usage_no_chunk_carries_usage(sdk: openai.OpenAI) -> None:
    chunks = stream_chat(sdk, messages=FRANCE, **GREEDY)
    assert all(chunk.choices for chunk in chunks)
    assert all(chunk.usage is None for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_an_answer_cut_at_max_tokens_finishes_with_length(sdk: openai.OpenAI) -> None:
    completion = sdk.chat.completions.create(
        model=INT8, messages=STORY, temperature=0, max_completion_tokens=5
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 5


def test_a_completion_continues_the_prompt_as_it_is(client: openai.OpenAI) -> None:
    completion = client.completions.create(
        model=INT8, prompt="The capital of France is", temperature=0, max_tokens=8
    )
    assert completion.object == "text_completion"
    assert completion.id.startswith("cmpl-")
    assert "Paris" in completion.choices[0].text
    streamed = list(
        client.completions.create(
            model=INT8,
            prompt="The capital of France is",
            temperature=0,
            max_tokens=8,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].text for c in streamed if c.choices) == completion.choices[0].text
    assert streamed[-1].usage == completion.usage


def test_completions_default_to_16_tokens_as_openai_does(sdk: openai.OpenAI) -> None:
    completion = sdk.completions.create(model=INT8, prompt="Once upon a time", seed=3)
    assert completion.usage is not None
    assert completion.usage.completion_tokens <= 16


def story_stop(client: openai.OpenAI) -> tuple[str, str]:
    """A greedy story's start, and a stop string from its middle that spans words (tokens)."""
    completion = client.chat.completions.create(
        model=FP16, messages=STORY, temperature=0, max_tokens=40
    )
    start = completion.choices[0].message.content or ""
    stop = start[30:42]
    assert " " in stop.strip()
    return start, stop


def test_a_stop_string_ends_the_text_before_it_streamed_or_not(sdk: openai.OpenAI) -> None:
    start, stop = story_stop(sdk)
    expected = start[: start.index(stop)]
    cut = sdk.chat.completions.create(
        model=FP16, messages=STORY, temperature=0, max_tokens=400, stop=[stop, "zzzz"]
    )
    assert cut.choices[0].message.content == expected
    assert cut.choices[0].finish_reason == "stop"
    chunks = list(
        sdk.chat.completions.create(
            model=FP16, messages=STORY, temperature=0, max_tokens=400, stop=stop, stream=True
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == expected
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_a_stop_string_stops_the_backend_and_bills_what_was_generated_until_it(
    smollm2_gateway: GatewayProcess,
    smollm2_triton: TritonServer,
    sdk: openai.OpenAI,
) -> None:
    _, stop = story_stop(sdk)
    model = ENGINE_SPECS["fp16"].generation_model
    before = twin_metric(smollm2_triton, "cpu_twin_generated_tokens_total", model=model)
    cut = sdk.chat.completions.create(
        model=FP16, messages=STORY, temperature=0, max_tokens=400, stop=stop
    )
    generated = twin_metric(smollm2_triton, "cpu_twin_generated_tokens_total", model=model) - before
    assert cut.usage is not None
    billed = cut.usage.completion_tokens
    assert billed < 20
    assert billed <= generated <= billed + 8, "the backend stopped soon after the stop string"
    [record] = wait_for_records(smollm2_gateway, 1, request_id=cut.id.removeprefix("chatcmpl-"))
    assert record["completion_tokens"] == billed
