"""Session fixtures: the CPU model repository built by the real CLI, served by a real
`tritonserver` on free ports. Registered in the root conftest so every suite shares one."""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from build_engines.cli import main as build_engines_main
from llm_contract.embeddings import EMBEDDING_MODEL
from llm_contract.engines import ENGINE_SPECS
from local_runtime.triton_server import TritonServer
from tests.file_lock import held

GENERATION_MODELS = [spec.generation_model for spec in ENGINE_SPECS.values()]
SERVED_MODELS = [*GENERATION_MODELS, EMBEDDING_MODEL]
"""The Triton models a gateway's catalog of the default build's twins calls (the generation
models, not their text paths, and the embedding twin), all of which its readiness waits for;
the random build has no embedding twin."""

RANDOM_TWINS = ("--target", "cpu", "--twin-model", "random")
"""`build-engines` arguments for the random twins: a fast synthetic backend, whose gibberish
runs to max_tokens, for the tests of everything but the model's answers."""


@pytest.fixture(scope="session")
def cpu_model_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("triton") / "model_repository"
    # Paced like a modest GPU, so a long generation lasts seconds whatever the machine's
    # load: a test that cancels one mid-way cannot lose the race to its natural end.
    arguments = [*RANDOM_TWINS, "--precision", "all", "--output", str(output)]
    assert build_engines_main([*arguments, "--decode-tokens-per-second", "400"]) == 0
    return output


@pytest.fixture(scope="session")
def smollm2_model_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default build: both twins run SmolLM2-135M-Instruct, unpaced. Built once for all
    of pytest-xdist's workers (400 MB, seconds), in the folder their own ones share."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    output = root / "smollm2" / "model_repository"
    output.parent.mkdir(exist_ok=True)
    with held(output.parent / "build.lock"):
        if not (output.parent / "built").exists():
            arguments = ["--target", "cpu", "--precision", "all", "--output", str(output)]
            assert build_engines_main(arguments) == 0
            (output.parent / "built").touch()
    return output


@pytest.fixture(scope="session")
def smollm2_triton(
    smollm2_model_repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TritonServer]:
    """A Triton serving the real-model twins (their token models only) and the embedding
    twin (all-MiniLM-L6-v2)."""
    server = TritonServer.on_free_ports(
        smollm2_model_repository,
        log_path=tmp_path_factory.mktemp("smollm2-triton-log") / "tritonserver.log",
        models=SERVED_MODELS,
    )
    with server:
        yield server


@pytest.fixture(scope="session")
def triton(
    cpu_model_repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TritonServer]:
    """The session's Triton: the generation models the gateways call. (The text path's
    Python models take seconds to start and stop; its tests start their own.)"""
    server = TritonServer.on_free_ports(
        cpu_model_repository,
        log_path=tmp_path_factory.mktemp("triton-log") / "tritonserver.log",
        models=GENERATION_MODELS,
    )
    with server:
        yield server


@pytest.fixture
def own_triton(cpu_model_repository: Path, tmp_path: Path) -> Iterator[TritonServer]:
    """A Triton of the test's own, serving only the token models, which the test may kill
    or watch without touching the session's."""
    server = TritonServer.on_free_ports(
        cpu_model_repository, log_path=tmp_path / "tritonserver.log", models=GENERATION_MODELS
    )
    with server:
        yield server


@pytest.fixture(autouse=True)
def triton_restarted_if_it_crashed(request: pytest.FixtureRequest) -> None:
    """Before each test on the session's Triton: if an earlier test's traffic crashed it,
    start it again (as Kubernetes would) and say so in the run's warnings, then wait for the
    session's gateway to reconnect.

    The wheel's Triton 24.10 can segfault when a gRPC cancellation races a request's end, an
    upstream bug fixed in later releases (the chart runs 26.04); the tests that kill Triton on
    purpose use a Triton of their own.
    """
    if request.node.get_closest_marker("triton") is None or "triton" not in request.fixturenames:
        return
    server: TritonServer = request.getfixturevalue("triton")
    code = server.restart_if_exited()
    if code is None:
        return
    warnings.warn(f"the session's tritonserver had exited ({code}); restarted it", stacklevel=1)
    if "gateway" in request.fixturenames:
        base_url = request.getfixturevalue("gateway").base_url
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if httpx.get(f"{base_url}/readyz", timeout=5).status_code == 200:
                return
            time.sleep(0.25)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that needs the session's tritonserver, directly or through a fixture such
    as `gateway`, carries the `triton` marker, so `-m "not triton"` never starts Triton."""
    for item in items:
        if "triton" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.triton)
