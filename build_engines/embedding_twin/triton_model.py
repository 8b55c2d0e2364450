"""The embedding twin as a Triton Python-backend model with the TensorRT plan's tensors.

Triton's dynamic batcher hands `execute` the requests that arrived together; those of one
padded length run as one forward pass, as the plan would run them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

from llm_contract.embeddings import ATTENTION_MASK, CLS_EMBEDDING, INPUT_IDS, MEAN_EMBEDDING

from .batch import Sequences, SequencesError, read_sequences
from .bert import BertEncoder, BertShape, BertWeights


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        model_config = json.loads(args["model_config"])
        parameters = {
            key: value["string_value"] for key, value in model_config.get("parameters", {}).items()
        }
        shape = BertShape(
            vocab_size=int(parameters["vocab_size"]),
            hidden_size=int(parameters["hidden_size"]),
            num_hidden_layers=int(parameters["num_hidden_layers"]),
            num_attention_heads=int(parameters["num_attention_heads"]),
            intermediate_size=int(parameters["intermediate_size"]),
            max_position_embeddings=int(parameters["max_position_embeddings"]),
            layer_norm_eps=float(parameters["layer_norm_eps"]),
        )
        weights_file = (
            Path(args["model_repository"]) / args["model_version"] / parameters["weights_file"]
        )
        self._encoder = BertEncoder(BertWeights.load(weights_file, shape))
        self._max_length = int(parameters["max_input_tokens"])
        pb_utils.Logger.log_info(
            f"embedding twin: {args.get('model_name')} ready: weights from {weights_file}"
        )

    def execute(self, requests: list[Any]) -> list[Any]:
        responses: list[Any] = [None] * len(requests)
        by_length: dict[int, list[tuple[int, Sequences]]] = {}
        for index, request in enumerate(requests):
            try:
                sequences = read_sequences(
                    _input(request, INPUT_IDS), _input(request, ATTENTION_MASK),
                    vocab_size=self._encoder.shape.vocab_size, max_length=self._max_length,
                )  # fmt: skip
            except SequencesError as error:
                responses[index] = pb_utils.InferenceResponse(
                    error=pb_utils.TritonError(str(error))
                )
                continue
            by_length.setdefault(sequences.length, []).append((index, sequences))
        for group in by_length.values():
            input_ids = np.concatenate([sequences.input_ids for _, sequences in group])
            mask = np.concatenate([sequences.attention_mask for _, sequences in group])
            pooled = self._encoder.encode(input_ids, mask)
            start = 0
            for index, sequences in group:
                rows = slice(start, start + sequences.count)
                start += sequences.count
                responses[index] = pb_utils.InferenceResponse(
                    output_tensors=[
                        pb_utils.Tensor(MEAN_EMBEDDING, pooled.mean[rows]),
                        pb_utils.Tensor(CLS_EMBEDDING, pooled.cls[rows]),
                    ]
                )
        return responses


def _input(request: Any, name: str) -> Any:
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return None if tensor is None else tensor.as_numpy()
