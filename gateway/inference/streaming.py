"""Streaming a run: the `text/event-stream` response (`EventStream`), and the backend's
items with a heartbeat whenever it stays silent (`with_heartbeats`).

The backend is read on its own task so that the writer can send a comment keep-alive
while the model is silent (proxies drop idle connections) without cancelling a gRPC read.
The SSE framing is `gateway.inference.sse`'s; what the server knows about the client's
connection (closed, writes paused) is asked of `gateway.asgi_connection`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import anyio
from litestar.response import Stream
from litestar.response.base import ASGIResponse
from litestar.response.streaming import ASGIStreamingResponse
from litestar.types import HTTPResponseBodyEvent, Receive, Send

from gateway.asgi_connection import ClientConnection, connection_of

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
logger = logging.getLogger("gateway.streaming")


@dataclass(frozen=True)
class StreamSettings:
    """How the gateway streams (`GATEWAY_SSE_*`); a request's own options are its body's."""

    keepalive_seconds: float
    send_timeout_seconds: float
    buffer_bytes: int = 64 * 1024


class _EventStreamResponse(ASGIStreamingResponse):
    """Stops at a disconnect before the iterator resumes, drops a client that takes nothing
    for `send_timeout` seconds, and closes the iterator however the stream ends.

    An event generator resumes only after its last event was handed to a live connection,
    which is what makes its token accounting exact. The body is sent while a listener waits
    for the client's disconnect and then cancels the sending, often while it waits in
    `send()`; the generator is then left suspended, so it is closed here (shielded from the
    cancellation), which cancels the backend request at once.

    Only `send_body`, the hook Litestar leaves to streaming subclasses, is replaced.
    """

    def __init__(self, *, send_timeout: float, buffer_bytes: int | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.send_timeout = send_timeout
        self.buffer_bytes = buffer_bytes

    async def send_body(self, send: Send, receive: Receive) -> None:
        """A client gone before the body (its transport already closed) ends the stream
        here: bounding a closed transport's buffers raises, and the iterator would then be
        left to the garbage collector, with its generation still running."""
        connection = connection_of(receive)
        try:
            if connection.closed:
                return
            if self.buffer_bytes is not None:
                connection.bound_buffers(self.buffer_bytes)
            async with anyio.create_task_group() as group:
                group.start_soon(_cancel_at_disconnect, receive, group.cancel_scope)
                await self._send_events(send, connection)
                group.cancel_scope.cancel()
        finally:
            await self._close_iterator()

    async def _send_events(self, send: Send, connection: ClientConnection) -> None:
        """Each chunk, then the end of the body; a `send()` is timed only while writes are
        paused, which keeps the common path free of a timer per event."""
        async for chunk in self.iterator:
            body = chunk if isinstance(chunk, bytes) else chunk.encode(self.encoding)
            if connection.closed:
                return
            message: HTTPResponseBodyEvent = {
                "type": "http.response.body",
                "body": body,
                "more_body": True,
            }
            if not connection.writes_paused:
                await send(message)
            else:
                try:
                    async with asyncio.timeout(self.send_timeout):
                        await send(message)
                except TimeoutError:
                    logger.info("client took nothing for %ss: stream dropped", self.send_timeout)
                    connection.abort()
                    return
            if connection.closed:
                return
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _close_iterator(self) -> None:
        aclose = getattr(self.iterator, "aclose", None)
        if aclose is not None:
            with anyio.CancelScope(shield=True):
                await aclose()


async def client_disconnected(receive: Receive) -> None:
    """Returns once the client has disconnected: its body was read, so nothing else arrives."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _cancel_at_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    await client_disconnected(receive)
    scope.cancel()


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
        return _EventStreamResponse(
            iterator=self.iterator,
            background=self.background,
            content_length=0,
            cookies=self.cookies,
            encoding=self.encoding,
            headers={**(headers or {}), **self.headers},
            is_head_response=is_head_response,
            media_type="text/event-stream",
            status_code=self.status_code or 200,
            send_timeout=self.send_timeout,
            buffer_bytes=self.buffer_bytes,
        )


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
