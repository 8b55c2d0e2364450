"""The client's connection as uvicorn knows it (`gateway.asgi_connection`), and the event
stream that relies on it, in a real uvicorn over real sockets: uvloop, and httptools (whose
request cycle the gateway's own protocol keeps) or h11.

The assertions are on the adapter's answers while the connection is live, so that a uvicorn
whose request cycle no longer has what the adapter reads fails here: the fallback answers
(never closed, writes always possibly paused, no cut) give different ones. What the gateway
makes of the same streams end to end (billing, memory, nothing left behind) is
`tests/reliability/test_slow_client.py`'s and `test_stream_leftovers.py`'s.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvicorn
from litestar import Litestar, Request, get

from gateway.asgi_connection import ClientConnection, UvicornConnection, connection_of
from gateway.inference.sse import sse_event
from gateway.inference.streaming import EventStream

T = TypeVar("T")
SEND_TIMEOUT = 0.5
BUFFER_BYTES = 4096
TCP_ESTABLISHED = "01"


@dataclass(frozen=True)
class Answer:
    """What the adapter said when the event generator resumed."""

    at: float
    closed: bool
    writes_paused: bool


class Probe:
    """One stream: its events, what the adapter answered each time the stream resumed it
    (before anything else ran), and when it was closed."""

    def __init__(self, event_bytes: int) -> None:
        self.event_bytes = event_bytes
        self.answers: list[Answer] = []
        self.ended = threading.Event()
        self.ended_at = 0.0
        self._connection: ClientConnection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def serve(self, connection: ClientConnection) -> EventStream:
        self._connection = connection
        self._loop = asyncio.get_running_loop()
        return EventStream(self._events(), send_timeout=SEND_TIMEOUT, buffer_bytes=BUFFER_BYTES)

    @property
    def connection(self) -> ClientConnection:
        assert self._connection is not None, "the stream was not requested"
        return self._connection

    def ask(self, question: Callable[[ClientConnection], T]) -> T:
        """The adapter's answer now, asked on the server's loop."""

        async def answer() -> T:
            return question(self.connection)

        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(answer(), self._loop).result(5)

    async def _events(self) -> AsyncGenerator[bytes, None]:
        try:
            for n in itertools.count(1):
                connection = self.connection
                self.answers.append(
                    Answer(time.monotonic(), connection.closed, connection.writes_paused)
                )
                await asyncio.sleep(0)
                yield sse_event({"pad": "x" * self.event_bytes}, n)
        finally:
            self.ended_at = time.monotonic()
            self.ended.set()


class Server:
    """uvicorn in a thread of its own, on a port of its own, streaming probes' events."""

    def __init__(self, http: str) -> None:
        self.probes: dict[str, Probe] = {}

        @get("/events/{name:str}")
        async def events(request: Request[Any, Any, Any]) -> EventStream:
            probe = self.probes[request.path_params["name"]]
            return probe.serve(connection_of(request.receive))

        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        config = uvicorn.Config(
            Litestar([events]),
            http=http,
            loop="uvloop",
            lifespan="off",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, args=([self.socket],))

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.socket.close()

    def stream(self, event_bytes: int, receive_buffer: int | None = None) -> tuple[Probe, Client]:
        name = f"stream-{len(self.probes)}"
        probe = self.probes[name] = Probe(event_bytes)
        return probe, Client(self.port, f"/events/{name}", receive_buffer)


class Client:
    """A GET over a bare socket, so that the test decides when it reads and how it leaves."""

    def __init__(self, port: int, path: str, receive_buffer: int | None) -> None:
        self.socket = socket.socket()
        if receive_buffer is not None:  # before connecting, so that it sets the TCP window
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.socket.settimeout(10)
        self.socket.connect(("127.0.0.1", port))
        self.socket.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
        self.received = b""

    def read_events(self, count: int) -> None:
        while self.received.count(b"\nid: ") < count:
            chunk = self.socket.recv(65536)
            assert chunk, f"the stream ended early: ...{self.received[-200:]!r}"
            self.received += chunk
        assert self.received.startswith(b"HTTP/1.1 200 "), self.received[:200]

    def server_end(self, server: Server) -> tuple[str, int] | None:
        """(TCP state, inode) of the server's end of this connection: inode 0 once no file
        descriptor holds it; None once the kernel forgot it."""
        local, remote = server.port, self.socket.getsockname()[1]
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if _port(fields[1]) == local and _port(fields[2]) == remote:
                return fields[3], int(fields[9])
        return None


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1], 16)


@pytest.fixture(scope="module", params=["httptools", "h11"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    with Server(request.param) as running:
        yield running


def test_uvicorns_request_cycle_has_what_the_adapter_reads(server: Server) -> None:
    probe, client = server.stream(event_bytes=16)
    client.read_events(1)
    connection = probe.connection
    assert isinstance(connection, UvicornConnection), getattr(connection, "why", connection)
    client.socket.close()


def test_a_client_that_leaves_mid_stream_is_seen_gone_and_its_events_closed(
    server: Server,
) -> None:
    probe, client = server.stream(event_bytes=16)
    client.read_events(3)
    assert probe.ask(lambda connection: connection.closed) is False
    client.socket.close()
    assert probe.ended.wait(5), "the event generator was not closed"
    assert probe.ask(lambda connection: connection.closed) is True
    assert probe.answers[0] == Answer(probe.answers[0].at, closed=False, writes_paused=False)
    assert not any(answer.closed for answer in probe.answers), "resumed on a closed connection"


def test_a_client_that_stops_reading_pauses_writes_and_is_cut_after_the_send_timeout(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.streaming")
    probe, client = server.stream(event_bytes=1024, receive_buffer=2048)
    client.read_events(1)
    held = client.server_end(server)
    assert held is not None
    assert held[0] == TCP_ESTABLISHED
    assert held[1] != 0
    assert probe.ended.wait(SEND_TIMEOUT + 5), "the stalled stream was never dropped"

    first, last = probe.answers[0], probe.answers[-1]
    assert (first.closed, first.writes_paused) == (False, False)
    assert (last.closed, last.writes_paused) == (False, True), "writes never paused"
    assert not any(answer.writes_paused for answer in probe.answers[:-1])
    sent_kib = len(probe.answers) * probe.event_bytes / 1024
    assert sent_kib < 48, f"{sent_kib:.0f} KiB went out before writes paused: buffers unbounded"
    waited = probe.ended_at - last.at
    assert SEND_TIMEOUT - 0.05 <= waited < SEND_TIMEOUT + 1, f"dropped after {waited:.2f} s"
    assert f"client took nothing for {SEND_TIMEOUT}s: stream dropped" in caplog.text
    assert probe.ask(lambda connection: connection.closed) is True

    # The abort closed the server's socket although the client read nothing more: a
    # graceful close would wait, its fd open, for the client to take the unsent bytes.
    deadline = time.monotonic() + 2
    while (end := client.server_end(server)) is not None and end[1] != 0:
        assert time.monotonic() < deadline, f"the server's end is still held: {end}"
        time.sleep(0.02)
    client.socket.close()
