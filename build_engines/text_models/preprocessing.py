"""Triton's `preprocessing` model: prompt text to token ids (upstream inflight_batcher_llm)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import triton_python_backend_utils as pb_utils

from .limits import Limits, TextRequestError
from .prompts import PromptBatch, preprocess
from .settings import ModelArgs
from .tokenizer import TextTokenizer


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        model = ModelArgs.from_triton(args)
        self._tokenizer = TextTokenizer.from_dir(
            model.path("tokenizer_dir"),
            add_special_tokens=model.flag("add_special_tokens", default=True),
        )
        self._limits = Limits.from_args(model)

    def execute(self, requests: list[Any]) -> list[Any]:
        return [self._respond(request) for request in requests]

    def _respond(self, request: Any) -> Any:
        try:
            outputs = preprocess(_prompt_batch(request), self._tokenizer, self._limits)
        except ValueError as error:  # TextRequestError, or text that is not UTF-8
            return pb_utils.InferenceResponse(error=pb_utils.TritonError(str(error)))
        return pb_utils.InferenceResponse(
            output_tensors=[pb_utils.Tensor(name, array) for name, array in outputs.items()]
        )


def _prompt_batch(request: Any) -> PromptBatch:
    queries = _input(request, "QUERY")
    output_lens = _input(request, "REQUEST_OUTPUT_LEN")
    if queries is None or output_lens is None:
        raise TextRequestError("QUERY and REQUEST_OUTPUT_LEN are required")
    return PromptBatch(
        queries=queries,
        output_lens=output_lens,
        bad_words=_input(request, "BAD_WORDS_DICT"),
        stop_words=_input(request, "STOP_WORDS_DICT"),
        end_ids=_input(request, "END_ID"),
        pad_ids=_input(request, "PAD_ID"),
    )


def _input(request: Any, name: str) -> npt.NDArray[np.generic] | None:
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        return None
    array: npt.NDArray[np.generic] = tensor.as_numpy()
    return array
