"""Streaming generation from a TensorRT-LLM model over Triton's gRPC stream.

One gRPC stream per request: the request is written, the stream half-closed, and the
decoupled model answers with one response per token until its final one ends the stream.
Cancelling the stream (client gone, error, shutdown) makes Triton cancel the request, which
the TensorRT-LLM backend (and the CPU twin) see within `cancellation_check_period_ms`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
import tritonclient.grpc.aio as triton_grpc
from tritonclient.utils import InferenceServerException


class BackendUnavailable(Exception):
    """Triton cannot be reached or the model is not ready: nothing was generated."""


class BackendError(Exception):
    """Triton or the model reported an error for this request."""


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None
    repetition_penalty: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None


def _tensor(
    name: str, value: object, datatype: str, dtype: type[np.generic]
) -> triton_grpc.InferInput:
    array = np.array([[value]], dtype=dtype)
    tensor = triton_grpc.InferInput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array)
    return tensor


def build_inputs(
    input_ids: list[int], params: SamplingParams, end_id: int
) -> list[triton_grpc.InferInput]:
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
    optional: Iterable[tuple[str, object, str, type[np.generic]]] = (
        ("temperature", params.temperature, "FP32", np.float32),
        ("runtime_top_p", params.top_p, "FP32", np.float32),
        ("runtime_top_k", params.top_k, "INT32", np.int32),
        ("random_seed", params.seed, "UINT64", np.uint64),
        ("repetition_penalty", params.repetition_penalty, "FP32", np.float32),
        ("frequency_penalty", params.frequency_penalty, "FP32", np.float32),
        ("presence_penalty", params.presence_penalty, "FP32", np.float32),
    )
    inputs += [
        _tensor(name, value, datatype, dtype)
        for name, value, datatype, dtype in optional
        if value is not None
    ]
    return inputs


CHANNEL_OPTIONS = [
    ("grpc.lb_policy_name", "round_robin"),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]
"""Round robin over every address the target resolves to: `dns:///triton-pods:8001` (a
headless Service) spreads generations over all Triton pods, where one connection to a
ClusterIP Service would pin this gateway to one pod."""


class TritonGenerator:
    """Owns the gRPC channels to Triton (one per target), created in the app's lifespan."""

    def __init__(self, default_url: str) -> None:
        self._default_url = default_url
        self._clients: dict[str, triton_grpc.InferenceServerClient] = {}
        self._stops: set[asyncio.Task[None]] = set()

    def client(self, url: str | None = None) -> triton_grpc.InferenceServerClient:
        address = url or self._default_url
        if address not in self._clients:
            self._clients[address] = triton_grpc.InferenceServerClient(
                address, channel_args=CHANNEL_OPTIONS
            )
        return self._clients[address]

    async def close(self) -> None:
        if self._stops:
            await asyncio.wait(self._stops, timeout=2)
        for client in self._clients.values():
            await client.close()
        self._clients.clear()

    async def model_ready(self, model: str, url: str | None = None) -> bool:
        try:
            return bool(await self.client(url).is_model_ready(model))
        except InferenceServerException:
            return False

    def generate(
        self,
        model: str,
        input_ids: list[int],
        params: SamplingParams,
        end_id: int,
        *,
        request_id: str = "",
        url: str | None = None,
    ) -> TokenStream:
        """Start one generation; iterate the stream for token ids, `cancel()` to abort it."""
        request: dict[str, object] = {
            "model_name": model,
            "inputs": build_inputs(input_ids, params, end_id),
            "outputs": [triton_grpc.InferRequestedOutput("output_ids")],
            "request_id": request_id,
        }

        async def one_request() -> AsyncIterator[dict[str, object]]:
            yield request

        responses = self.client(url).stream_infer(one_request())
        return TokenStream(responses, lambda: self._request_stop(model, request_id, end_id, url))

    def _request_stop(self, model: str, request_id: str, end_id: int, url: str | None) -> None:
        """Send TensorRT-LLM's `stop` for `request_id`, in the background."""
        task = asyncio.create_task(self._stop(model, request_id, end_id, url))
        self._stops.add(task)
        task.add_done_callback(self._stops.discard)

    async def _stop(self, model: str, request_id: str, end_id: int, url: str | None) -> None:
        inputs = build_inputs([end_id], SamplingParams(max_tokens=1), end_id)
        stop = np.array([[True]])
        flag = triton_grpc.InferInput("stop", list(stop.shape), "BOOL")
        flag.set_data_from_numpy(stop)

        async def one_request() -> AsyncIterator[dict[str, object]]:
            yield {"model_name": model, "inputs": [*inputs, flag], "request_id": request_id}

        with contextlib.suppress(Exception):  # best effort: the request may have ended already
            async with asyncio.timeout(5):
                async for _ in self.client(url).stream_infer(one_request()):
                    pass


class TokenStream:
    """The token ids of one generation, as Triton streams them.

    `cancel()` cancels the gRPC call itself: cancelling only the task that awaits a read
    often never reaches the server (2 of 10 in a probe here). Even an explicit cancel of a
    half-closed stream is sometimes not delivered to the request by Triton 24.10 (about
    1 in 5 in the end-to-end test), so `cancel()` also sends TensorRT-LLM's `stop` for the
    request id, which the backend (and the twin) honour; whichever arrives first ends it.
    """

    def __init__(self, responses: Any, request_stop: Callable[[], None]) -> None:
        self._responses = responses
        self._request_stop = request_stop
        self._pending: list[int] = []
        self._ended = False

    def __aiter__(self) -> TokenStream:
        return self

    async def __anext__(self) -> int:
        while not self._pending:
            try:
                result, error = await self._responses.__anext__()
            except StopAsyncIteration:
                self._ended = True
                raise
            except grpc.aio.AioRpcError as rpc_error:
                self._ended = True
                raise _translate(rpc_error) from rpc_error
            except InferenceServerException as triton_error:
                raise BackendError(str(triton_error.message())) from triton_error
            if error is not None:
                self._ended = True
                raise _translate_message(str(error.message()))
            self._pending = result.as_numpy("output_ids").reshape(-1).tolist()[::-1]
        return int(self._pending.pop())

    def cancel(self) -> None:
        """Abort an unfinished generation: cancel the call and send the model a `stop`."""
        if self._ended:
            return
        self._ended = True
        self._responses.cancel()
        self._request_stop()


def _translate_message(message: str) -> Exception:
    if "unknown model" in message or "is not ready" in message or "not found" in message:
        return BackendUnavailable(message)
    return BackendError(message)


def _translate(rpc_error: grpc.aio.AioRpcError) -> Exception:
    if rpc_error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return BackendUnavailable(f"Triton is unavailable: {rpc_error.details()}")
    return BackendError(f"Triton: {rpc_error.code().name}: {rpc_error.details()}")
