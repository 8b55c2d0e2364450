"""`triton_python_backend_utils` for the text-path models: the shared stand-in
(`tests.python_backend_doubles`) plus BLS `InferenceRequest.exec(decoupled=True)`, which calls
`FakeGenerationModel` the way Triton would call the generation model: one response per
token, (1, 1, 1) `output_ids` and a cumulative `sequence_length`, as the CPU twin sends.
"""

from __future__ import annotations

import threading
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from tests.python_backend_doubles import (
    WAIT_SECONDS,
    FakeInferenceResponse,
    FakeRequest,
    FakeTensor,
    FakeTritonError,
    python_backend_utils,
)


@dataclass
class GenerationCall:
    """One request the BLS model made to the generation model."""

    model_name: str
    inputs: dict[str, npt.NDArray[Any]]
    requested_output_names: list[str]
    request_id: str

    def scalar(self, name: str) -> Any:
        return self.inputs[name].reshape(-1)[0].item()


@dataclass
class FakeGenerationModel:
    """Answers every generation request with `reply_ids`, one token per response."""

    reply_ids: list[int] = field(default_factory=list)
    error: str | None = None
    error_code: int = FakeTritonError.UNKNOWN
    empty_final: bool = False
    fail_after: int | None = None
    barrier: threading.Barrier | None = None
    calls: list[GenerationCall] = field(default_factory=list)
    stopped: set[str] = field(default_factory=set)

    def __call__(self, call: GenerationCall) -> Iterator[FakeInferenceResponse]:
        self.calls.append(call)
        if "stop" in call.inputs:
            self.stopped.add(call.request_id)
            return iter([FakeInferenceResponse()])
        if self.error is not None:
            error = FakeTritonError(self.error, self.error_code)
            return iter([FakeInferenceResponse(error=error)])
        return self._stream(call)

    def _stream(self, call: GenerationCall) -> Iterator[FakeInferenceResponse]:
        if self.barrier is not None:
            self.barrier.wait(WAIT_SECONDS)
        for count, token in enumerate(self.reply_ids, start=1):
            if call.request_id in self.stopped:
                return
            if count == self.fail_after:
                raise RuntimeError("the generation model went away")
            yield FakeInferenceResponse(
                [
                    FakeTensor("output_ids", np.array([[[token]]], np.int32)),
                    FakeTensor("sequence_length", np.array([[count]], np.int32)),
                ]
            )
        if self.empty_final:
            yield FakeInferenceResponse()

    @property
    def generation_calls(self) -> list[GenerationCall]:
        return [call for call in self.calls if "stop" not in call.inputs]


def fake_triton_utils(generation: FakeGenerationModel) -> types.ModuleType:
    module = python_backend_utils()

    class FakeInferenceRequest:
        def __init__(
            self,
            model_name: str,
            inputs: Sequence[FakeTensor],
            requested_output_names: Sequence[str],
            request_id: str = "",
            **_: Any,
        ) -> None:
            self.call = GenerationCall(
                model_name,
                {tensor.name(): tensor.as_numpy() for tensor in inputs},
                list(requested_output_names),
                request_id,
            )

        def exec(self, decoupled: bool = False) -> Iterator[FakeInferenceResponse]:
            assert decoupled, "the generation model is decoupled"
            return generation(self.call)

    module.InferenceRequest = FakeInferenceRequest  # type: ignore[attr-defined]
    module.get_output_tensor_by_name = _output_tensor  # type: ignore[attr-defined]
    return module


def _output_tensor(response: FakeInferenceResponse, name: str) -> FakeTensor | None:
    return next((t for t in response.output_tensors() if t.name() == name), None)


def text_request(request_id: str = "", **inputs: Any) -> FakeRequest:
    """A request to the ensemble-style text interface, each value given its batch dim."""
    dtypes = {
        "text_input": np.object_,
        "stop_words": np.object_,
        "bad_words": np.object_,
        "stream": np.bool_,
        "exclude_input_in_output": np.bool_,
        "top_p": np.float32,
        "temperature": np.float32,
        "repetition_penalty": np.float32,
        "presence_penalty": np.float32,
        "frequency_penalty": np.float32,
        "seed": np.uint64,
    }
    arrays = {}
    for name, value in inputs.items():
        dtype = dtypes.get(name, np.int32)
        if dtype is np.object_:
            value = [item.encode() for item in value] if isinstance(value, list) else value.encode()
        arrays[name] = np.array(value, dtype=dtype).reshape(1, -1)
    return FakeRequest(arrays, request_id)
