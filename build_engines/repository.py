"""Write a Triton model repository for one engine: the generation model and its text path.

Every model comes from a template in `templates/` and, for Python-backend models, a package
of this project copied into the model's version folder with the contract package
(`llm_contract`) beside it, so a generated repository is self-contained: it needs the Python
packages of the environment, never this checkout.

Layout (prefix `llama2_7b_chat_int8_` shown as `P_`; names: `llm_contract.model_repository`):

    P_tensorrt_llm/config.pbtxt        generation model (TensorRT-LLM engine or CPU twin)
    P_tensorrt_llm/1/                  engine files, or the twin's code and weights.npz
    P_tensorrt_llm/twin.json           (CPU twin) the model it runs, for the catalog
    P_tensorrt_llm/tokenizer/          tokenizer.json the gateway and the text path use
    P_preprocessing/ P_postprocessing/ upstream-style text -> ids and ids -> text
    P_ensemble/                        preprocessing -> tensorrt_llm -> postprocessing
    P_bls/                             text in, text out, detokenized incrementally
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import llm_contract
from build_engines.render import parameters_block, render_template, tensors_block
from llm_contract import trtllm_backend
from llm_contract.engines import EngineSpec
from llm_contract.model_repository import (
    GENERATION_COMPONENT,
    TEXT_PATH_COMPONENTS,
    TOKENIZER_FOLDER,
    TWIN_DESCRIPTION_FILE,
    TwinDescription,
)

if TYPE_CHECKING:
    from build_engines.twin_models import TwinModel

Target = Literal["cpu", "trtllm"]
PACKAGE_ROOT = Path(__file__).parent
CONTRACT_PACKAGE = Path(llm_contract.__file__).parent

MODEL_ENTRY_POINT = '''"""Triton's entry point: the `{package}` package beside it is the model.

The Python backend's stub runs an isolated interpreter that ignores PYTHONPATH, so the
environment's site-packages that the launcher passes in PYTHONPATH are put first here,
before the model imports numpy or tokenizers.
"""

import os
import sys

for _entry in reversed(os.environ.get("PYTHONPATH", "").split(os.pathsep)):
    if _entry and os.path.isdir(_entry) and _entry not in sys.path:
        sys.path.insert(0, _entry)

from {package}.{module} import TritonPythonModel  # noqa: E402

__all__ = ["TritonPythonModel"]
'''


@dataclass(frozen=True)
class RepositoryPlan:
    target: Target
    spec: EngineSpec
    output: Path
    tokenizer_files: tuple[Path, ...]
    max_batch_size: int = 256
    engine_files: Path | None = None
    serve_root: Path | None = None
    decode_tokens_per_second: float = 0.0
    twin: TwinModel | None = None
    """What the CPU twin runs (target cpu)."""
    gpus: int = 1
    """GPUs Triton sees (target trtllm): one engine instance on each, as the engine is built
    for one GPU (tensor parallelism 1)."""

    def model_dir(self, component: str) -> Path:
        return self.output / self.spec.triton_model(component)

    def served_path(self, path: Path) -> Path:
        """Where Triton sees `path` when the repository is mounted elsewhere (a volume)."""
        if self.serve_root is None:
            return path.resolve()
        return self.serve_root / path.relative_to(self.output)


def write_repository(plan: RepositoryPlan) -> list[Path]:
    """Write (or overwrite) every model of this engine and return their folders."""
    written = [_write_generation_model(plan)]
    for component in TEXT_PATH_COMPONENTS:
        written.append(_write_text_path_model(plan, component))
    return written


def _write_generation_model(plan: RepositoryPlan) -> Path:
    model_dir = _fresh_model_dir(plan, GENERATION_COMPONENT)
    tokenizer_dir = model_dir / TOKENIZER_FOLDER
    tokenizer_dir.mkdir()
    for tokenizer_file in plan.tokenizer_files:
        shutil.copy2(tokenizer_file, tokenizer_dir / tokenizer_file.name)
    version_dir = model_dir / "1"
    if plan.target == "cpu":
        backend, instances = "python", 1
        parameters = _write_twin(plan, model_dir)
    else:
        backend, instances = "tensorrtllm", plan.gpus
        parameters = _engine_parameters(plan, version_dir)
        if plan.engine_files is None:
            version_dir.mkdir()
        else:
            shutil.copytree(plan.engine_files, version_dir)
    parameters |= _contract_parameters(plan, tokenizer_dir)
    config = render_template(
        GENERATION_COMPONENT,
        {
            "model_name": model_dir.name,
            "backend": backend,
            "max_batch_size": plan.max_batch_size,
            "inputs": tensors_block(trtllm_backend.INPUTS),
            "outputs": tensors_block(trtllm_backend.OUTPUTS),
            "instance_count": instances,
            "parameters": parameters_block(parameters),
        },
    )
    (model_dir / "config.pbtxt").write_text(config)
    return model_dir


def _write_twin(plan: RepositoryPlan, model_dir: Path) -> dict[str, object]:
    """The twin's code, its weights in the engine's precision, the catalog's description
    of it (`twin.json`); returns its config parameters."""
    from build_engines.cpu_twin.weights import WEIGHTS_FILE, save_weights

    twin = plan.twin
    if twin is None:
        raise ValueError("a CPU repository needs the model its twins run")
    version_dir = model_dir / "1"
    copy_python_package(version_dir, "cpu_twin", "triton_model")
    save_weights(version_dir / WEIGHTS_FILE, twin.weights, plan.spec.precision)
    description = dataclasses.asdict(TwinDescription(model=twin.name, title=twin.title))
    (model_dir / TWIN_DESCRIPTION_FILE).write_text(json.dumps(description, indent=2) + "\n")
    network = twin.shape
    return {
        "max_input_len": plan.spec.limits.max_input_len,
        "max_output_len": plan.spec.limits.max_output_len,
        "max_inflight_requests": plan.max_batch_size,
        "decode_tokens_per_second": plan.decode_tokens_per_second,
        "cancellation_check_period_ms": 100,
        "exclude_input_in_output": True,
        "weight_precision": plan.spec.precision,
        "weights_file": WEIGHTS_FILE,
        "vocab_size": network.vocab_size,
        "hidden_size": network.hidden_size,
        "num_hidden_layers": network.num_hidden_layers,
        "num_attention_heads": network.num_attention_heads,
        "num_key_value_heads": network.num_key_value_heads,
        "intermediate_size": network.intermediate_size,
        "rope_theta": network.rope_theta,
        "rms_norm_eps": network.rms_norm_eps,
    }


def _contract_parameters(plan: RepositoryPlan, tokenizer_dir: Path) -> dict[str, object]:
    """The parameters the backend cannot load without: guided decoding off (no xgrammar
    tokenizer info), `tokenizer_dir` naming the tokenizer beside the model."""
    values: dict[str, object] = dict.fromkeys(trtllm_backend.REQUIRED_PARAMETERS, "")
    return values | {"tokenizer_dir": plan.served_path(tokenizer_dir)}


def _engine_parameters(plan: RepositoryPlan, engine_dir: Path) -> dict[str, object]:
    """The tensorrtllm backend's parameters for in-flight batching over a paged KV cache,
    instance i on GPU i."""
    return {
        "gpu_device_ids": ";".join(str(gpu) for gpu in range(plan.gpus)),
        "gpt_model_type": "inflight_fused_batching",
        "gpt_model_path": plan.served_path(engine_dir),
        "max_beam_width": 1,
        "batch_scheduler_policy": "max_utilization",
        "kv_cache_free_gpu_mem_fraction": 0.9,
        "enable_kv_cache_reuse": False,
        "enable_chunked_context": True,
        "exclude_input_in_output": True,
        "cancellation_check_period_ms": 100,
        "stats_check_period_ms": 100,
        "max_attention_window_size": plan.spec.limits.max_seq_len,
    }


def _write_text_path_model(plan: RepositoryPlan, component: str) -> Path:
    from build_engines.text_models.repository import text_model_config

    model_dir = _fresh_model_dir(plan, component)
    values = text_model_config(
        component,
        spec=plan.spec,
        model_name=model_dir.name,
        max_batch_size=plan.max_batch_size,
        tokenizer_dir=Path("..") / plan.spec.generation_model / TOKENIZER_FOLDER,
    )
    (model_dir / "config.pbtxt").write_text(render_template(component, values))
    if component != "ensemble":
        copy_python_package(model_dir / "1", "text_models", component)
    else:
        (model_dir / "1").mkdir()
    return model_dir


def _fresh_model_dir(plan: RepositoryPlan, component: str) -> Path:
    model_dir = plan.model_dir(component)
    if model_dir.exists():
        shutil.rmtree(model_dir)
    model_dir.mkdir(parents=True)
    return model_dir


def copy_python_package(version_dir: Path, package: str, module: str) -> None:
    """Copy a package of this project, and the contract package it imports, next to a
    one-line `model.py` that Triton loads."""
    for source in (PACKAGE_ROOT / package, CONTRACT_PACKAGE):
        shutil.copytree(
            source,
            version_dir / source.name,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "py.typed"),
        )
    (version_dir / "model.py").write_text(MODEL_ENTRY_POINT.format(package=package, module=module))
