"""Streaming generation from a TensorRT-LLM model over Triton's gRPC stream.

One gRPC stream per request: the request is written, the stream half-closed, and the
decoupled model answers with one response per token until its final one ends the stream.
A generation nobody reads any more is ended with TensorRT-LLM's `stop` (same request id, on
a stream of its own), and its stream then ends as any other; the gRPC call is cancelled only
when the stop did not end it in time (see `TokenStream`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import grpc
import numpy as np
import tritonclient.grpc.aio as triton_grpc
from tritonclient.utils import InferenceServerException

from llm_contract import trtllm_backend

logger = logging.getLogger("gateway.inference")


class BackendUnavailable(Exception):
    """Triton cannot be reached or the model is not ready: nothing was generated."""


class BackendError(Exception):
    """Triton or the model reported an error for this request."""


def _carried_by(tensor: str) -> Any:
    """A sampling option that TensorRT-LLM's input `tensor` carries; unset, the backend's
    default applies."""
    return field(default=None, metadata={"tensor": tensor})


@dataclass(frozen=True)
class SamplingParams:
    """Every sampling option a run can set, and the TensorRT-LLM input carrying each: the one
    definition that both APIs' request bodies map onto (`from_request`)."""

    max_tokens: int | None = None
    """TensorRT-LLM's `request_output_len`; None until the model's maximum is known."""
    temperature: float | None = _carried_by("temperature")
    top_p: float | None = _carried_by("runtime_top_p")
    top_k: int | None = _carried_by("runtime_top_k")
    seed: int | None = _carried_by("seed")
    repetition_penalty: float | None = _carried_by("repetition_penalty")
    frequency_penalty: float | None = _carried_by("frequency_penalty")
    presence_penalty: float | None = _carried_by("presence_penalty")

    @classmethod
    def from_request(cls, body: object, max_tokens: int | None) -> SamplingParams:
        """The options `body` has attributes for, by the same names; the rest unset."""
        return cls(
            max_tokens,
            **{option.name: getattr(body, option.name, None) for option in OPTIONAL_SAMPLING},
        )


OPTIONAL_SAMPLING = tuple(option for option in fields(SamplingParams) if option.metadata)
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
        value = getattr(params, option.name)
        if value is not None:
            inputs.append(_sampling_tensor(option.metadata["tensor"], value))
    if stop_ids:
        words = np.array([[list(stop_ids), list(range(1, len(stop_ids) + 1))]], dtype=np.int32)
        stop_words = triton_grpc.InferInput("stop_words_list", list(words.shape), "INT32")
        stop_words.set_data_from_numpy(words)
        inputs.append(stop_words)
    return inputs


GENERATION_OUTPUTS = trtllm_backend.REQUIRED_OUTPUTS
"""TensorRT-LLM's backend fails every response of a request that does not ask for both."""

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

    def __init__(self, default_url: str, *, stop_grace_seconds: float = 5.0) -> None:
        self._default_url = default_url
        self._stop_grace_seconds = stop_grace_seconds
        self._clients: dict[str, triton_grpc.InferenceServerClient] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._calls_cancelled = 0

    @property
    def calls_cancelled(self) -> int:
        """gRPC calls cancelled because a stop did not end their generation in time."""
        return self._calls_cancelled

    def client(self, url: str | None = None) -> triton_grpc.InferenceServerClient:
        address = url or self._default_url
        if address not in self._clients:
            self._clients[address] = triton_grpc.InferenceServerClient(
                address, channel_args=CHANNEL_OPTIONS
            )
        return self._clients[address]

    async def close(self) -> None:
        """Let stops and abandoned generations end (at most the grace), then close the
        channels."""
        if self._background:
            await asyncio.wait(self._background, timeout=self._stop_grace_seconds + 1)
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
        stop_ids: Sequence[int] = (),
        request_id: str = "",
        url: str | None = None,
    ) -> TokenStream:
        """Start one generation; iterate the stream for token ids, `cancel()` to abort it."""
        request: dict[str, object] = {
            "model_name": model,
            "inputs": build_inputs(input_ids, params, end_id, stop_ids),
            "outputs": [triton_grpc.InferRequestedOutput(name) for name in GENERATION_OUTPUTS],
            "request_id": request_id,
        }

        async def one_request() -> AsyncIterator[dict[str, object]]:
            yield request

        responses = self.client(url).stream_infer(one_request())
        return TokenStream(
            responses,
            lambda: self.request_stop(model, request_id, end_id, url),
            stop_grace_seconds=self._stop_grace_seconds,
            track=self._track,
            on_call_cancelled=lambda: self._call_cancelled(model, request_id),
        )

    def _track(self, task: asyncio.Task[None]) -> None:
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _call_cancelled(self, model: str, request_id: str) -> None:
        self._calls_cancelled += 1
        logger.warning(
            "%s did not end request %r within %.1fs of its stop; cancelled its gRPC call",
            model,
            request_id,
            self._stop_grace_seconds,
        )

    def request_stop(
        self, model: str, request_id: str, end_id: int, url: str | None = None
    ) -> None:
        """Send TensorRT-LLM's `stop` for `request_id`, in the background."""
        self._track(asyncio.create_task(self._stop(model, request_id, end_id, url)))

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


UNANSWERED_GRACE = 12
"""How many graces an abandoned generation that has not answered yet may wait for its first
response (queued behind others in Triton) before its call is cancelled anyway."""


class TokenStream:
    """The token ids of one generation, as Triton streams them.

    A task of its own reads the call, so cancelling the task that consumes the tokens never
    cancels the call (grpc.aio cancels a call whose pending read is cancelled).

    `cancel()` ends an unfinished generation with TensorRT-LLM's `stop` and lets its stream
    end by itself; the gRPC call is cancelled only if it is still open `stop_grace_seconds`
    later. Why not cancel the call at once: Triton 24.10's gRPC stream handler races a
    request's final response against the cancellation of its call (server #7840, #8078: the
    handler can release the stream's state while a completion for it is still queued, and
    leaks it in other orders), and a cancel that arrives as the model answers is exactly that
    race. A generation ended by `stop` sends its final response on a live call, which 24.10
    handles like any other end. A stop sent before the model has answered at all may reach
    it before the request does, so it is sent again once the first response arrives.
    """

    def __init__(
        self,
        responses: Any,
        request_stop: Callable[[], None],
        *,
        stop_grace_seconds: float = 5.0,
        track: Callable[[asyncio.Task[None]], None] | None = None,
        on_call_cancelled: Callable[[], None] | None = None,
    ) -> None:
        self._responses = responses
        self._request_stop = request_stop
        self._stop_grace_seconds = stop_grace_seconds
        self._on_call_cancelled = on_call_cancelled
        self._tokens: deque[int] = deque()
        self._arrived = asyncio.Event()
        self._end: Exception | None = None
        self._answered = False
        self._abandoned = False
        self._call_cancelled = False
        self._grace: asyncio.TimerHandle | None = None
        self._track = track
        self._reader = asyncio.get_running_loop().create_task(self._read())

    def __aiter__(self) -> TokenStream:
        return self

    async def __anext__(self) -> int:
        while not self._tokens:
            if self._end is not None:
                if isinstance(self._end, StopAsyncIteration):
                    raise StopAsyncIteration
                raise self._end
            self._arrived.clear()
            await self._arrived.wait()
        return self._tokens.popleft()

    @property
    def ended(self) -> bool:
        """The call is over: its stream ended, failed, or was cancelled."""
        return self._reader.done()

    def cancel(self) -> None:
        """Abandon an unfinished generation: `stop` it, cancel the call if that fails."""
        if self._end is not None or self._abandoned:
            return
        self._abandoned = True
        self._tokens.clear()
        if self._track is not None:
            self._track(self._reader)
        self._request_stop()
        # Unanswered, the request may still wait in Triton's queue, and its stop is sent
        # again with its first response: the grace runs from then, within a far bound.
        self._arm_grace(self._stop_grace_seconds * (1 if self._answered else UNANSWERED_GRACE))

    def _arm_grace(self, seconds: float) -> None:
        if self._grace is not None:
            self._grace.cancel()
        self._grace = asyncio.get_running_loop().call_later(seconds, self._cancel_call)

    def _cancel_call(self) -> None:
        if self._reader.done():
            return
        self._call_cancelled = True
        if self._on_call_cancelled is not None:
            self._on_call_cancelled()
        self._responses.cancel()

    async def _read(self) -> None:
        """Read the call to its end, keeping tokens until the generation is abandoned."""
        try:
            async for result, error in self._responses:
                self._on_response()
                if error is not None:
                    self._stop_reading(_translate_message(str(error.message())))
                elif not self._abandoned:
                    self._tokens.extend(result.as_numpy("output_ids").reshape(-1).tolist())
                    self._arrived.set()
            self._stop_reading(StopAsyncIteration())
        except grpc.aio.AioRpcError as rpc_error:
            self._stop_reading(_chained(_translate(rpc_error), rpc_error))
        except InferenceServerException as triton_error:
            self._stop_reading(_chained(BackendError(str(triton_error.message())), triton_error))
        except asyncio.CancelledError:  # grpc.aio raises it for a call cancelled here
            self._stop_reading(BackendError("the generation was cancelled"))
            if not self._call_cancelled:
                raise
        except Exception as error:  # never a silent reader: the consumer sees the failure
            self._stop_reading(
                _chained(BackendError(f"reading the stream failed: {error!r}"), error)
            )
        finally:
            if self._grace is not None:
                self._grace.cancel()

    def _on_response(self) -> None:
        if not self._answered:
            self._answered = True
            if self._abandoned:  # the first stop may have overtaken the request
                self._request_stop()
                self._arm_grace(self._stop_grace_seconds)

    def _stop_reading(self, end: Exception) -> None:
        if self._end is None:
            self._end = end
        self._abandoned = True
        self._arrived.set()


def _chained(error: Exception, cause: BaseException) -> Exception:
    error.__cause__ = cause
    return error


def _translate_message(message: str) -> Exception:
    if "unknown model" in message or "is not ready" in message or "not found" in message:
        return BackendUnavailable(message)
    return BackendError(message)


def _translate(rpc_error: grpc.aio.AioRpcError) -> Exception:
    if rpc_error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return BackendUnavailable(f"Triton is unavailable: {rpc_error.details()}")
    return BackendError(f"Triton: {rpc_error.code().name}: {rpc_error.details()}")
