"""TensorRT-LLM's input tensors for one generation (and for its `stop`), and the outputs a
request asks for, in the types the backend declares (`llm_contract.trtllm_backend`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tritonclient.grpc.aio as triton_grpc

from gateway.sampling import OPTIONAL_SAMPLING, SamplingParams
from llm_contract import trtllm_backend

SAMPLING_INPUTS = {
    "temperature": "temperature",
    "top_p": "runtime_top_p",
    "top_k": "runtime_top_k",
    "seed": "seed",
    "repetition_penalty": "repetition_penalty",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
}
"""The TensorRT-LLM input carrying each optional sampling option (`OPTIONAL_SAMPLING`);
unset, the option is not sent and the backend's default applies."""

GENERATION_OUTPUTS = trtllm_backend.REQUIRED_OUTPUTS
"""TensorRT-LLM's backend fails every response of a request that does not ask for both."""

_TENSOR_TYPES = {spec.name: spec.data_type for spec in trtllm_backend.INPUTS}
_NUMPY_TYPES: dict[str, type[np.generic]] = {
    "TYPE_FP32": np.float32,
    "TYPE_INT32": np.int32,
    "TYPE_UINT64": np.uint64,
}


def _tensor(
    name: str, value: object, datatype: str, dtype: type[np.generic]
) -> triton_grpc.InferInput:
    array = np.array([[value]], dtype=dtype)
    tensor = triton_grpc.InferInput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array)
    return tensor


def _sampling_tensor(name: str, value: object) -> triton_grpc.InferInput:
    """`name` in the type the backend declares for it (`TYPE_FP32` is sent as `FP32`)."""
    declared = _TENSOR_TYPES[name]
    return _tensor(name, value, declared.removeprefix("TYPE_"), _NUMPY_TYPES[declared])


def build_inputs(
    input_ids: list[int], params: SamplingParams, end_id: int, stop_ids: Sequence[int] = ()
) -> list[triton_grpc.InferInput]:
    """TensorRT-LLM's inputs; `stop_ids`: further single tokens that end the model's turn
    (beyond `end_id`), sent as one-token stop words."""
    if params.max_tokens is None:
        raise ValueError("max_tokens must be resolved before the request is sent")
    ids = np.array([input_ids], dtype=np.int32)
    tokens = triton_grpc.InferInput("input_ids", list(ids.shape), "INT32")
    tokens.set_data_from_numpy(ids)
    inputs = [
        tokens,
        _tensor("input_lengths", len(input_ids), "INT32", np.int32),
        _tensor("request_output_len", params.max_tokens, "INT32", np.int32),
        _tensor("end_id", end_id, "INT32", np.int32),
        _tensor("pad_id", end_id, "INT32", np.int32),
        _tensor("streaming", True, "BOOL", np.bool_),
    ]
    for option in OPTIONAL_SAMPLING:
        value = getattr(params, option)
        if value is not None:
            inputs.append(_sampling_tensor(SAMPLING_INPUTS[option], value))
    if stop_ids:
        words = np.array([[list(stop_ids), list(range(1, len(stop_ids) + 1))]], dtype=np.int32)
        stop_words = triton_grpc.InferInput("stop_words_list", list(words.shape), "INT32")
        stop_words.set_data_from_numpy(words)
        inputs.append(stop_words)
    return inputs


def build_stop_inputs(end_id: int) -> list[triton_grpc.InferInput]:
    """TensorRT-LLM's `stop` for the generation sent with the same request id: its `stop`
    flag beside the inputs every request carries."""
    stop = np.array([[True]])
    flag = triton_grpc.InferInput("stop", list(stop.shape), "BOOL")
    flag.set_data_from_numpy(stop)
    return [*build_inputs([end_id], SamplingParams(max_tokens=1), end_id), flag]
