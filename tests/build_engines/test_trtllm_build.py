"""`build-engines --target trtllm` end to end against stand-ins of TensorRT-LLM 1.2.1's
modules and of a GPU (tests/stand_ins): everything up to where real TensorRT would start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llm_contract.engines import ENGINE_SPECS
from llm_contract.model_repository import GENERATION_COMPONENT, TEXT_PATH_COMPONENTS
from tests.build_engines.stand_in_build import (
    STAND_INS,
    run_stand_in_build,
    write_hf_checkpoint,
)

pytestmark = pytest.mark.slow  # each build runs the stand-in toolchain in processes

HOPPER, B200, B300, RTX_BLACKWELL = 90, 100, 103, 120


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_hf_checkpoint(tmp_path_factory.mktemp("hf") / "Llama-2-7b-chat-hf")


def build(
    tmp_path: Path, checkpoint: Path, precision: str, sm: int | None, *extra: str
) -> tuple[int, str, Path]:
    """Build into a fresh repository from a work dir nothing has created yet (the chart's
    `emptyDir`); returns the exit code, stderr and the repository."""
    output = tmp_path / "model_repository"
    result = run_stand_in_build(
        "--precision", precision, "--checkpoint", str(checkpoint), "--output", str(output),
        "--work-dir", str(tmp_path / "work" / "not-yet-created"), *extra,
        sm=sm, cwd=tmp_path,
    )  # fmt: skip
    return result.returncode, result.stderr, output


def engine_dir(repository: Path, precision: str) -> Path:
    return repository / ENGINE_SPECS[precision].generation_model / "1"  # type: ignore[index]


def test_both_precisions_build_into_a_complete_repository_from_an_empty_work_dir(
    tmp_path: Path, checkpoint: Path
) -> None:
    code, stderr, repository = build(tmp_path, checkpoint, "all", HOPPER)
    assert code == 0, stderr
    for precision in ("int8", "fp16"):
        assert (engine_dir(repository, precision) / "rank0.engine").is_file()
        checkpoint_dir = tmp_path / "work" / "not-yet-created" / f"{precision}-checkpoint"
        assert (checkpoint_dir / "rank0.safetensors").is_file()
        for component in (GENERATION_COMPONENT, *TEXT_PATH_COMPONENTS):
            model = ENGINE_SPECS[precision].triton_model(component)  # type: ignore[index]
            assert (repository / model / "config.pbtxt").is_file()


def test_the_engine_is_built_with_a_paged_kv_cache_sized_from_the_limits(
    tmp_path: Path, checkpoint: Path
) -> None:
    code, stderr, repository = build(tmp_path, checkpoint, "int8", HOPPER)
    assert code == 0, stderr
    config = json.loads((engine_dir(repository, "int8") / "config.json").read_text())
    build_config = config["build_config"]
    assert build_config["kv_cache_type"] == "PAGED"
    assert build_config["plugin_config"]["paged_kv_cache"] is True
    assert build_config["plugin_config"]["tokens_per_block"] == 64
    assert build_config["plugin_config"]["weight_only_quant_matmul_plugin"] == "float16"
    assert (build_config["max_input_len"], build_config["max_seq_len"]) == (2048, 3848)
    assert config["pretrained_config"]["quantization"]["quant_algo"] == "W8A16"


@pytest.mark.parametrize("sm", [B200, B300])
def test_int8_on_data_centre_blackwell_stops_before_converting_with_the_reason(
    tmp_path: Path, checkpoint: Path, sm: int
) -> None:
    code, stderr, repository = build(tmp_path, checkpoint, "int8", sm)
    assert code == 2
    assert "weight-only int8 does not build on this GPU" in stderr
    assert "Build --precision fp16 here" in stderr
    assert "Traceback" not in stderr
    assert not (tmp_path / "work").exists()
    assert not repository.exists()


@pytest.mark.parametrize(("precision", "sm"), [("fp16", B200), ("int8", RTX_BLACKWELL)])
def test_what_the_gpu_supports_builds_on_blackwell(
    tmp_path: Path, checkpoint: Path, precision: str, sm: int
) -> None:
    code, stderr, repository = build(tmp_path, checkpoint, precision, sm)
    assert code == 0, stderr
    assert (engine_dir(repository, precision) / "rank0.engine").is_file()


def test_the_stand_in_refuses_int8_on_sm_100_as_upstreams_builder_does(
    tmp_path: Path, checkpoint: Path
) -> None:
    """Were the check before converting gone, TensorRT-LLM itself would stop the build."""
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); import tensorrt_llm;"
        "from tensorrt_llm.models import LLaMAForCausalLM;"
        "from tensorrt_llm.models.modeling_utils import QuantConfig;"
        "from tensorrt_llm.quantization import QuantAlgo;"
        "m = LLaMAForCausalLM.from_hugging_face(sys.argv[2], 'float16',"
        " quant_config=QuantConfig(quant_algo=QuantAlgo.W8A16));"
        "tensorrt_llm.build(m, tensorrt_llm.BuildConfig(max_seq_len=8))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(STAND_INS), str(checkpoint)],
        env={**os.environ, "TRTLLM_STAND_IN_SM": str(B200)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert "RuntimeError: INT8/INT4 quantization is not supported on SM>=100." in result.stderr


def test_without_a_gpu_the_build_stops_with_the_reason(tmp_path: Path, checkpoint: Path) -> None:
    code, stderr, repository = build(tmp_path, checkpoint, "fp16", None)
    assert code == 2
    assert "no NVIDIA GPU is visible" in stderr
    assert not repository.exists()


def test_each_gpu_gets_its_own_engine_instance(tmp_path: Path, checkpoint: Path) -> None:
    code, stderr, repository = build(tmp_path, checkpoint, "fp16", HOPPER, "--gpus", "2")
    assert code == 0, stderr
    config = (engine_dir(repository, "fp16").parent / "config.pbtxt").read_text()
    assert "{ count: 2 kind: KIND_CPU }" in config
    assert 'key: "gpu_device_ids" value: { string_value: "0;1" }' in config
