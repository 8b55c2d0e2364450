"""Conformance with the tensorrtllm backend's contract (`cpu_twin/trtllm_backend.py`, read
from TensorRT-LLM 1.2.1's source): the `trtllm` repository, rendered here by a full
`build-engines --target trtllm` against the stand-ins, and the CPU twins' repository declare
what the real backend reads and requires; the gateway sends and asks for what it needs (the
BLS model's request: tests/build_engines/text_models/test_bls.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from gateway.sampling import SamplingParams
from gateway.triton.inputs import GENERATION_OUTPUTS, build_inputs
from llm_contract import trtllm_backend
from llm_contract.engines import ENGINE_SPECS, PRECISIONS
from llm_contract.trtllm_backend import TensorSpec
from tests.build_engines.stand_in_build import run_stand_in_build, write_hf_checkpoint

ModelConfig = model_config_pb2.ModelConfig
TYPE_NAMES = model_config_pb2.DataType.Name
GPUS = 2


@pytest.fixture(scope="module")
def trtllm_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("trtllm-build")
    checkpoint = write_hf_checkpoint(work / "Llama-2-7b-chat-hf")
    output = work / "model_repository"
    result = run_stand_in_build(
        "--precision", "all", "--checkpoint", str(checkpoint), "--output", str(output),
        "--work-dir", str(work / "build"), "--gpus", str(GPUS), sm=90, cwd=work,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return output


@pytest.fixture(params=["trtllm", "cpu"])
def repository(request: pytest.FixtureRequest) -> Path:
    name = "trtllm_repository" if request.param == "trtllm" else "cpu_model_repository"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


def generation_config(repository: Path, precision: str) -> ModelConfig:
    model_dir = repository / ENGINE_SPECS[precision].generation_model  # type: ignore[index]
    return text_format.Parse((model_dir / "config.pbtxt").read_text(), ModelConfig())


def declared(tensor: model_config_pb2.ModelInput) -> TensorSpec:
    return TensorSpec(
        name=tensor.name,
        data_type=TYPE_NAMES(tensor.data_type),
        dims=tuple(tensor.dims),
        optional=tensor.optional,
        scalar=tensor.HasField("reshape") and not tensor.reshape.shape,
        ragged=tensor.allow_ragged_batch,
    )


def parameters(config: ModelConfig) -> dict[str, str]:
    return {key: value.string_value for key, value in config.parameters.items()}


@pytest.mark.parametrize("precision", PRECISIONS)
def test_every_declared_input_is_one_the_backend_reads_with_its_type_and_shape(
    repository: Path, precision: str
) -> None:
    inputs = [declared(tensor) for tensor in generation_config(repository, precision).input]
    assert {spec.name for spec in inputs} <= trtllm_backend.UPSTREAM_INPUT_NAMES
    assert inputs == list(trtllm_backend.INPUTS)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_both_required_outputs_are_declared(repository: Path, precision: str) -> None:
    outputs = generation_config(repository, precision).output
    assert [(t.name, TYPE_NAMES(t.data_type), tuple(t.dims)) for t in outputs] == [
        (spec.name, spec.data_type, spec.dims) for spec in trtllm_backend.OUTPUTS
    ]
    assert {t.name for t in outputs} >= set(trtllm_backend.REQUIRED_OUTPUTS)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_the_parameters_the_backend_cannot_load_without_are_there(
    repository: Path, precision: str
) -> None:
    values = parameters(generation_config(repository, precision))
    assert set(trtllm_backend.REQUIRED_PARAMETERS) <= values.keys()
    assert values["guided_decoding_backend"] == ""
    assert values["xgrammar_tokenizer_info_path"] == ""
    assert values["tokenizer_dir"].endswith("_tensorrt_llm/tokenizer")


@pytest.mark.parametrize("precision", PRECISIONS)
def test_the_engine_is_placed_by_the_backend_one_instance_per_gpu(
    trtllm_repository: Path, precision: str
) -> None:
    config = generation_config(trtllm_repository, precision)
    assert config.backend == "tensorrtllm"
    ((group,),) = [config.instance_group]
    assert group.kind == model_config_pb2.ModelInstanceGroup.KIND_CPU
    assert group.count == GPUS
    assert parameters(config)["gpu_device_ids"].split(";") == [str(i) for i in range(GPUS)]
    engine = trtllm_repository / Path(parameters(config)["gpt_model_path"]).relative_to(
        trtllm_repository.resolve()
    )
    assert (engine / "rank0.engine").is_file()


@pytest.mark.parametrize("precision", PRECISIONS)
def test_the_ensemble_feeds_the_generation_model_contract_inputs_and_takes_both_outputs(
    repository: Path, precision: str
) -> None:
    spec = ENGINE_SPECS[precision]  # type: ignore[index]
    ensemble = text_format.Parse(
        (repository / spec.triton_model("ensemble") / "config.pbtxt").read_text(), ModelConfig()
    )
    (step,) = [
        s for s in ensemble.ensemble_scheduling.step
        if s.model_name == spec.generation_model
    ]  # fmt: skip
    assert set(step.input_map) <= trtllm_backend.INPUT_NAMES
    assert {"seed", "min_tokens"} <= set(step.input_map)
    assert set(step.output_map) >= set(trtllm_backend.REQUIRED_OUTPUTS)


def test_the_gateway_asks_for_both_outputs() -> None:
    assert set(GENERATION_OUTPUTS) >= set(trtllm_backend.REQUIRED_OUTPUTS)


def test_the_gateway_sends_only_inputs_the_backend_reads() -> None:
    params = SamplingParams(
        max_tokens=8, temperature=0.5, top_p=0.9, top_k=4, seed=7,
        repetition_penalty=1.1, frequency_penalty=0.1, presence_penalty=0.1,
    )  # fmt: skip
    sent = build_inputs([1, 2, 3], params, end_id=2, stop_ids=[5])
    names = {tensor.name() for tensor in sent}
    assert names <= trtllm_backend.INPUT_NAMES
    assert "seed" in names
    declared_types = {spec.name: spec.data_type for spec in trtllm_backend.INPUTS}
    for tensor in sent:
        assert f"TYPE_{tensor.datatype()}" == declared_types[tensor.name()], tensor.name()
