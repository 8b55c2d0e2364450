"""The token ids of one generation as Triton streams them, and how an abandoned one ends."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

import grpc
from tritonclient.utils import InferenceServerException

from gateway.triton.errors import (
    BackendError,
    chained,
    from_response_message,
    from_rpc_error,
    from_triton_exception,
)

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
                    self._stop_reading(from_response_message(str(error.message())))
                elif not self._abandoned:
                    self._tokens.extend(result.as_numpy("output_ids").reshape(-1).tolist())
                    self._arrived.set()
            self._stop_reading(StopAsyncIteration())
        except grpc.aio.AioRpcError as rpc_error:
            self._stop_reading(from_rpc_error(rpc_error))
        except InferenceServerException as triton_error:
            self._stop_reading(from_triton_exception(triton_error))
        except asyncio.CancelledError:  # grpc.aio raises it for a call cancelled here
            self._stop_reading(BackendError("the generation was cancelled"))
            if not self._call_cancelled:
                raise
        except Exception as error:  # never a silent reader: the consumer sees the failure
            self._stop_reading(
                chained(BackendError(f"reading the stream failed: {error!r}"), error)
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
