"""Server-Sent Events for a generation: one event per text piece, usage, then `[DONE]`.

The backend is read on its own task so that the writer can send a comment keep-alive
while the model is silent (proxies drop idle connections) without cancelling a gRPC read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import anyio
import msgspec
from litestar.response import Stream
from litestar.response.base import ASGIResponse
from litestar.response.streaming import ASGIStreamingResponse
from litestar.types import Message, Receive, Send

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
KEEPALIVE_COMMENT = b": keep-alive\n\n"
DONE_EVENT = b"data: [DONE]\n\n"
SSE_HEADERS = {
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",
    "Connection": "keep-alive",
}
_encoder = msgspec.json.Encoder()
logger = logging.getLogger("gateway.streaming")


@dataclass(frozen=True)
class StreamSettings:
    """How the gateway streams (`GATEWAY_SSE_*`); a request's own options are its body's."""

    keepalive_seconds: float
    send_timeout_seconds: float
    buffer_bytes: int = 64 * 1024


def _request_cycle(receive: Receive) -> Any:
    return getattr(receive, "__self__", None)


def _connection_closed(receive: Receive) -> bool:
    """Whether the server knows the client is gone: its next `send()` would be dropped.

    ASGI servers drop `send()`s after a disconnect without an error. uvicorn keeps the state
    on the request cycle that `receive` is bound to (`disconnected`, and its transport is
    closing as soon as the client's end-of-stream arrives); elsewhere this is False, and the
    disconnect listener ends the stream a moment later.
    """
    cycle = _request_cycle(receive)
    if cycle is None:
        return False
    transport = getattr(cycle, "transport", None)
    closing = transport is not None and transport.is_closing()
    return bool(getattr(cycle, "disconnected", False)) or closing


def _writes_paused(receive: Receive) -> bool:
    """Whether a `send()` may wait for the client (uvicorn's flow control); unknown: True.

    Only then is the send timed, which keeps the common path free of a timer per event."""
    flow = getattr(_request_cycle(receive), "flow", None)
    return flow is None or bool(flow.write_paused)


def _bound_buffers(receive: Receive, size: int) -> None:
    """Cap what a stream may buffer: the transport pauses the sender past `size`, and the
    kernel's send buffer is fixed at `size` (uvicorn; other servers keep their own)."""
    transport = getattr(_request_cycle(receive), "transport", None)
    if transport is None:
        return
    transport.set_write_buffer_limits(high=size)
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)


def _abort_connection(receive: Receive | None) -> None:
    """Cut a connection whose client stopped reading (uvicorn; elsewhere the response simply
    ends unfinished, which makes the server close it)."""
    transport = getattr(_request_cycle(receive), "transport", None) if receive else None
    if transport is not None:
        transport.abort()


class _ClosingStreamingResponse(ASGIStreamingResponse):
    """Stops at a disconnect before the iterator resumes, and closes the iterator however
    the stream ends.

    An event generator resumes only after its last event was handed to a live connection,
    which is what makes its token accounting exact. When the client disconnects, Litestar
    cancels the sending task, often while it waits in `send()`; the generator is then left
    suspended, so it is closed here (shielded from the cancellation), which cancels the
    backend request at once.
    """

    _receive: Receive | None = None
    send_timeout: float = 30.0
    buffer_bytes: int | None = None

    async def send_body(self, send: Send, receive: Receive) -> None:
        """A client gone before the body (its transport already closed) ends the stream
        here: bounding a closed transport's buffers raises, and the iterator would then be
        left to the garbage collector, with its generation still running."""
        self._receive = receive
        try:
            if _connection_closed(receive):
                return
            if self.buffer_bytes is not None:
                _bound_buffers(receive, self.buffer_bytes)
            await super().send_body(send, receive)
        finally:
            await self._close_iterator()

    async def _stream(self, send: Send) -> None:
        try:
            receive = self._receive
            async for chunk in self.iterator:
                body = chunk if isinstance(chunk, bytes) else chunk.encode(self.encoding)
                if receive is not None and _connection_closed(receive):
                    return
                message: Message = {"type": "http.response.body", "body": body, "more_body": True}
                if receive is not None and not _writes_paused(receive):
                    await send(message)
                else:
                    try:
                        async with asyncio.timeout(self.send_timeout):
                            await send(message)
                    except TimeoutError:
                        logger.info(
                            "client took nothing for %ss: stream dropped", self.send_timeout
                        )
                        _abort_connection(receive)
                        return
                if receive is not None and _connection_closed(receive):
                    return
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await self._close_iterator()

    async def _close_iterator(self) -> None:
        aclose = getattr(self.iterator, "aclose", None)
        if aclose is not None:
            with anyio.CancelScope(shield=True):
                await aclose()


class FirstThenRest:
    """The first event (awaited before the headers went out, so that errors get a status),
    then the rest of its generator. Closing it closes the generator even if iteration never
    began, which a wrapping async generator would not do (closing an unstarted generator
    skips its body), so the backend is cancelled when the client left before the body."""

    def __init__(self, first: bytes, rest: AsyncGenerator[bytes, None]) -> None:
        self._first: bytes | None = first
        self._rest = rest

    def __aiter__(self) -> FirstThenRest:
        return self

    async def __anext__(self) -> bytes:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        return await self._rest.__anext__()

    async def aclose(self) -> None:
        self._first = None
        await self._rest.aclose()


class EventStream(Stream):
    """A `text/event-stream` response that closes its event generator when it ends, and
    drops a client that takes nothing for `send_timeout` seconds.

    Litestar lets the handler's media type (JSON) win over the response's own, so it is
    pinned here.
    """

    def __init__(
        self,
        *args: Any,
        send_timeout: float = 30.0,
        buffer_bytes: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.send_timeout = send_timeout
        self.buffer_bytes = buffer_bytes

    def to_asgi_response(
        self,
        app: object,
        request: object,
        *,
        headers: dict[str, str] | None = None,
        is_head_response: bool = False,
        **_: Any,
    ) -> ASGIResponse:
        assert not callable(self.iterator), "EventStream takes the generator itself"
        response = _ClosingStreamingResponse(
            iterator=self.iterator,
            background=self.background,
            content_length=0,
            cookies=self.cookies,
            encoding=self.encoding,
            headers={**(headers or {}), **self.headers},
            is_head_response=is_head_response,
            media_type="text/event-stream",
            status_code=self.status_code or 200,
        )
        response.send_timeout = self.send_timeout
        response.buffer_bytes = self.buffer_bytes
        return response


def sse_event(payload: object, event_id: int | None = None) -> bytes:
    """`data:` first, so that line-oriented readers that look only at `data:` lines work."""
    if event_id is None:
        return b"data: " + _encoder.encode(payload) + b"\n\n"
    return b"data: %b\nid: %d\n\n" % (_encoder.encode(payload), event_id)


class _Failure:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class _End:
    pass


_END = _End()


class Heartbeat:
    """Marks an idle interval in a stream (nothing arrived for `interval` seconds)."""


HEARTBEAT = Heartbeat()


class CancellableStream(Protocol[T_co]):
    def __aiter__(self) -> AsyncIterator[T_co]: ...
    def cancel(self) -> None: ...


async def with_heartbeats(
    source: CancellableStream[T], interval: float
) -> AsyncGenerator[list[T] | Heartbeat, None]:
    """Items of `source` in lists of those that arrived together, with HEARTBEAT whenever it
    stays silent for `interval` seconds.

    When the writer falls behind (a busy process), items pile up; taking them together lets
    the writer send them in one write instead of one per item. At most one HEARTBEAT waits in
    the queue: a reader that stopped reading needs one keep-alive, not one per interval.
    However the stream ends, its timer and its reading task end with it.
    """
    queue: asyncio.Queue[T | _Failure | _End | Heartbeat] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    last_item_at = loop.time()
    heartbeat_queued = False

    async def pump() -> None:
        try:
            async for item in source:
                queue.put_nowait(item)
        except Exception as error:
            queue.put_nowait(_Failure(error))
        else:
            queue.put_nowait(_END)

    timer: asyncio.TimerHandle

    def tick() -> None:
        nonlocal timer, heartbeat_queued
        if not heartbeat_queued and loop.time() - last_item_at >= interval * 0.99:
            heartbeat_queued = True
            queue.put_nowait(HEARTBEAT)
        timer = loop.call_later(interval, tick)

    pump_task = asyncio.create_task(pump())
    timer = loop.call_later(interval, tick)
    try:
        while True:
            item = await queue.get()
            batch: list[T] = []
            while True:
                if isinstance(item, _End | _Failure):
                    break
                if isinstance(item, Heartbeat):
                    heartbeat_queued = False
                    if not batch:
                        break
                else:
                    batch.append(item)
                if queue.empty():
                    break
                item = queue.get_nowait()
            if batch:
                last_item_at = loop.time()
                yield batch
            elif isinstance(item, Heartbeat):
                yield item
            if isinstance(item, _End):
                return
            if isinstance(item, _Failure):
                raise item.error
    finally:
        timer.cancel()
        source.cancel()
        pump_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump_task
