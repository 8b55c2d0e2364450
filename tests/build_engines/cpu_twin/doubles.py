"""Test doubles for the CPU twin: a recording response channel and event sink for the
scheduler, and requests for the model as Triton delivers them (the Python backend's module
is stood in for by `tests.python_backend_doubles`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from build_engines.cpu_twin.config import TwinConfig
from build_engines.cpu_twin.network import LlamaNetwork, LlamaShape, random_weights
from build_engines.cpu_twin.scheduler import Outcome
from build_engines.cpu_twin.weights import as_stored
from llm_contract.engines import Precision
from tests.python_backend_doubles import WAIT_SECONDS, FakeRequest

SMALL_SHAPE = LlamaShape(
    vocab_size=300,
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    intermediate_size=128,
    rope_theta=10000.0,
    rms_norm_eps=1e-5,
)
SMALL_CONFIG = TwinConfig(
    max_input_len=64,
    max_output_len=200,
    max_inflight_requests=8,
    decode_tokens_per_second=0.0,
    cancellation_check_period_ms=10.0,
    weight_precision="int8",
    weights_file="weights.npz",
    network=SMALL_SHAPE,
)
PROMPT = [1, 45, 96, 173, 170, 299, 42, 172]


def small_network(precision: Precision = "int8", seed: int = 7) -> LlamaNetwork:
    """The SMALL_SHAPE network with random weights, as the twin runs them once stored."""
    return LlamaNetwork(
        SMALL_SHAPE, as_stored(random_weights(SMALL_SHAPE, seed), precision, SMALL_SHAPE)
    )


@dataclass
class Sent:
    """One response: tokens (None for an empty final), error message, final flag, time."""

    token_ids: list[int] | None
    sequence_length: int | None
    final: bool
    error: str | None = None
    at: float = field(default_factory=time.monotonic)


class RecordingChannel:
    """A `ResponseChannel` that keeps every response and can be cancelled or made to fail."""

    def __init__(self, fail_on_send: bool = False) -> None:
        self.sent: list[Sent] = []
        self.cancelled = False
        self.fail_on_send = fail_on_send
        self.done = threading.Event()

    def send_tokens(self, token_ids: Sequence[int], sequence_length: int, *, final: bool) -> None:
        if self.fail_on_send:
            raise ConnectionError("the client went away")
        self._record(Sent(list(token_ids), sequence_length, final))

    def send_empty_final(self) -> None:
        self._record(Sent(None, None, True))

    def send_error(self, message: str) -> None:
        self._record(Sent(None, None, True, error=message))

    def is_cancelled(self) -> bool:
        return self.cancelled

    def _record(self, sent: Sent) -> None:
        self.sent.append(sent)
        if sent.final:
            self.done.set()

    def wait(self, timeout: float = WAIT_SECONDS) -> RecordingChannel:
        assert self.done.wait(timeout), f"no final response within {timeout}s: {self.sent}"
        return self

    @property
    def token_ids(self) -> list[int]:
        return [token for sent in self.sent for token in (sent.token_ids or [])]

    @property
    def error(self) -> str | None:
        return next((sent.error for sent in self.sent if sent.error), None)


class RecordingEvents:
    """A `SchedulerEvents` that keeps counts."""

    def __init__(self) -> None:
        self.tokens = 0
        self.active = 0
        self.finished: list[tuple[str, Outcome, int]] = []
        self.changed = threading.Condition()

    def tokens_generated(self, count: int) -> None:
        self.tokens += count

    def active_requests(self, count: int) -> None:
        self.active = count

    def request_finished(
        self, request_id: str, outcome: Outcome, generated_tokens: int, error: str | None
    ) -> None:
        with self.changed:
            self.finished.append((request_id, outcome, generated_tokens))
            self.changed.notify_all()

    def wait_for(self, outcome: Outcome, timeout: float = WAIT_SECONDS) -> tuple[str, Outcome, int]:
        with self.changed:
            assert self.changed.wait_for(
                lambda: any(entry[1] is outcome for entry in self.finished), timeout
            ), f"no request finished with {outcome}: {self.finished}"
            return next(entry for entry in self.finished if entry[1] is outcome)


def triton_request(
    input_ids: Sequence[int],
    output_len: int,
    request_id: str = "",
    requested_outputs: Sequence[str] = ("output_ids", "sequence_length"),
    **optional: Any,
) -> FakeRequest:
    """Tensors shaped as Triton delivers them for max_batch_size > 0 (scalars as [1])."""
    dtypes = {
        "runtime_top_p": np.float32,
        "temperature": np.float32,
        "repetition_penalty": np.float32,
        "presence_penalty": np.float32,
        "frequency_penalty": np.float32,
        "seed": np.uint64,
        "streaming": np.bool_,
        "stop": np.bool_,
        "exclude_input_in_output": np.bool_,
    }
    inputs = {
        "input_ids": np.array([list(input_ids)], np.int32),
        "input_lengths": np.array([len(input_ids)], np.int32),
        "request_output_len": np.array([output_len], np.int32),
    }
    for name, value in optional.items():
        array = np.array(value, dtype=dtypes.get(name, np.int32))
        inputs[name] = array[None] if array.ndim else array.reshape(1)
    return FakeRequest(inputs, request_id, requested_outputs)


def stop_words_list(words: Sequence[Sequence[int]]) -> list[list[int]]:
    """TensorRT-LLM's layout: tokens back to back, then end offsets padded with -1."""
    flat = [token for word in words for token in word]
    offsets = np.cumsum([len(word) for word in words]).tolist()
    return [flat, offsets + [-1] * (len(flat) - len(offsets))]
