"""Reading and checking a request's TensorRT-LLM input tensors."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from build_engines.cpu_twin.generation_request import (
    GenerationRequest,
    RequestError,
    StopRequest,
    read_request,
)
from llm_contract import trtllm_backend
from tests.build_engines.cpu_twin.doubles import (
    PROMPT,
    SMALL_CONFIG,
    stop_words_list,
    triton_request,
)
from tests.python_backend_doubles import FakeRequest, FakeTensor


def read_fake(request: FakeRequest) -> GenerationRequest | StopRequest:
    def tensor(name: str) -> npt.NDArray[Any] | None:
        return request.inputs[name].as_numpy() if name in request.inputs else None

    return read_request(tensor, request.request_id(), SMALL_CONFIG)


def read(
    input_ids: list[int], output_len: int, request_id: str = "", **optional: Any
) -> GenerationRequest | StopRequest:
    return read_fake(triton_request(input_ids, output_len, request_id, **optional))


def test_input_over_the_context_length_names_the_excess() -> None:
    with pytest.raises(RequestError) as raised:
        read([5] * 65, 4)
    assert (
        str(raised.value) == "input length 65 exceeds the model's context length of 64 tokens by 1"
    )


def test_output_over_the_maximum_names_the_excess() -> None:
    with pytest.raises(RequestError) as raised:
        read(PROMPT, 201)
    assert (
        str(raised.value)
        == "request_output_len 201 exceeds the model's maximum output of 200 tokens by 1"
    )


@pytest.mark.parametrize(
    ("input_ids", "output_len", "optional", "message"),
    [
        ([], 4, {}, "input_ids is empty"),
        (PROMPT, 0, {}, "request_output_len must be at least 1, got 0"),
        ([1, 300], 4, {}, r"token 300, outside the vocabulary \[0, 300\)"),
        ([1, -1], 4, {}, "token -1, outside the vocabulary"),
        (PROMPT, 4, {"beam_width": 2}, "beam_width 2 is not supported"),
        (PROMPT, 4, {"temperature": -1.0}, "temperature must be at least 0"),
    ],
)
def test_invalid_requests_are_rejected_clearly(
    input_ids: list[int], output_len: int, optional: dict[str, Any], message: str
) -> None:
    with pytest.raises(RequestError, match=message):
        read(input_ids, output_len, **optional)


def test_input_lengths_must_agree_with_the_input_ids() -> None:
    request = triton_request(PROMPT, 4)
    request.inputs["input_lengths"] = FakeTensor("input_lengths", np.array([3], np.int32))
    with pytest.raises(RequestError, match="input_lengths 3 disagrees with the 8 input_ids"):
        read_fake(request)


def test_stop_words_list_is_split_at_its_offsets() -> None:
    parsed = read(PROMPT, 4, stop_words_list=stop_words_list([[7, 8], [9], [10, 11, 12]]))
    assert isinstance(parsed, GenerationRequest)
    assert parsed.stop_words == ((7, 8), (9,), (10, 11, 12))


def test_defaults_decode_greedily_and_include_the_input_when_not_streaming() -> None:
    parsed = read(PROMPT, 4)
    assert isinstance(parsed, GenerationRequest)
    assert parsed.sampling.greedy
    assert parsed.include_input
    streamed = read(PROMPT, 4, streaming=True)
    assert isinstance(streamed, GenerationRequest)
    assert not streamed.include_input


def test_a_temperature_alone_samples_from_the_whole_distribution() -> None:
    parsed = read(PROMPT, 4, temperature=1.0, seed=7)
    assert isinstance(parsed, GenerationRequest)
    assert not parsed.sampling.greedy
    assert (parsed.sampling.seed, parsed.sampling.top_k, parsed.sampling.top_p) == (7, 0, 1.0)


def test_a_stop_request_needs_only_its_id() -> None:
    assert read(PROMPT, 4, "r1", stop=True) == StopRequest("r1")
    with pytest.raises(RequestError, match="needs the request id"):
        read(PROMPT, 4, "", stop=True)


def test_the_twin_reads_upstreams_input_names_and_no_others() -> None:
    asked: list[str] = []
    request = triton_request(PROMPT, 4, temperature=1.0, seed=7, min_tokens=2)

    def tensor(name: str) -> npt.NDArray[Any] | None:
        asked.append(name)
        return request.inputs[name].as_numpy() if name in request.inputs else None

    parsed = read_request(tensor, "", SMALL_CONFIG)
    assert isinstance(parsed, GenerationRequest)
    assert (parsed.sampling.seed, parsed.min_tokens) == (7, 2)
    assert {"seed", "min_tokens"} <= set(asked) <= trtllm_backend.INPUT_NAMES
