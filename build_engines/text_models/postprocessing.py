"""Triton's `postprocessing` model: token ids to text (upstream inflight_batcher_llm).

Each request is decoded on its own, so in the streaming ensemble multi-byte characters and
spaces split over tokens are garbled exactly as upstream's are; see `decode_each`.
"""

from __future__ import annotations

from typing import Any

import triton_python_backend_utils as pb_utils

from .detokenize import decode_each
from .settings import ModelArgs
from .tokenizer import TextTokenizer


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        model = ModelArgs.from_triton(args)
        self._tokenizer = TextTokenizer.from_dir(
            model.path("tokenizer_dir"),
            skip_special_tokens=model.flag("skip_special_tokens", default=True),
        )

    def execute(self, requests: list[Any]) -> list[Any]:
        return [self._respond(request) for request in requests]

    def _respond(self, request: Any) -> Any:
        tokens = pb_utils.get_input_tensor_by_name(request, "TOKENS_BATCH")
        if tokens is None:
            return pb_utils.InferenceResponse(
                error=pb_utils.TritonError("TOKENS_BATCH is required")
            )
        lengths = pb_utils.get_input_tensor_by_name(request, "SEQUENCE_LENGTH")
        text = decode_each(
            self._tokenizer, tokens.as_numpy(), None if lengths is None else lengths.as_numpy()
        )
        return pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("OUTPUT", text)])
