"""The BLS model's request: the ensemble's text inputs, checked, turned into the generation
model's tensors (TensorRT-LLM names, shape (1, ...) for its leading batch dimension)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .limits import Limits, TextRequestError
from .tensors import column, texts, words_list
from .tokenizer import TextTokenizer

InputReader = Callable[[str], "npt.NDArray[Any] | None"]
"""Returns the named input tensor, or None when the request does not carry it."""

PASSED_THROUGH: Mapping[str, tuple[str, type[np.generic]]] = {
    "top_k": ("runtime_top_k", np.int32),
    "top_p": ("runtime_top_p", np.float32),
    "temperature": ("temperature", np.float32),
    "repetition_penalty": ("repetition_penalty", np.float32),
    "presence_penalty": ("presence_penalty", np.float32),
    "frequency_penalty": ("frequency_penalty", np.float32),
    "min_tokens": ("min_tokens", np.int32),
    "seed": ("seed", np.uint64),
}
"""Text inputs handed to the generation model unchanged: text name -> (its name, dtype)."""


@dataclass(frozen=True)
class TextRequest:
    prompt: str
    max_tokens: int
    stream: bool = False
    include_prompt: bool = False
    end_id: int | None = None
    pad_id: int | None = None
    stop_words: tuple[str, ...] = ()
    bad_words: tuple[str, ...] = ()
    passed_through: Mapping[str, npt.NDArray[Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class GenerationPlan:
    """A checked request with its prompt ids and the generation model's input tensors."""

    request: TextRequest
    prompt_ids: list[int]
    inputs: dict[str, npt.NDArray[Any]]


def read_text_request(read: InputReader) -> TextRequest:
    prompts = _present(read, "text_input")
    if prompts is None:
        raise TextRequestError("input text_input is required")
    if prompts.shape[0] != 1:
        raise TextRequestError(f"send one prompt per request, got a batch of {prompts.shape[0]}")
    max_tokens = _scalar(read, "max_tokens")
    if max_tokens is None:
        raise TextRequestError("input max_tokens is required")
    passed = {
        name: np.asarray(value, dtype=dtype).reshape(1, 1)
        for text_name, (name, dtype) in PASSED_THROUGH.items()
        if (value := _scalar(read, text_name)) is not None
    }
    end_id, pad_id = _scalar(read, "end_id"), _scalar(read, "pad_id")
    return TextRequest(
        prompt=texts(prompts)[0],
        max_tokens=int(max_tokens),
        stream=bool(_scalar(read, "stream") or False),
        include_prompt=not bool(_scalar(read, "exclude_input_in_output", default=True)),
        end_id=None if end_id is None else int(end_id),
        pad_id=None if pad_id is None else int(pad_id),
        stop_words=_words(read, "stop_words"),
        bad_words=_words(read, "bad_words"),
        passed_through=passed,
    )


def plan_generation(read: InputReader, tokenizer: TextTokenizer, limits: Limits) -> GenerationPlan:
    """Raises `TextRequestError` with the message for the client."""
    request = read_text_request(read)
    prompt_ids = tokenizer.encode_prompt(request.prompt)
    limits.check_input(len(prompt_ids))
    limits.check_output(request.max_tokens)
    return GenerationPlan(request, prompt_ids, generation_inputs(request, prompt_ids, tokenizer))


def generation_inputs(
    request: TextRequest, prompt_ids: list[int], tokenizer: TextTokenizer
) -> dict[str, npt.NDArray[Any]]:
    """Always streaming and without the prompt: the BLS model decodes as tokens arrive and
    prepends the prompt's text itself when asked to include it."""
    inputs: dict[str, npt.NDArray[Any]] = {
        "input_ids": np.array([prompt_ids], dtype=np.int32),
        "input_lengths": column([len(prompt_ids)]),
        "request_output_len": column([request.max_tokens]),
        "end_id": column([tokenizer.end_id if request.end_id is None else request.end_id]),
        "pad_id": column([tokenizer.pad_id if request.pad_id is None else request.pad_id]),
        "streaming": np.array([[True]]),
        "exclude_input_in_output": np.array([[True]]),
        **request.passed_through,
    }
    for name, words in (
        ("stop_words_list", request.stop_words),
        ("bad_words_list", request.bad_words),
    ):
        if ids := tokenizer.encode_words(words):
            inputs[name] = words_list([ids])
    return inputs


def _present(read: InputReader, name: str) -> npt.NDArray[Any] | None:
    array = read(name)
    return None if array is None or array.size == 0 else array


def _scalar(read: InputReader, name: str, default: Any = None) -> Any:
    array = _present(read, name)
    return default if array is None else array.reshape(-1)[0].item()


def _words(read: InputReader, name: str) -> tuple[str, ...]:
    array = _present(read, name)
    return () if array is None else tuple(word for word in texts(array) if word)
