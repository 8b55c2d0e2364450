"""A stand-in for `triton_python_backend_utils` and a scripted generation model behind it.

Only what the text-path models use: tensors, responses, errors, a request's response sender
and cancellation flag, and BLS `InferenceRequest.exec(decoupled=True)`, which here calls
`FakeGenerationModel` the way Triton would call the generation model: one response per
token, (1, 1, 1) `output_ids` and a cumulative `sequence_length`, as the CPU twin sends.
"""

from __future__ import annotations

import threading
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

FINAL = 1
WAIT_SECONDS = 10.0


class FakeTensor:
    def __init__(self, name: str, array: npt.NDArray[Any]) -> None:
        self._name = name
        self._array = array

    def name(self) -> str:
        return self._name

    def as_numpy(self) -> npt.NDArray[Any]:
        return self._array


class FakeTritonError(Exception):
    UNKNOWN = 0
    INTERNAL = 1
    INVALID_ARG = 3
    CANCELLED = 7

    def __init__(self, message: str, code: int = UNKNOWN) -> None:
        super().__init__(message)
        self._message = message
        self._code = code

    def message(self) -> str:
        return self._message

    def code(self) -> int:
        return self._code


class FakeInferenceResponse:
    def __init__(
        self, output_tensors: Sequence[FakeTensor] = (), error: FakeTritonError | None = None
    ) -> None:
        self._outputs = list(output_tensors)
        self._error = error

    def output_tensors(self) -> list[FakeTensor]:
        return self._outputs

    def has_error(self) -> bool:
        return self._error is not None

    def error(self) -> FakeTritonError | None:
        return self._error

    def output(self, name: str) -> npt.NDArray[Any]:
        return next(t.as_numpy() for t in self._outputs if t.name() == name)


class FakeLogger:
    lines: ClassVar[list[str]] = []

    @classmethod
    def log_error(cls, message: str) -> None:
        cls.lines.append(message)

    log_info = log_warn = log_error


class RecordingSender:
    """Keeps every response; `done` is set by the final one."""

    def __init__(self) -> None:
        self.responses: list[tuple[FakeInferenceResponse | None, int]] = []
        self.done = threading.Event()

    def send(self, response: FakeInferenceResponse | None = None, flags: int = 0) -> None:
        assert not self.done.is_set(), "a response after the final one"
        self.responses.append((response, flags))
        if flags & FINAL:
            self.done.set()

    def wait(self, timeout: float = WAIT_SECONDS) -> RecordingSender:
        assert self.done.wait(timeout), f"no final response within {timeout}s: {self.responses}"
        return self

    @property
    def texts(self) -> list[str]:
        return [
            item.decode()
            for response, _ in self.responses
            if response is not None and response.output_tensors()
            for item in response.output("text_output").reshape(-1)
        ]

    @property
    def errors(self) -> list[FakeTritonError]:
        return [r.error() for r, _ in self.responses if r is not None and r.error() is not None]  # type: ignore[misc]

    @property
    def final_flags(self) -> list[bool]:
        return [bool(flags & FINAL) for _, flags in self.responses]


class FakeRequest:
    """A Triton request as the Python backend sees it: named tensors with a batch dim."""

    def __init__(self, inputs: dict[str, npt.NDArray[Any]], request_id: str = "") -> None:
        self.inputs = {name: FakeTensor(name, array) for name, array in inputs.items()}
        self.sender = RecordingSender()
        self.cancelled = False
        self.cancel_after_responses: int | None = None
        self._request_id = request_id

    def get_response_sender(self) -> RecordingSender:
        return self.sender

    def is_cancelled(self) -> bool:
        after = self.cancel_after_responses
        return self.cancelled or (after is not None and len(self.sender.responses) >= after)

    def request_id(self) -> str:
        return self._request_id


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
    module = types.ModuleType("triton_python_backend_utils")

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

    module.Tensor = FakeTensor  # type: ignore[attr-defined]
    module.InferenceResponse = FakeInferenceResponse  # type: ignore[attr-defined]
    module.InferenceRequest = FakeInferenceRequest  # type: ignore[attr-defined]
    module.TritonError = FakeTritonError  # type: ignore[attr-defined]
    module.Logger = FakeLogger  # type: ignore[attr-defined]
    module.TRITONSERVER_RESPONSE_COMPLETE_FINAL = FINAL  # type: ignore[attr-defined]
    module.get_input_tensor_by_name = lambda request, name: request.inputs.get(name)  # type: ignore[attr-defined]
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
        "random_seed": np.uint64,
    }
    arrays = {}
    for name, value in inputs.items():
        dtype = dtypes.get(name, np.int32)
        if dtype is np.object_:
            value = [item.encode() for item in value] if isinstance(value, list) else value.encode()
        arrays[name] = np.array(value, dtype=dtype).reshape(1, -1)
    return FakeRequest(arrays, request_id)
