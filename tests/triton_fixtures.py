"""Session fixtures: the CPU model repository built by the real CLI, served by a real
`tritonserver` on free ports. Registered in the root conftest so every suite shares one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from build_engines.cli import main as build_engines_main
from build_engines.launcher import TritonServer, free_port


@pytest.fixture(scope="session")
def cpu_model_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("triton") / "model_repository"
    # Paced like a modest GPU, so a long generation lasts seconds whatever the machine's
    # load: a test that cancels one mid-way cannot lose the race to its natural end.
    arguments = ["--target", "cpu", "--precision", "all", "--output", str(output)]
    assert build_engines_main([*arguments, "--decode-tokens-per-second", "400"]) == 0
    return output


@pytest.fixture(scope="session")
def triton(
    cpu_model_repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TritonServer]:
    server = TritonServer(
        cpu_model_repository,
        http_port=free_port(),
        grpc_port=free_port(),
        metrics_port=free_port(),
        log_path=tmp_path_factory.mktemp("triton-log") / "tritonserver.log",
    )
    with server:
        yield server
