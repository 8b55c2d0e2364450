"""The text-path configs: values fill the templates, Triton's ModelConfig parses them, and the
ensemble is wired to real tensor names of matching types."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from build_engines.render import render_template, tensors_block
from build_engines.text_models.repository import text_model_config
from llm_contract import trtllm_backend
from llm_contract.engines import ENGINE_SPECS

SPEC = ENGINE_SPECS["int8"]
TOKENIZER_DIR = Path("..") / SPEC.generation_model / "tokenizer"
TEXT_COMPONENTS = ("preprocessing", "postprocessing", "ensemble", "bls")


def config(component: str, max_batch_size: int = 64) -> Any:
    if component == "tensorrt_llm":
        values: dict[str, object] = {
            "backend": "python",
            "inputs": tensors_block(trtllm_backend.INPUTS),
            "outputs": tensors_block(trtllm_backend.OUTPUTS),
            "instance_count": 1,
            "parameters": "",
        }
    else:
        values = text_model_config(
            component,
            spec=SPEC,
            model_name=SPEC.triton_model(component),
            max_batch_size=max_batch_size,
            tokenizer_dir=TOKENIZER_DIR,
        )
    values = {
        "model_name": SPEC.triton_model(component),
        "max_batch_size": max_batch_size,
        **values,
    }
    parsed = model_config_pb2.ModelConfig()
    text_format.Parse(render_template(component, values), parsed)
    return parsed


def parameters(parsed: Any) -> dict[str, str]:
    return {key: value.string_value for key, value in parsed.parameters.items()}


def tensors(parsed: Any, kind: str) -> dict[str, tuple[int, list[int], bool]]:
    return {
        t.name: (t.data_type, list(t.dims), getattr(t, "optional", False))
        for t in getattr(parsed, kind)
    }


@pytest.mark.parametrize("component", TEXT_COMPONENTS)
def test_config_renders_and_parses_as_a_model_config_named_for_the_engine(component: str) -> None:
    parsed = config(component, max_batch_size=32)
    assert parsed.name == SPEC.triton_model(component)
    assert parsed.max_batch_size == 32


def test_unknown_component_is_refused() -> None:
    with pytest.raises(ValueError, match="no text-path model"):
        text_model_config(
            "tokenizer", spec=SPEC, model_name="x", max_batch_size=1, tokenizer_dir=TOKENIZER_DIR
        )


@pytest.mark.parametrize("component", ["preprocessing", "postprocessing", "bls"])
def test_python_models_read_the_tokenizer_relative_to_their_folder(component: str) -> None:
    parsed = config(component)
    assert parsed.backend == "python"
    assert parameters(parsed)["tokenizer_dir"] == str(TOKENIZER_DIR)


def test_bls_is_decoupled_and_calls_the_engines_generation_model() -> None:
    parsed = config("bls")
    assert parsed.model_transaction_policy.decoupled
    assert parameters(parsed)["generation_model"] == SPEC.generation_model


@pytest.mark.parametrize("component", ["preprocessing", "bls"])
def test_limits_come_from_the_engine_spec(component: str) -> None:
    values = parameters(config(component))
    assert values["max_input_len"] == str(SPEC.limits.max_input_len)
    assert values["max_output_len"] == str(SPEC.limits.max_output_len)


def test_ensemble_and_bls_take_the_same_inputs_and_give_the_same_output() -> None:
    ensemble, bls = config("ensemble"), config("bls")
    assert tensors(ensemble, "input") == tensors(bls, "input")
    assert tensors(ensemble, "output") == tensors(bls, "output")


def test_only_text_input_and_max_tokens_are_required() -> None:
    required = [
        name
        for name, (_, _, optional) in tensors(config("ensemble"), "input").items()
        if not optional
    ]
    assert required == ["text_input", "max_tokens"]


def test_ensemble_steps_name_the_engines_models_in_order() -> None:
    steps = config("ensemble").ensemble_scheduling.step
    assert [step.model_name for step in steps] == [
        SPEC.triton_model(component)
        for component in ("preprocessing", "tensorrt_llm", "postprocessing")
    ]


def test_every_ensemble_step_maps_existing_tensors_of_matching_types() -> None:
    ensemble = config("ensemble")
    available = {t.name: t.data_type for t in ensemble.input}
    for step in ensemble.ensemble_scheduling.step:
        component = step.model_name.removeprefix(SPEC.name_prefix)
        model = config(component)
        inputs = {t.name: t.data_type for t in model.input}
        outputs = {t.name: t.data_type for t in model.output}
        for model_input, tensor in step.input_map.items():
            assert model_input in inputs, f"{component} has no input {model_input}"
            assert available.get(tensor) == inputs[model_input], (
                f"{tensor} -> {component}.{model_input}"
            )
        for model_output, tensor in step.output_map.items():
            assert model_output in outputs, f"{component} has no output {model_output}"
            available[tensor] = outputs[model_output]
    assert {t.name: t.data_type for t in ensemble.output}.items() <= available.items()


def test_every_ensemble_input_reaches_a_step() -> None:
    ensemble = config("ensemble")
    mapped = {
        tensor for step in ensemble.ensemble_scheduling.step for tensor in step.input_map.values()
    }
    assert {t.name for t in ensemble.input} <= mapped


def test_optional_ensemble_inputs_feed_only_optional_model_inputs() -> None:
    """Triton leaves an unsent optional ensemble input out of the step's request, so the
    step's own input must be optional too."""
    ensemble = config("ensemble")
    optional = {
        name for name, (_, _, is_optional) in tensors(ensemble, "input").items() if is_optional
    }
    for step in ensemble.ensemble_scheduling.step:
        model_inputs = tensors(config(step.model_name.removeprefix(SPEC.name_prefix)), "input")
        for model_input, tensor in step.input_map.items():
            if tensor in optional:
                assert model_inputs[model_input][2], f"{step.model_name}.{model_input} is required"
