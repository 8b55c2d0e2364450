"""A stand-in for Triton's `triton_python_backend_utils`, shared by the unit tests of the
Python-backend models (the CPU twin and the text path): tensors, responses and errors with
the real module's methods, a request with its response sender and cancellation flag, metric
families and the logger. `python_backend_utils()` builds the module; suites add to it."""

from __future__ import annotations

import threading
import types
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy.typing as npt

FINAL = 1
"""`TRITONSERVER_RESPONSE_COMPLETE_FINAL`."""
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


class FakeMetric:
    def __init__(self) -> None:
        self.value = 0.0

    def increment(self, value: float) -> None:
        self.value += value

    def set(self, value: float) -> None:
        self.value = value


class FakeMetricFamily:
    COUNTER = 0
    GAUGE = 1
    created: ClassVar[dict[str, FakeMetricFamily]] = {}

    def __init__(self, name: str, description: str, kind: int) -> None:
        self.name = name
        self.kind = kind
        self.metrics: dict[frozenset[tuple[str, str]], FakeMetric] = {}
        FakeMetricFamily.created[name] = self

    def Metric(self, labels: dict[str, str]) -> FakeMetric:  # Triton's name
        return self.metrics.setdefault(frozenset(labels.items()), FakeMetric())

    def value(self, **labels: str) -> float:
        return sum(
            metric.value for key, metric in self.metrics.items() if set(labels.items()) <= set(key)
        )


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

    def _outputs(self, name: str) -> list[Any]:
        return [
            item
            for response, _ in self.responses
            if response is not None and response.output_tensors()
            for item in response.output(name).reshape(-1)
        ]

    @property
    def token_ids(self) -> list[int]:
        return [int(token) for token in self._outputs("output_ids")]

    @property
    def texts(self) -> list[str]:
        return [item.decode() for item in self._outputs("text_output")]

    @property
    def errors(self) -> list[FakeTritonError]:
        return [
            error
            for response, _ in self.responses
            if response is not None and (error := response.error()) is not None
        ]

    @property
    def error(self) -> str | None:
        """The first error's message."""
        return next((error.message() for error in self.errors), None)

    @property
    def final_flags(self) -> list[bool]:
        return [bool(flags & FINAL) for _, flags in self.responses]


class FakeRequest:
    """A Triton request as the Python backend sees it: named tensors with a batch dim."""

    def __init__(
        self,
        inputs: dict[str, npt.NDArray[Any]],
        request_id: str = "",
        requested_outputs: Sequence[str] = ("output_ids", "sequence_length"),
    ) -> None:
        self.inputs = {name: FakeTensor(name, array) for name, array in inputs.items()}
        self.requested_outputs = list(requested_outputs)
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

    def requested_output_names(self) -> list[str]:
        return self.requested_outputs


def python_backend_utils() -> types.ModuleType:
    module = types.ModuleType("triton_python_backend_utils")
    module.Tensor = FakeTensor  # type: ignore[attr-defined]
    module.InferenceResponse = FakeInferenceResponse  # type: ignore[attr-defined]
    module.TritonError = FakeTritonError  # type: ignore[attr-defined]
    module.Logger = FakeLogger  # type: ignore[attr-defined]
    module.MetricFamily = FakeMetricFamily  # type: ignore[attr-defined]
    module.TRITONSERVER_RESPONSE_COMPLETE_FINAL = FINAL  # type: ignore[attr-defined]
    module.get_input_tensor_by_name = lambda request, name: request.inputs.get(name)  # type: ignore[attr-defined]
    return module
