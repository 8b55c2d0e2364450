"""The CPU twin as a decoupled Triton Python-backend model with TensorRT-LLM's tensors.

The only module that touches `triton_python_backend_utils`: it turns Triton requests into
`GenerationRequest`s, response senders into `ResponseChannel`s and scheduler events into
Triton custom metrics; everything else runs on the scheduler's thread.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import triton_python_backend_utils as pb_utils

from llm_contract import trtllm_backend

from .config import TwinConfig, check_contract, parse_twin_config
from .generation_request import RequestError, StopRequest, read_request
from .network import LlamaNetwork
from .scheduler import Outcome, Scheduler, SchedulingPolicy
from .weights import load_weights


class TritonResponseChannel:
    """A request's response sender, speaking TensorRT-LLM's output tensors: `output_ids` as
    (batch 1, beam 1, tokens), `sequence_length` as (batch 1, beam 1). A request must ask for
    both (`missing_output`), as TensorRT-LLM's backend requires, so both are always sent.

    The config declares no other output, and that matters on Triton 24.10: its stub's
    decoupled `send` drops outputs nobody asked for with the GIL released, freeing their NumPy
    arrays without it, which corrupts the stub's heap now and then (python_backend#390).
    """

    def __init__(self, request: Any) -> None:
        self._request = request
        self._sender = request.get_response_sender()
        self._outputs = frozenset(request.requested_output_names())

    @property
    def missing_output(self) -> str | None:
        return trtllm_backend.first_missing_output(self._outputs)

    def send_tokens(self, token_ids: Sequence[int], sequence_length: int, *, final: bool) -> None:
        output_ids = np.asarray(token_ids, dtype=np.int32).reshape(1, 1, -1)
        lengths = np.array([[sequence_length]], np.int32)
        response = pb_utils.InferenceResponse(
            output_tensors=[
                pb_utils.Tensor("output_ids", output_ids),
                pb_utils.Tensor("sequence_length", lengths),
            ]
        )
        self._sender.send(
            response, flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL if final else 0
        )

    def send_empty_final(self) -> None:
        self._sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)

    def send_error(self, message: str) -> None:
        response = pb_utils.InferenceResponse(error=pb_utils.TritonError(message))
        self._sender.send(response, flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)

    def is_cancelled(self) -> bool:
        return bool(self._request.is_cancelled())


class TritonMetrics:
    """Scheduler events as Triton custom metrics (served on :8002/metrics), plus the log line
    for a cancellation."""

    def __init__(self, model_name: str) -> None:
        counter, gauge = pb_utils.MetricFamily.COUNTER, pb_utils.MetricFamily.GAUGE
        self._families: tuple[Any, ...] = (
            pb_utils.MetricFamily(
                name="cpu_twin_requests_total",
                description="Generation requests the CPU twin finished, by outcome",
                kind=counter,
            ),
            pb_utils.MetricFamily(
                name="cpu_twin_generated_tokens_total",
                description="Tokens the CPU twin generated",
                kind=counter,
            ),
            pb_utils.MetricFamily(
                name="cpu_twin_active_requests",
                description="Requests in the CPU twin's in-flight batch",
                kind=gauge,
            ),
        )
        requests, tokens, active = self._families
        self._finished = {
            outcome: requests.Metric(labels={"model": model_name, "outcome": outcome.value})
            for outcome in Outcome
        }
        self._tokens: Any = tokens.Metric(labels={"model": model_name})
        self._active: Any = active.Metric(labels={"model": model_name})

    def tokens_generated(self, count: int) -> None:
        self._tokens.increment(count)

    def active_requests(self, count: int) -> None:
        self._active.set(count)

    def request_finished(
        self, request_id: str, outcome: Outcome, generated_tokens: int, error: str | None
    ) -> None:
        self._finished[outcome].increment(1)
        if outcome is Outcome.CANCELLED:
            pb_utils.Logger.log_info(
                f"cpu_twin: request {request_id} cancelled after {generated_tokens} tokens"
            )
        elif error is not None:
            pb_utils.Logger.log_warn(f"cpu_twin: request {request_id!r} failed: {error}")

    def request_rejected(self, request_id: str, message: str) -> None:
        """A request refused before generation: the client's mistake, counted as an error."""
        self._finished[Outcome.ERROR].increment(1)
        pb_utils.Logger.log_info(f"cpu_twin: request {request_id!r} rejected: {message}")

    def close(self) -> None:
        """Release the metrics while the stub can still clear them: a family the interpreter
        frees at exit clears its metrics through shared memory that is already gone, and the
        stub segfaulted on every shutdown of Triton 24.10."""
        self._finished.clear()
        self._tokens = self._active = None
        self._families = ()


class TritonPythonModel:
    """Decoupled: `execute` queues requests and returns; the scheduler thread responds."""

    def initialize(self, args: dict[str, str]) -> None:
        model_config = json.loads(args["model_config"])
        check_contract(model_config)
        self._config: TwinConfig = parse_twin_config(model_config.get("parameters", {}))
        model_name = args.get("model_name") or str(model_config.get("name", "cpu_twin"))
        self._metrics = TritonMetrics(model_name)
        config = self._config
        weights_file = Path(args["model_repository"]) / args["model_version"] / config.weights_file
        network = LlamaNetwork(
            config.network, load_weights(weights_file, config.network, config.weight_precision)
        )
        self._scheduler = Scheduler(network, SchedulingPolicy.from_config(config), self._metrics)
        self._scheduler.start()
        pb_utils.Logger.log_info(
            f"cpu_twin: {model_name} ready: {config.weight_precision} weights from "
            f"{weights_file} ({network.weights.nbytes} bytes as float32), "
            f"up to {config.max_inflight_requests} in flight, "
            f"{config.decode_tokens_per_second or 'unpaced'} tokens/s per stream"
        )

    def execute(self, requests: list[Any]) -> None:
        for request in requests:
            self._accept(request)

    def finalize(self) -> None:
        self._scheduler.close()
        self._metrics.close()

    def _accept(self, request: Any) -> None:
        channel = TritonResponseChannel(request)
        request_id = str(request.request_id())
        try:
            parsed = read_request(
                functools.partial(_input_array, request), request_id, self._config
            )
        except Exception as error:  # a malformed request must not reach Triton as a crash
            message = str(error) if isinstance(error, RequestError) else f"bad request: {error!r}"
            self._reject(channel, request_id, message)
            return
        if isinstance(parsed, StopRequest):
            self._scheduler.stop(parsed.request_id)
            channel.send_empty_final()
            return
        missing = channel.missing_output
        if missing is not None:
            self._reject(channel, request_id, trtllm_backend.missing_output_message(missing))
            return
        self._scheduler.submit(parsed, channel)

    def _reject(self, channel: TritonResponseChannel, request_id: str, message: str) -> None:
        with contextlib.suppress(Exception):
            channel.send_error(message)
        self._metrics.request_rejected(request_id, message)


def _input_array(request: Any, name: str) -> npt.NDArray[np.generic] | None:
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        return None
    array: npt.NDArray[np.generic] = tensor.as_numpy()
    return array
