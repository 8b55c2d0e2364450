"""Stopping Triton stops the CPU twin's Python stub cleanly, in a real tritonserver."""

from __future__ import annotations

import resource
import time
from pathlib import Path

import pytest

from build_engines.cli import main as build_engines_main
from local_runtime.triton_server import TritonServer
from tests.triton_fixtures import RANDOM_TWINS

pytestmark = pytest.mark.slow  # it starts and stops a tritonserver of its own

CORE_PATTERN = Path("/proc/sys/kernel/core_pattern")


@pytest.mark.triton
def test_stopping_triton_leaves_no_crashed_stub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crashing process writes `core` into its working directory (with this machine's
    kernel.core_pattern and an unlimited core size): after a clean shutdown there is none."""
    if CORE_PATTERN.read_text().strip() != "core":
        pytest.skip(f"kernel.core_pattern is {CORE_PATTERN.read_text().strip()!r}, not 'core'")
    repository = tmp_path / "model_repository"
    assert (
        build_engines_main([*RANDOM_TWINS, "--precision", "int8", "--output", str(repository)]) == 0
    )
    working_directory = tmp_path / "cwd"
    working_directory.mkdir()
    monkeypatch.chdir(working_directory)
    limits = resource.getrlimit(resource.RLIMIT_CORE)
    resource.setrlimit(resource.RLIMIT_CORE, (limits[1], limits[1]))
    try:
        server = TritonServer.on_free_ports(
            repository,
            log_path=tmp_path / "tritonserver.log",
        )
        with server:
            assert server.is_ready()
    finally:
        resource.setrlimit(resource.RLIMIT_CORE, limits)
    time.sleep(1)
    assert sorted(path.name for path in working_directory.glob("core*")) == []
