"""The gateway's client of Triton: the gRPC channels, and generations started and stopped on
them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

import numpy as np
import numpy.typing as npt
import tritonclient.grpc.aio as triton_grpc
from tritonclient.utils import InferenceServerException

from gateway.sampling import SamplingParams
from gateway.triton.errors import BackendError, BackendUnavailable, from_response_message
from gateway.triton.inputs import GENERATION_OUTPUTS, build_inputs, build_stop_inputs
from gateway.triton.token_stream import TokenStream
from llm_contract.embeddings import ATTENTION_MASK, INPUT_IDS, POOLING_OUTPUTS

logger = logging.getLogger("gateway.triton")

PooledEmbeddings = dict[str, npt.NDArray[np.float32]]
"""(rows, dimensions) vectors by pooling (`mean`, `cls`)."""

CHANNEL_OPTIONS = [
    ("grpc.lb_policy_name", "round_robin"),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]
"""Round robin over every address the target resolves to: `dns:///triton-pods:8001` (a
headless Service) spreads generations over all Triton pods, where one connection to a
ClusterIP Service would pin this gateway to one pod."""


class TritonClient:
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

    async def embed(
        self,
        model: str,
        input_ids: npt.NDArray[np.int32],
        attention_mask: npt.NDArray[np.int32],
        *,
        request_id: str = "",
        url: str | None = None,
    ) -> PooledEmbeddings:
        """One forward pass of the embedding model over a batch of one padded length: both
        pooled vectors of every row (the model's contract, `llm_contract.embeddings`)."""
        inputs = []
        for name, array in ((INPUT_IDS, input_ids), (ATTENTION_MASK, attention_mask)):
            tensor = triton_grpc.InferInput(name, list(array.shape), "INT32")
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        outputs = [triton_grpc.InferRequestedOutput(name) for name in POOLING_OUTPUTS.values()]
        try:
            result = await self.client(url).infer(
                model, inputs, outputs=outputs, request_id=request_id
            )
        except InferenceServerException as error:
            raise _embedding_error(error) from error
        return {pooling: result.as_numpy(name) for pooling, name in POOLING_OUTPUTS.items()}

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
        inputs = build_stop_inputs(end_id)

        async def one_request() -> AsyncIterator[dict[str, object]]:
            yield {"model_name": model, "inputs": inputs, "request_id": request_id}

        with contextlib.suppress(Exception):  # best effort: the request may have ended already
            async with asyncio.timeout(5):
                async for _ in self.client(url).stream_infer(one_request()):
                    pass


def _embedding_error(error: InferenceServerException) -> BackendError | BackendUnavailable:
    """tritonclient's aio `infer` wraps gRPC's failures in its own exception, the status in
    its text: an unreachable Triton is unavailable, anything else an error for this request."""
    status = str(error.status() or "")
    if "UNAVAILABLE" in status or "DEADLINE_EXCEEDED" in status:
        return BackendUnavailable(f"Triton is unavailable: {error.message()}")
    classified = from_response_message(str(error.message()))
    return (
        classified
        if isinstance(classified, BackendUnavailable)
        else BackendError(str(error.message()))
    )
