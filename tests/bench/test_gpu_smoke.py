"""`bench.gpu_smoke`, the GPU smoke test, run here on the CPU twins with the wheel's
tritonserver (`--skip-build --triton-root ''`): the same serve, stream and report steps."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.triton


def smoke(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.gpu_smoke", *arguments],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_it_serves_a_repository_streams_one_answer_and_prints_ttft_and_speed(
    cpu_model_repository: Path,
) -> None:
    done = smoke(
        "--skip-build", "--triton-root", "", "--output", str(cpu_model_repository),
        "--precision", "int8", "--max-tokens", "8",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "model: @cf/meta/llama-2-7b-chat-int8" in done.stdout
    assert re.search(r"^tokens: \d+ in, 8 out$", done.stdout, re.M)
    assert re.search(r"^time to first token: \d+ ms$", done.stdout, re.M)
    assert re.search(r"^decode: \d+\.\d tokens/s$", done.stdout, re.M)


def test_without_tensorrt_llm_the_build_step_stops_it(tmp_path: Path) -> None:
    done = smoke("--checkpoint", str(tmp_path), "--precision", "fp16")
    assert done.returncode == 2
    assert "tensorrt_llm is not installed" in done.stderr
