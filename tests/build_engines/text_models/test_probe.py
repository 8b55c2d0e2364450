"""The Triton pod's probe against a real HTTP server playing Triton: busy, or a dead stub."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from build_engines.text_models.probe import main
from local_runtime.ports import free_port

DEAD_STUB: dict[str, object] = {"error": "Stub process 'p_bls_0_0' is not healthy."}


class TritonStandIn(BaseHTTPRequestHandler):
    """Ready and live; `generate` answers as `behaviour` says: text, dead stub, or too late."""

    behaviour = "text"

    def do_GET(self) -> None:
        self._reply(200, {})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        if self.behaviour == "busy":
            time.sleep(2)
        if self.behaviour == "dead stub":
            self._reply(400, DEAD_STUB)
        else:
            self._reply(200, {"model_name": "p_bls", "text_output": "pong"})

    def _reply(self, status: int, body: dict[str, object]) -> None:
        payload = json.dumps(body).encode()
        with contextlib.suppress(ConnectionError):  # a probe that gave up has hung up
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


def serving(behaviour: str) -> Iterator[str]:
    handler = type("Handler", (TritonStandIn,), {"behaviour": behaviour})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def answering() -> Iterator[str]:
    yield from serving("text")


@pytest.fixture
def busy() -> Iterator[str]:
    yield from serving("busy")


@pytest.fixture
def dead_stub() -> Iterator[str]:
    yield from serving("dead stub")


def probe(url: str, *flags: str) -> int:
    return main(["--url", url, "--model", "p_bls", "--timeout", "0.5", *flags])


def test_models_that_answer_pass_both_probes(answering: str) -> None:
    assert probe(answering) == 0
    assert probe(answering, "--liveness") == 0


def test_a_model_too_busy_to_answer_in_time_fails_readiness_only(busy: str) -> None:
    assert probe(busy) == 1
    assert probe(busy, "--liveness") == 0


def test_a_dead_stub_fails_both_probes(dead_stub: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert probe(dead_stub) == 1
    assert probe(dead_stub, "--liveness") == 1
    assert "p_bls: 400" in capsys.readouterr().err


def test_an_unreachable_server_fails_both_probes() -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    assert probe(nobody) == 1
    assert probe(nobody, "--liveness") == 1
