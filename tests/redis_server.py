"""A real redis-server of the test's own, on a free port: killed, stopped and restarted at
will (the shared Redis on 6379 must not be touched)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from local_runtime.ports import free_port


class RedisServer:
    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self._directory = directory
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self._process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self._directory)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def kill(self) -> None:
        """SIGKILL: no goodbye to the clients, and (no persistence) every key is gone."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(10)

    @contextmanager
    def stalled(self) -> Iterator[None]:
        """SIGSTOP: connections stay open and nothing answers (a hung or partitioned Redis)."""
        assert self._process is not None
        os.kill(self._process.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self._process.pid, signal.SIGCONT)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5, decode_responses=True)

    @contextmanager
    def round_trips(self) -> Iterator[list[str]]:
        """The commands clients sent in the block, as MONITOR saw them (lowercase names);
        what a Lua script runs inside is not a round trip and is left out."""
        sent: list[str] = []
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as monitor:
            monitor.sendall(b"MONITOR\r\n")
            lines = monitor.makefile("rb")
            assert lines.readline() == b"+OK\r\n"
            yield sent
            marker = uuid.uuid4().hex
            with socket.create_connection(("127.0.0.1", self.port), timeout=10) as other:
                other.sendall(f"ECHO {marker}\r\n".encode())
                other.recv(100)
            for line in lines:
                text = line.decode()
                if marker in text:
                    break
                if " lua] " not in text:
                    sent.append(text.partition('] "')[2].partition('"')[0].lower())

    def reset_stats(self) -> None:
        self.client().config_resetstat()


@pytest.fixture
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.kill()
