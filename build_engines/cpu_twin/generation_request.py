"""Reading one request's TensorRT-LLM input tensors into a checked `GenerationRequest`.

Every limit is checked here, before the request reaches the generation thread, so a bad
request gets an immediate error naming the problem (with the same wording the gateway shows
for the real engine) and never costs a prefill.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from llm_contract import trtllm_backend

from .config import TwinConfig
from .sampling import SamplingParams

InputReader = Callable[[str], "npt.NDArray[np.generic] | None"]
"""Returns the named input tensor, or None when the request does not carry it."""

TokenSequence = tuple[int, ...]


class RequestError(ValueError):
    """The request cannot be served as sent; the message goes back to the client."""


@dataclass(frozen=True)
class GenerationRequest:
    """What to generate. `pad_id` is accepted and unused: outputs are never padded here."""

    request_id: str
    input_ids: npt.NDArray[np.int64]
    output_len: int
    streaming: bool
    include_input: bool
    sampling: SamplingParams
    end_id: int | None = None
    min_tokens: int = 0
    stop_words: tuple[TokenSequence, ...] = ()
    bad_words: tuple[TokenSequence, ...] = ()


@dataclass(frozen=True)
class StopRequest:
    """`stop` true: end the in-flight request with the same id."""

    request_id: str


def read_request(
    read: InputReader, request_id: str, config: TwinConfig
) -> GenerationRequest | StopRequest:
    """Read one request; raises `RequestError` with the message the client should see."""
    read = _contract_inputs(read)
    if _flag(read, "stop", default=False):
        if not request_id:
            raise RequestError("a stop request needs the request id of the request to stop")
        return StopRequest(request_id)
    input_ids = _input_ids(read, config)
    output_len = _required_int(read, "request_output_len")
    _check_output_len(output_len, config)
    beam_width = _optional_int(read, "beam_width")
    if beam_width not in (None, 1):
        raise RequestError(
            f"beam_width {beam_width} is not supported: the CPU twin uses beam width 1"
        )
    end_id = _optional_int(read, "end_id")
    streaming = _flag(read, "streaming", default=False)
    return GenerationRequest(
        request_id=request_id,
        input_ids=input_ids,
        output_len=output_len,
        streaming=streaming,
        include_input=not streaming
        and not _flag(read, "exclude_input_in_output", default=config.exclude_input_in_output),
        sampling=_sampling_params(read),
        end_id=end_id,
        min_tokens=max(0, _optional_int(read, "min_tokens") or 0),
        stop_words=_words_list(read, "stop_words_list"),
        bad_words=_words_list(read, "bad_words_list"),
    )


def _contract_inputs(read: InputReader) -> InputReader:
    """Read inputs by the backend contract's names only: a name outside it would be an input
    the real backend ignores (`random_seed`, which v0.19.0 read), so reading it is a bug."""

    def read_declared(name: str) -> npt.NDArray[np.generic] | None:
        if name not in trtllm_backend.INPUT_NAMES:
            raise LookupError(f"input {name!r} is not in the backend contract")
        return read(name)

    return read_declared


def _input_ids(read: InputReader, config: TwinConfig) -> npt.NDArray[np.int64]:
    tensor = read("input_ids")
    if tensor is None or tensor.size == 0:
        raise RequestError("input_ids is empty: the prompt needs at least one token")
    input_ids = tensor.reshape(-1).astype(np.int64)
    declared = _required_int(read, "input_lengths")
    if declared != len(input_ids):
        raise RequestError(
            f"input_lengths {declared} disagrees with the {len(input_ids)} input_ids sent"
        )
    excess = len(input_ids) - config.max_input_len
    if excess > 0:
        raise RequestError(
            f"input length {len(input_ids)} exceeds the model's context length of "
            f"{config.max_input_len} tokens by {excess}"
        )
    vocab_size = config.network.vocab_size
    outside = input_ids[(input_ids < 0) | (input_ids >= vocab_size)]
    if len(outside):
        raise RequestError(
            f"input_ids contain token {outside[0]}, outside the vocabulary [0, {vocab_size})"
        )
    return input_ids


def _check_output_len(output_len: int, config: TwinConfig) -> None:
    if output_len < 1:
        raise RequestError(f"request_output_len must be at least 1, got {output_len}")
    excess = output_len - config.max_output_len
    if excess > 0:
        raise RequestError(
            f"request_output_len {output_len} exceeds the model's maximum output of "
            f"{config.max_output_len} tokens by {excess}"
        )


def _sampling_params(read: InputReader) -> SamplingParams:
    """Greedy unless temperature, runtime_top_k or runtime_top_p is given (simpler than
    TensorRT-LLM, whose defaults also decode greedily); temperature 0 or top-k 1 is greedy
    too. As in TensorRT-LLM, runtime_top_k 0 and runtime_top_p 0 mean no filtering."""
    temperature = _optional_float(read, "temperature")
    top_k = _optional_int(read, "runtime_top_k")
    top_p = _optional_float(read, "runtime_top_p")
    if temperature is not None and temperature < 0:
        raise RequestError(f"temperature must be at least 0, got {temperature}")
    if top_k is not None and top_k < 0:
        raise RequestError(f"runtime_top_k must be at least 0, got {top_k}")
    if top_p is not None and not 0 <= top_p <= 1:
        raise RequestError(f"runtime_top_p must be between 0 and 1, got {top_p}")
    repetition_penalty = _optional_float(read, "repetition_penalty")
    if repetition_penalty is not None and repetition_penalty <= 0:
        raise RequestError(f"repetition_penalty must be positive, got {repetition_penalty}")
    seed = read("seed")
    return SamplingParams(
        greedy=(temperature is None and top_k is None and top_p is None)
        or temperature == 0
        or top_k == 1,
        temperature=1.0 if temperature is None else temperature,
        top_k=top_k or 0,
        top_p=top_p or 1.0,
        seed=None if seed is None or seed.size == 0 else int(seed.reshape(-1)[0]),
        repetition_penalty=repetition_penalty or 1.0,
        presence_penalty=_optional_float(read, "presence_penalty") or 0.0,
        frequency_penalty=_optional_float(read, "frequency_penalty") or 0.0,
    )


def _words_list(read: InputReader, name: str) -> tuple[TokenSequence, ...]:
    """TensorRT-LLM's [2, n] layout: row 0 holds the sequences' tokens back to back, row 1
    each sequence's end offset, padded with -1."""
    tensor = read(name)
    if tensor is None or tensor.size == 0:
        return ()
    if tensor.size % 2:
        raise RequestError(f"{name} must have shape [2, n], got {list(tensor.shape)}")
    tokens, offsets = tensor.reshape(2, -1).astype(np.int64)
    ends = [int(offset) for offset in offsets if offset >= 0]
    starts = [0, *ends[:-1]]
    if any(end <= start for start, end in zip(starts, ends, strict=True)) or (
        ends and ends[-1] > len(tokens)
    ):
        raise RequestError(
            f"{name} offsets {ends} are not increasing ends within {len(tokens)} tokens"
        )
    return tuple(
        tuple(int(token) for token in tokens[start:end])
        for start, end in zip(starts, ends, strict=True)
    )


def _flag(read: InputReader, name: str, *, default: bool) -> bool:
    tensor = read(name)
    if tensor is None or tensor.size == 0:
        return default
    return bool(tensor.reshape(-1)[0])


def _required_int(read: InputReader, name: str) -> int:
    value = _optional_int(read, name)
    if value is None:
        raise RequestError(f"input {name} is required")
    return value


def _optional_int(read: InputReader, name: str) -> int | None:
    tensor = read(name)
    if tensor is None or tensor.size == 0:
        return None
    return int(tensor.reshape(-1)[0])


def _optional_float(read: InputReader, name: str) -> float | None:
    tensor = read(name)
    if tensor is None or tensor.size == 0:
        return None
    return float(tensor.reshape(-1)[0])
