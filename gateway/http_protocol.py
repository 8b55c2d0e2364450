"""HTTP/1.1 connections with the bounds uvicorn's httptools protocol lacks.

uvicorn reads a request head of any size (httptools buffers an unterminated header in full:
three 64 MB headers took 200 MB), waits for it forever (a half-sent request holds its
connection until the client leaves), accepts any number of connections, and waits for a
body as slowly as a client sends it. This subclass keeps uvicorn's parser, request cycle
and streaming (the gateway's SSE path relies on them) and adds, per process:

- a head (request line and headers) larger than `max_header_bytes`, or with more than
  `max_header_count` headers, gets 431 and the connection is closed, however the bytes are
  split into packets;
- a head not complete `header_timeout_seconds` after its connection opened (or after its
  first byte, on a kept-alive connection) gets 408; a body not complete
  `body_timeout_seconds` after its head likewise; a connection that sent nothing is closed;
- a connection beyond `max_connections` open ones gets 503 with `Retry-After` at once.

Each refusal is in the error format of the API the request is for, as far as its target is
known (OpenAI's under `/v1/`), like the app's own errors.

h11 (uvicorn's other protocol) bounds the head's size but has none of the rest, and parses
in Python; Granian and Hypercorn have some of these limits but not uvicorn's request cycle.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from gateway.error_codes import ErrorCode
from gateway.error_format import error_body
from gateway.errors import ApiError
from gateway.settings import ServerSettings, get_settings

RETRY_AFTER_SECONDS = 1
LINGER_SECONDS = 1.0


@dataclass(frozen=True)
class ConnectionLimits:
    max_header_bytes: int = 32 * 1024
    max_header_count: int = 100
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
    max_connections: int = 2048

    @classmethod
    def of(cls, server: ServerSettings) -> ConnectionLimits:
        return cls(
            server.max_header_bytes,
            server.max_header_count,
            server.header_timeout_seconds,
            server.body_timeout_seconds,
            server.max_connections,
        )


@functools.cache
def process_limits() -> ConnectionLimits:
    """Read once per process: uvicorn makes a protocol per connection, and its worker
    processes rebuild their config from the environment."""
    return ConnectionLimits.of(get_settings().server)


def _refusal(status: int, reason: bytes, body: bytes, *headers: bytes) -> bytes:
    return b"".join(
        [
            b"HTTP/1.1 %d %s\r\n" % (status, reason),
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n",
            *(header + b"\r\n" for header in headers),
            b"\r\n",
            body,
        ]
    )


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = process_limits()
        self._refused = False
        self._reading_head = True
        self._head_bytes = 0
        self._head_size = 0
        self._header_count = 0
        self._received_any = False
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            self.transport = transport
            message = "The server has too many open connections; retry shortly"
            self._refuse(
                _refusal(
                    503,
                    b"Service Unavailable",
                    error_body(b"", ApiError(503, ErrorCode.OVERLOADED, message)),
                    b"retry-after: %d" % RETRY_AFTER_SECONDS,
                ),
                # Refused at once, so that a flood of connections holds no sockets open.
                linger=False,
            )
            return
        super().connection_made(transport)
        self._arm(self.limits.header_timeout_seconds)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        self._received_any = True
        if self._reading_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._reading_head and self._head_bytes > self.limits.max_header_bytes:
            self._head_too_large()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_head = True
        self._head_size = self._header_count = 0
        if self._deadline is None:
            self._arm(self.limits.header_timeout_seconds)

    def on_url(self, url: bytes) -> None:
        if self._refused:
            return
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._refused:
            return
        self._header_count += 1
        self._count_head(len(name) + len(value) + 4)
        if self._header_count > self.limits.max_header_count:
            self._refuse(
                _refusal(
                    431,
                    b"Request Header Fields Too Large",
                    self._error_body(
                        431, f"More than {self.limits.max_header_count} request headers"
                    ),
                )
            )
            return
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._reading_head = False
        self._head_bytes = 0
        self._disarm()
        self._arm(self.limits.body_timeout_seconds)
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        self._disarm()
        self._reading_head = True
        super().on_message_complete()

    def _count_head(self, size: int) -> None:
        self._head_size += size
        if self._head_size > self.limits.max_header_bytes:
            self._head_too_large()

    def _head_too_large(self) -> None:
        self._refuse(
            _refusal(
                431,
                b"Request Header Fields Too Large",
                self._error_body(
                    431, f"Request line and headers are over {self.limits.max_header_bytes} bytes"
                ),
            )
        )

    def _arm(self, seconds: float) -> None:
        self._deadline = self.loop.call_later(seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self._refused or self.transport.is_closing():
            return
        if self.cycle is not None and self.cycle.response_started:
            self.transport.close()
            return
        if not self._received_any:
            self._refuse(b"")
            return
        part = "head" if self._reading_head else "body"
        self._refuse(
            _refusal(
                408,
                b"Request Timeout",
                self._error_body(408, f"The request's {part} came too slowly"),
            )
        )
        if self.cycle is not None:
            self.cycle.disconnected = True
            self.cycle.message_event.set()

    def _error_body(self, status: int, message: str) -> bytes:
        """In the format of the API the request is for, as far as its target has arrived."""
        return error_body(getattr(self, "url", b""), ApiError(status, ErrorCode.BAD_INPUT, message))

    def _refuse(self, response: bytes, *, linger: bool = True) -> None:
        """Answer `response` (if any) and close: nothing more of this connection is parsed.

        With `linger`, the answer is followed by the end of the stream, and what the client
        still sends for `LINGER_SECONDS` is read and dropped before the close: a socket
        closed with unread bytes is reset, and the reset can destroy the answer before the
        client reads it (nginx's lingering close, for the same reason)."""
        self._refused = True
        self._disarm()
        if self.transport.is_closing():
            return
        if response:
            self.transport.write(response)
        if linger and self.transport.can_write_eof():
            self.transport.write_eof()
            self._deadline = self.loop.call_later(LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()
