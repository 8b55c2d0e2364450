"""The repository writer: every generated config is a valid Triton ModelConfig, for both
targets and both precisions, and the ensemble is wired to models that exist."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from build_engines.cli import main as build_engines_main
from llm_contract.engines import ENGINE_SPECS, PRECISIONS
from llm_contract.model_repository import GENERATION_COMPONENT, TEXT_PATH_COMPONENTS
from tests.triton_fixtures import RANDOM_TWINS

pytestmark = pytest.mark.slow  # it builds the SmolLM2 and TensorRT-LLM repositories

COMPONENTS = (GENERATION_COMPONENT, *TEXT_PATH_COMPONENTS)


def parse_config(model_dir: Path) -> model_config_pb2.ModelConfig:
    config = model_config_pb2.ModelConfig()
    text_format.Parse((model_dir / "config.pbtxt").read_text(), config)
    return config


def parameters(config: model_config_pb2.ModelConfig) -> dict[str, str]:
    return {key: value.string_value for key, value in config.parameters.items()}


@pytest.fixture(scope="module")
def cpu_repository(smollm2_model_repository: Path) -> Path:
    return smollm2_model_repository


@pytest.fixture(scope="module")
def trtllm_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trtllm layout without compiled engines (they need a GPU)."""
    from build_engines.repository import RepositoryPlan, write_repository
    from build_engines.tokenizer_asset import TOKENIZER_CONFIG_PATH, TOKENIZER_PATH

    output = tmp_path_factory.mktemp("trtllm") / "model_repository"
    for spec in ENGINE_SPECS.values():
        write_repository(
            RepositoryPlan(
                target="trtllm",
                spec=spec,
                output=output,
                tokenizer_files=(TOKENIZER_PATH, TOKENIZER_CONFIG_PATH),
                max_batch_size=64,
                serve_root=Path("/models"),
            )
        )
    return output


@pytest.fixture(params=["cpu", "trtllm"])
def repository(request: pytest.FixtureRequest) -> Path:
    return request.getfixturevalue(f"{request.param}_repository")  # type: ignore[no-any-return]


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("component", COMPONENTS)
def test_every_config_parses_as_a_triton_model_config(
    repository: Path, precision: str, component: str
) -> None:
    model_name = ENGINE_SPECS[precision].triton_model(component)  # type: ignore[index]
    config = parse_config(repository / model_name)
    assert config.name == model_name


@pytest.mark.parametrize("precision", PRECISIONS)
def test_cpu_generation_model_is_a_decoupled_python_twin_sized_from_the_limits(
    cpu_repository: Path, precision: str
) -> None:
    spec = ENGINE_SPECS[precision]  # type: ignore[index]
    config = parse_config(cpu_repository / spec.generation_model)
    assert config.backend == "python"
    assert config.model_transaction_policy.decoupled
    assert parameters(config)["max_input_len"] == str(spec.limits.max_input_len)
    assert parameters(config)["max_output_len"] == str(spec.limits.max_output_len)
    assert parameters(config)["weight_precision"] == precision


@pytest.mark.parametrize("precision", PRECISIONS)
def test_trtllm_generation_model_uses_the_tensorrtllm_backend_with_inflight_batching(
    trtllm_repository: Path, precision: str
) -> None:
    spec = ENGINE_SPECS[precision]  # type: ignore[index]
    config = parse_config(trtllm_repository / spec.generation_model)
    assert config.backend == "tensorrtllm"
    assert config.model_transaction_policy.decoupled
    assert parameters(config)["gpt_model_type"] == "inflight_fused_batching"
    assert parameters(config)["gpt_model_path"] == f"/models/{spec.triton_model('tensorrt_llm')}/1"
    assert parameters(config)["max_attention_window_size"] == str(spec.limits.max_seq_len)


def test_both_targets_expose_the_same_generation_tensors(
    cpu_repository: Path, trtllm_repository: Path
) -> None:
    name = ENGINE_SPECS["int8"].generation_model
    cpu, gpu = parse_config(cpu_repository / name), parse_config(trtllm_repository / name)
    assert [(t.name, t.data_type, list(t.dims)) for t in cpu.input] == [
        (t.name, t.data_type, list(t.dims)) for t in gpu.input
    ]
    assert [(t.name, t.data_type) for t in cpu.output] == [
        (t.name, t.data_type) for t in gpu.output
    ]


@pytest.mark.parametrize("precision", PRECISIONS)
def test_ensemble_steps_name_existing_models_and_tensors_of_matching_type(
    repository: Path, precision: str
) -> None:
    spec = ENGINE_SPECS[precision]  # type: ignore[index]
    ensemble = parse_config(repository / spec.triton_model("ensemble"))
    assert ensemble.platform == "ensemble"
    ensemble_tensors = {t.name: t.data_type for t in [*ensemble.input, *ensemble.output]}
    produced: dict[str, int] = dict(ensemble_tensors)
    for step in ensemble.ensemble_scheduling.step:
        model = parse_config(repository / step.model_name)
        model_inputs = {t.name: t.data_type for t in model.input}
        model_outputs = {t.name: t.data_type for t in model.output}
        for model_input, ensemble_tensor in step.input_map.items():
            assert model_input in model_inputs, f"{step.model_name} has no input {model_input}"
            assert ensemble_tensor in produced, f"{ensemble_tensor} is produced by no earlier step"
            assert produced[ensemble_tensor] == model_inputs[model_input]
        for model_output, ensemble_tensor in step.output_map.items():
            assert model_output in model_outputs, f"{step.model_name} has no output {model_output}"
            produced[ensemble_tensor] = model_outputs[model_output]
    for output in ensemble.output:
        assert output.name in produced


def test_generation_model_ships_the_tokenizer(cpu_repository: Path) -> None:
    tokenizer = cpu_repository / ENGINE_SPECS["fp16"].generation_model / "tokenizer"
    assert (tokenizer / "tokenizer.json").is_file()


def test_rewriting_a_repository_replaces_it_cleanly(tmp_path: Path) -> None:
    output = tmp_path / "repo"
    for _ in range(2):
        assert (
            build_engines_main([*RANDOM_TWINS, "--precision", "int8", "--output", str(output)]) == 0
        )
    assert sorted(path.name for path in output.iterdir()) == sorted(
        ENGINE_SPECS["int8"].triton_model(component) for component in COMPONENTS
    )


def test_generated_entry_point_puts_pythonpath_first_for_the_isolated_stub(
    cpu_repository: Path, tmp_path: Path
) -> None:
    """Triton's stub interpreter ignores PYTHONPATH; `model.py` must honour it itself."""
    model_py = cpu_repository / ENGINE_SPECS["int8"].generation_model / "1" / "model.py"
    bootstrap = model_py.read_text().split("from cpu_twin")[0]
    site_packages = tmp_path / "site-packages"
    site_packages.mkdir()
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site_packages), "/missing"])}
    completed = subprocess.run(
        [sys.executable, "-I", "-c", f"{bootstrap}\nimport sys; print(sys.path[0])"],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    assert completed.stdout.strip() == str(site_packages)
