"""A small gRPC streaming client for the generation model, as the tests need it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import numpy as np
import tritonclient.grpc.aio as triton_grpc


@dataclass
class StreamedResponse:
    token_ids: list[int]
    final: bool
    arrived_at: float


@dataclass
class StreamOutcome:
    responses: list[StreamedResponse] = field(default_factory=list)
    error: str | None = None

    @property
    def token_ids(self) -> list[int]:
        return [token for response in self.responses for token in response.token_ids]


def tensor(
    name: str, values: object, datatype: str, dtype: type[np.generic]
) -> triton_grpc.InferInput:
    array = np.array(values, dtype=dtype)
    if array.ndim == 0:
        array = array.reshape(1, 1)
    elif array.ndim == 1:
        array = array.reshape(1, -1)
    else:
        array = array.reshape(1, *array.shape)
    infer_input = triton_grpc.InferInput(name, list(array.shape), datatype)
    infer_input.set_data_from_numpy(array)
    return infer_input


def generation_inputs(
    input_ids: list[int],
    output_len: int,
    *,
    end_id: int | None = None,
    stop_words: list[list[int]] | None = None,
    temperature: float | None = None,
    seed: int | None = None,
    streaming: bool = True,
) -> list[triton_grpc.InferInput]:
    inputs = [
        tensor("input_ids", input_ids, "INT32", np.int32),
        tensor("input_lengths", len(input_ids), "INT32", np.int32),
        tensor("request_output_len", output_len, "INT32", np.int32),
        tensor("streaming", streaming, "BOOL", np.bool_),
    ]
    if end_id is not None:
        inputs.append(tensor("end_id", end_id, "INT32", np.int32))
    if stop_words is not None:
        flat = [token for word in stop_words for token in word]
        offsets = np.cumsum([len(word) for word in stop_words]).tolist()
        offsets += [-1] * (len(flat) - len(offsets))
        inputs.append(tensor("stop_words_list", [flat, offsets], "INT32", np.int32))
    if temperature is not None:
        inputs.append(tensor("temperature", temperature, "FP32", np.float32))
    if seed is not None:
        inputs.append(tensor("seed", seed, "UINT64", np.uint64))
    return inputs


async def stream_generation(
    client: triton_grpc.InferenceServerClient,
    model: str,
    inputs: list[triton_grpc.InferInput],
    *,
    request_id: str = "",
    stop_after_tokens: int | None = None,
    outputs: list[str] | None = None,
) -> StreamOutcome:
    """Run one streaming request; with `stop_after_tokens`, cancel the gRPC stream then;
    `outputs` names the outputs to ask for (default: none named, so Triton sends all)."""
    request: dict[str, object] = {"model_name": model, "inputs": inputs, "request_id": request_id}
    if outputs is not None:
        request["outputs"] = [triton_grpc.InferRequestedOutput(name) for name in outputs]

    async def requests() -> AsyncIterator[dict[str, object]]:
        yield request

    outcome = StreamOutcome()
    responses = client.stream_infer(requests())
    async for result, error in responses:
        if error is not None:
            outcome.error = str(error.message())
            break
        tokens = result.as_numpy("output_ids")
        final = bool(result.get_response().parameters["triton_final_response"].bool_param)
        outcome.responses.append(
            StreamedResponse(
                [] if tokens is None else tokens.reshape(-1).tolist(), final, time.monotonic()
            )
        )
        if stop_after_tokens is not None and len(outcome.token_ids) >= stop_after_tokens:
            responses.cancel()
            break
    return outcome
