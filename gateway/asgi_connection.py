"""What the server knows about a client's connection and ASGI does not say: whether it is
closed, whether a `send()` may wait for the client, its buffers, and cutting it.

ASGI drops a `send()` after a disconnect without an error, and a `send()` to a client that
stopped reading simply waits. uvicorn keeps the answers on its request cycle, the object its
`receive` is a bound method of; this module is the only one that reads it, and
`_UvicornCycle` below lists everything it reads. Under another server (or a `receive`
wrapped by a middleware) the answers are the safe ones: never closed (the disconnect
listener ends the stream a moment later), writes possibly paused (every `send()` is timed),
and the buffers and the cut are left to the server.

Under uvicorn without those attributes (a uvicorn upgrade renamed them), the same fallback
applies and an error is logged once; `tests/gateway/test_asgi_connection.py` asserts on the answers
under a real uvicorn, so it fails instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
from typing import Protocol, cast

from litestar.types import Receive

logger = logging.getLogger("gateway.asgi_connection")


class _UvicornFlow(Protocol):
    write_paused: bool
    """Set while the transport's buffer is above its high-water mark (`pause_writing`)."""


class _UvicornCycle(Protocol):
    """What is read of uvicorn's `RequestResponseCycle` (httptools and h11 alike, 0.54)."""

    disconnected: bool
    """Set by `connection_lost`; the cycle's `send()` drops messages from then on."""
    transport: asyncio.Transport
    """The connection's; it is closing as soon as the client's end-of-stream arrived."""
    flow: _UvicornFlow


class ClientConnection(Protocol):
    @property
    def closed(self) -> bool:
        """The client is gone: the next `send()` would be dropped."""

    @property
    def writes_paused(self) -> bool:
        """A `send()` may wait for the client to read."""

    def bound_buffers(self, size: int) -> None:
        """Pause the sender once `size` bytes wait in the process, and let the kernel hold
        at most `size` more."""

    def abort(self) -> None:
        """Cut the connection now, dropping what was not sent."""


class UvicornConnection:
    __slots__ = ("_cycle",)

    def __init__(self, cycle: _UvicornCycle) -> None:
        self._cycle = cycle

    @property
    def closed(self) -> bool:
        return self._cycle.disconnected or self._cycle.transport.is_closing()

    @property
    def writes_paused(self) -> bool:
        return self._cycle.flow.write_paused

    def bound_buffers(self, size: int) -> None:
        transport = self._cycle.transport
        transport.set_write_buffer_limits(high=size)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)

    def abort(self) -> None:
        self._cycle.transport.abort()


class UnknownConnection:
    """A connection the server says nothing about; `why` says why it is taken as such."""

    __slots__ = ("why",)

    def __init__(self, why: str) -> None:
        self.why = why

    @property
    def closed(self) -> bool:
        return False

    @property
    def writes_paused(self) -> bool:
        return True

    def bound_buffers(self, size: int) -> None:
        pass

    def abort(self) -> None:
        pass


_NOT_UVICORN = UnknownConnection("`receive` is not a method of uvicorn's request cycle")


def connection_of(receive: Receive) -> ClientConnection:
    """The connection `receive` reads from (a uvicorn `receive` is checked once per call,
    which is once per response)."""
    cycle = getattr(receive, "__self__", None)
    if cycle is None or not type(cycle).__module__.startswith("uvicorn."):
        return _NOT_UVICORN
    missing = _missing_attributes(cycle)
    if missing:
        why = f"uvicorn's request cycle has no {', '.join(missing)}"
        _log_once(why)
        return UnknownConnection(why)
    return UvicornConnection(cast(_UvicornCycle, cycle))


def _missing_attributes(cycle: object) -> list[str]:
    """What `cycle` lacks of `_UvicornCycle`, then of its `flow`'s."""
    missing = [name for name in _UvicornCycle.__annotations__ if not hasattr(cycle, name)]
    if missing:
        return missing
    flow = cast(_UvicornCycle, cycle).flow
    return [f"flow.{name}" for name in _UvicornFlow.__annotations__ if not hasattr(flow, name)]


@functools.cache
def _log_once(why: str) -> None:
    logger.error(
        "%s: every send is timed, buffers are not bounded, and a client that stops reading"
        " keeps its connection",
        why,
    )
