"""The BLS model's Python stub under concurrent streams, and readiness when a stub dies.

Each test here starts a tritonserver of its own (the int8 text path), since one of them
kills a stub for real with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from llm_contract.engines import ENGINE_SPECS
from llm_contract.model_repository import GENERATION_COMPONENT, TEXT_PATH_COMPONENTS
from local_runtime.triton_server import TritonServer
from tests.backend.bls_soak import python_stubs, run_round, stub_death_lines, stub_is_alive

pytestmark = pytest.mark.triton
SPEC = ENGINE_SPECS["int8"]
BLS = SPEC.triton_model("bls")
ENSEMBLE = SPEC.triton_model("ensemble")
TEXT_PATH = [
    SPEC.triton_model(component) for component in (GENERATION_COMPONENT, *TEXT_PATH_COMPONENTS)
]
ROUNDS = 3
CONCURRENCY = 64


def own_triton(repository: Path, log_dir: Path, models: list[str]) -> TritonServer:
    return TritonServer.on_free_ports(
        repository,
        log_path=log_dir / "tritonserver.log",
        models=models,
    )


@pytest.fixture(scope="module")
def text_path_triton(
    cpu_model_repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TritonServer]:
    with own_triton(cpu_model_repository, tmp_path_factory.mktemp("bls-health"), TEXT_PATH) as s:
        yield s


@pytest.fixture(scope="module")
def dead_bls_stub(
    cpu_model_repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TritonServer]:
    """A Triton whose BLS stub was killed with SIGKILL, as a crash would end it. Stopped
    after 5 s: with a dead stub Triton waits out its exit timeout unloading the model."""
    models = [SPEC.generation_model, BLS]
    server = own_triton(cpu_model_repository, tmp_path_factory.mktemp("dead-stub"), models)
    server.start()
    try:
        assert server.process is not None
        (stub_pid,) = python_stubs(server.process.pid)[BLS]
        os.kill(stub_pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while stub_is_alive(stub_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not stub_is_alive(stub_pid)
        yield server
    finally:
        server.stop(timeout=5)


def probe(server: TritonServer, *flags: str) -> subprocess.CompletedProcess[str]:
    """The probe as the chart runs it: its own file, from the generated repository."""
    script = server.model_repository / BLS / "1" / "text_models" / "probe.py"
    models = [
        flag for model in (BLS, ENSEMBLE) if model in server.models for flag in ("--model", model)
    ]
    return subprocess.run(
        [sys.executable, "-I", str(script), "--url", server.http_url, *models, *flags],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_rounds_of_64_concurrent_bls_streams_all_complete_and_the_stub_survives(
    text_path_triton: TritonServer,
) -> None:
    assert text_path_triton.process is not None
    (stub_pid,) = python_stubs(text_path_triton.process.pid)[BLS]
    for _ in range(ROUNDS):
        result = run_round(
            text_path_triton.http_url, BLS, concurrency=CONCURRENCY, max_tokens=8, timeout=60
        )
        assert result.failures == []
        assert stub_is_alive(stub_pid)
    assert stub_death_lines(text_path_triton.log_text()) == []


def test_the_readiness_probe_passes_while_the_models_answer(
    text_path_triton: TritonServer,
) -> None:
    outcome = probe(text_path_triton)
    assert outcome.returncode == 0, outcome.stderr


def test_the_liveness_probe_passes_while_the_models_answer(
    text_path_triton: TritonServer,
) -> None:
    outcome = probe(text_path_triton, "--liveness")
    assert outcome.returncode == 0, outcome.stderr


def test_triton_24_10_still_calls_a_model_with_a_dead_stub_ready(
    dead_bls_stub: TritonServer,
) -> None:
    """Why the probe asks the models: Triton's own endpoints do not notice."""
    assert httpx.get(f"{dead_bls_stub.http_url}/v2/health/ready").status_code == 200
    assert httpx.get(f"{dead_bls_stub.http_url}/v2/models/{BLS}/ready").status_code == 200
    reply = httpx.post(
        f"{dead_bls_stub.http_url}/v2/models/{BLS}/generate",
        json={"text_input": "hello", "max_tokens": 1},
        timeout=30,
    )
    assert reply.status_code == 400
    assert "is not healthy" in reply.text


def test_a_dead_bls_stub_fails_the_readiness_probe(dead_bls_stub: TritonServer) -> None:
    outcome = probe(dead_bls_stub)
    assert outcome.returncode == 1
    assert BLS in outcome.stderr
    assert "is not healthy" in outcome.stderr


def test_a_dead_bls_stub_fails_the_liveness_probe(dead_bls_stub: TritonServer) -> None:
    """Nothing restarts the stub, so only a new container brings the model back."""
    outcome = probe(dead_bls_stub, "--liveness")
    assert outcome.returncode == 1
    assert BLS in outcome.stderr
