"""The CPU twin in a real tritonserver, over gRPC streaming: TensorRT-LLM's contract."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable

import numpy as np
import pytest
import tritonclient.grpc.aio as triton_grpc
from prometheus_client.parser import text_string_to_metric_families

from llm_contract.engines import ENGINE_SPECS
from local_runtime.triton_server import TritonServer
from tests.backend.twin_client import (
    StreamOutcome,
    generation_inputs,
    stream_generation,
    tensor,
)

pytestmark = pytest.mark.triton
INT8 = ENGINE_SPECS["int8"].generation_model
FP16 = ENGINE_SPECS["fp16"].generation_model
PROMPT = [1, 450, 496, 173, 170, 299, 432, 172]


@pytest.fixture
async def client(triton: TritonServer) -> AsyncIterator[triton_grpc.InferenceServerClient]:
    grpc_client = triton_grpc.InferenceServerClient(triton.grpc_url)
    yield grpc_client
    await grpc_client.close()


def twin_metric(triton: TritonServer, name: str, **labels: str) -> float:
    with urllib.request.urlopen(triton.metrics_url) as reply:  # noqa: S310 (http only)
        text = reply.read().decode()
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


async def test_streaming_sends_one_response_per_token_then_ends(
    client: triton_grpc.InferenceServerClient,
) -> None:
    outcome = await stream_generation(client, INT8, generation_inputs(PROMPT[:3], 8))
    assert outcome.error is None
    assert [len(response.token_ids) for response in outcome.responses] == [1] * 8
    assert outcome.responses[-1].final
    assert not any(response.final for response in outcome.responses[:-1])


@pytest.mark.parametrize("model", [INT8, FP16])
async def test_request_output_len_is_honoured(
    client: triton_grpc.InferenceServerClient, model: str
) -> None:
    outcome = await stream_generation(client, model, generation_inputs(PROMPT, 17))
    assert len(outcome.token_ids) == 17


async def test_end_id_stops_generation_before_the_end_token(
    client: triton_grpc.InferenceServerClient,
) -> None:
    greedy = (await stream_generation(client, INT8, generation_inputs(PROMPT, 12))).token_ids
    end_at = next(i for i, token in enumerate(greedy) if token not in greedy[:i] and i >= 2)
    outcome = await stream_generation(
        client, INT8, generation_inputs(PROMPT, 12, end_id=greedy[end_at])
    )
    assert outcome.token_ids == greedy[:end_at]


async def test_stop_words_end_the_request_after_the_stop_sequence(
    client: triton_grpc.InferenceServerClient,
) -> None:
    greedy = (await stream_generation(client, INT8, generation_inputs(PROMPT, 12))).token_ids
    stop_at = next(
        i
        for i in range(3, 12)
        if greedy[i - 1 : i + 1] not in [greedy[j - 1 : j + 1] for j in range(1, i)]
    )
    outcome = await stream_generation(
        client, INT8, generation_inputs(PROMPT, 12, stop_words=[greedy[stop_at - 1 : stop_at + 1]])
    )
    assert outcome.token_ids == greedy[: stop_at + 1]


async def test_same_seed_gives_the_same_tokens_and_another_seed_differs(
    client: triton_grpc.InferenceServerClient,
) -> None:
    def sampled(seed: int) -> Awaitable[StreamOutcome]:
        return stream_generation(
            client, FP16, generation_inputs(PROMPT, 24, temperature=1.0, seed=seed)
        )

    first, again, other = await asyncio.gather(sampled(7), sampled(7), sampled(8))
    assert first.token_ids == again.token_ids
    assert first.token_ids != other.token_ids


async def test_greedy_outputs_differ_between_prompts(
    client: triton_grpc.InferenceServerClient,
) -> None:
    one = await stream_generation(client, INT8, generation_inputs(PROMPT, 10))
    two = await stream_generation(client, INT8, generation_inputs([1, 900, 901, 902], 10))
    assert one.token_ids != two.token_ids


async def test_a_new_request_starts_while_32_others_are_generating(
    client: triton_grpc.InferenceServerClient,
) -> None:
    started = time.monotonic()
    long_streams = [
        asyncio.create_task(stream_generation(client, INT8, generation_inputs(PROMPT, 400)))
        for _ in range(31)
    ]
    await asyncio.sleep(0.3)
    last = await stream_generation(client, INT8, generation_inputs(PROMPT, 4))
    others = await asyncio.gather(*long_streams)
    first_to_finish = min(outcome.responses[-1].arrived_at for outcome in others)
    assert all(len(outcome.token_ids) == 400 for outcome in others)
    assert last.responses[0].arrived_at < first_to_finish, (
        f"last request's first token at {last.responses[0].arrived_at - started:.2f}s, "
        f"first long stream done at {first_to_finish - started:.2f}s"
    )


async def test_cancelling_the_grpc_stream_stops_generation(
    client: triton_grpc.InferenceServerClient, triton: TritonServer
) -> None:
    cancelled_before = twin_metric(triton, "cpu_twin_requests_total", outcome="cancelled")
    tokens_before = twin_metric(triton, "cpu_twin_generated_tokens_total", model=INT8)
    outcome = await stream_generation(
        client, INT8, generation_inputs(PROMPT, 1800), request_id="cancel-me", stop_after_tokens=3
    )
    deadline = time.monotonic() + 5
    while twin_metric(triton, "cpu_twin_requests_total", outcome="cancelled") == cancelled_before:
        assert time.monotonic() < deadline, "the twin never reported the cancellation"
        await asyncio.sleep(0.05)
    generated = twin_metric(triton, "cpu_twin_generated_tokens_total", model=INT8) - tokens_before
    assert len(outcome.token_ids) == 3
    assert generated < 1800
    assert "cancelled" in triton.log_text()


@pytest.mark.parametrize("model", [INT8, FP16])
async def test_input_over_the_context_length_is_rejected_with_the_excess(
    client: triton_grpc.InferenceServerClient, model: str
) -> None:
    limit = ENGINE_SPECS["int8" if model == INT8 else "fp16"].limits.max_input_len
    outcome = await stream_generation(client, model, generation_inputs([5] * (limit + 1), 4))
    assert outcome.error is not None
    assert (
        f"input length {limit + 1} exceeds the model's context length of {limit} tokens by 1"
        in outcome.error
    )


@pytest.mark.parametrize("model", [INT8, FP16])
async def test_output_over_the_sequence_length_is_rejected_with_the_excess(
    client: triton_grpc.InferenceServerClient, model: str
) -> None:
    limit = ENGINE_SPECS["int8" if model == INT8 else "fp16"].limits.max_output_len
    outcome = await stream_generation(client, model, generation_inputs(PROMPT, limit + 1))
    assert outcome.error is not None
    assert (
        f"request_output_len {limit + 1} exceeds the model's maximum output of {limit} tokens by 1"
        in outcome.error
    )


async def test_model_keeps_serving_after_rejecting_a_request(
    client: triton_grpc.InferenceServerClient,
) -> None:
    await stream_generation(client, INT8, generation_inputs([5] * 5000, 4))
    outcome = await stream_generation(client, INT8, generation_inputs(PROMPT, 3))
    assert len(outcome.token_ids) == 3


async def test_a_request_asking_for_output_ids_alone_fails_as_on_tensorrt_llm(
    client: triton_grpc.InferenceServerClient,
) -> None:
    outcome = await stream_generation(
        client, INT8, generation_inputs(PROMPT, 3), outputs=["output_ids"]
    )
    assert outcome.token_ids == []
    assert outcome.error is not None
    assert "sequence_length tensor must be present in list of output tensors" in outcome.error


async def test_a_request_asking_for_both_outputs_streams_them(
    client: triton_grpc.InferenceServerClient,
) -> None:
    outcome = await stream_generation(
        client, INT8, generation_inputs(PROMPT, 3), outputs=["output_ids", "sequence_length"]
    )
    assert outcome.error is None
    assert len(outcome.token_ids) == 3


@pytest.mark.parametrize(
    ("old_name", "dtype"), [("random_seed", "UINT64"), ("min_length", "INT32")]
)
async def test_inputs_tensorrt_llm_no_longer_reads_are_refused(
    client: triton_grpc.InferenceServerClient, old_name: str, dtype: str
) -> None:
    """Upstream's backend would take them and ignore them: here Triton refuses them."""
    value = np.uint64 if dtype == "UINT64" else np.int32
    inputs = [*generation_inputs(PROMPT, 3), tensor(old_name, 7, dtype, value)]
    outcome = await stream_generation(client, INT8, inputs)
    assert outcome.error is not None
    assert old_name in outcome.error
