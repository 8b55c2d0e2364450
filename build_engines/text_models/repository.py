"""Template values for the text-path models' `config.pbtxt` (build time only).

Called by `build_engines.repository`; never imported inside Triton, which is why this one
module of the package may reach the builder's own modules.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from llm_contract.engines import EngineSpec

from ..render import parameters_block

PREPROCESSING_INSTANCES = 2
POSTPROCESSING_INSTANCES = 4
"""Python-backend instances: postprocessing runs once per streamed token of every stream."""

CANCELLATION_CHECK_PERIOD_MS = 100
"""How often the BLS model asks whether its client cancelled (TensorRT-LLM's default)."""

ValueBuilder = Callable[[EngineSpec, int, Path], dict[str, object]]


def text_model_config(
    component: str,
    *,
    spec: EngineSpec,
    model_name: str,
    max_batch_size: int,
    tokenizer_dir: Path,
) -> dict[str, object]:
    """Values for `templates/<component>.pbtxt`; `tokenizer_dir` is relative to the model."""
    builders: dict[str, ValueBuilder] = {
        "preprocessing": _preprocessing,
        "postprocessing": _postprocessing,
        "ensemble": _ensemble,
        "bls": _bls,
    }
    if component not in builders:
        raise ValueError(f"no text-path model {component!r}; expected one of {sorted(builders)}")
    values = builders[component](spec, max_batch_size, tokenizer_dir)
    return {"model_name": model_name, "max_batch_size": max_batch_size, **values}


def _preprocessing(spec: EngineSpec, max_batch_size: int, tokenizer_dir: Path) -> dict[str, object]:
    parameters = {
        "tokenizer_dir": tokenizer_dir,
        "add_special_tokens": True,
        "max_input_len": spec.limits.max_input_len,
        "max_output_len": spec.limits.max_output_len,
    }
    return {"instance_count": PREPROCESSING_INSTANCES, "parameters": parameters_block(parameters)}


def _postprocessing(
    spec: EngineSpec, max_batch_size: int, tokenizer_dir: Path
) -> dict[str, object]:
    parameters = {"tokenizer_dir": tokenizer_dir, "skip_special_tokens": True}
    return {"instance_count": POSTPROCESSING_INSTANCES, "parameters": parameters_block(parameters)}


def _ensemble(spec: EngineSpec, max_batch_size: int, tokenizer_dir: Path) -> dict[str, object]:
    return {
        "preprocessing_model": spec.triton_model("preprocessing"),
        "generation_model": spec.generation_model,
        "postprocessing_model": spec.triton_model("postprocessing"),
    }


def _bls(spec: EngineSpec, max_batch_size: int, tokenizer_dir: Path) -> dict[str, object]:
    parameters = {
        "tokenizer_dir": tokenizer_dir,
        "generation_model": spec.generation_model,
        "add_special_tokens": True,
        "skip_special_tokens": True,
        "max_input_len": spec.limits.max_input_len,
        "max_output_len": spec.limits.max_output_len,
        "max_concurrent_streams": max_batch_size,
        "cancellation_check_period_ms": CANCELLATION_CHECK_PERIOD_MS,
    }
    return {"parameters": parameters_block(parameters)}
