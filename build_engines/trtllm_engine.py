"""Compile Llama-2-7b-chat into a TensorRT-LLM engine with TensorRT-LLM's Python API.

Targets TensorRT-LLM 1.2.1 (the release in Triton's `26.04-trtllm-python-py3` image), whose
TensorRT-engine workflow (`LLaMAForCausalLM.from_hugging_face` → `tensorrt_llm.build` →
`engine.save`) is what the `tensorrtllm` Triton backend loads. The plan is plain data so it
can be printed and tested on a machine without a GPU; only `build_engine` needs one.
"""

from __future__ import annotations

import importlib.util
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from llm_contract.engines import EngineSpec

TENSORRT_LLM_VERSION = "1.2.1"
TRITON_TRTLLM_IMAGE = "nvcr.io/nvidia/tritonserver:26.04-trtllm-python-py3"
TOKENIZER_FILE_NAMES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "generation_config.json",
    "chat_template.jinja",
    "tokenizer.model",
    "special_tokens_map.json",
)


class EngineBuildUnavailable(RuntimeError):
    """This machine cannot compile engines (no GPU or no `tensorrt_llm`)."""


@dataclass(frozen=True)
class EngineBuildPlan:
    spec: EngineSpec
    checkpoint: Path
    checkpoint_dir: Path
    engine_dir: Path
    max_batch_size: int = 64
    max_num_tokens: int = 8192
    tokens_per_block: int = 64

    @property
    def weight_only_int8(self) -> bool:
        return self.spec.precision == "int8"

    def build_config(self) -> dict[str, object]:
        """`tensorrt_llm.BuildConfig` fields, sized from the model's limits."""
        limits = self.spec.limits
        return {
            "max_input_len": limits.max_input_len,
            "max_seq_len": limits.max_seq_len,
            "max_batch_size": self.max_batch_size,
            "max_beam_width": 1,
            "max_num_tokens": max(self.max_num_tokens, limits.max_input_len),
            "kv_cache_type": "PAGED",
        }

    def plugin_config(self) -> dict[str, object]:
        return {
            "gemm_plugin": "auto",
            "gpt_attention_plugin": "auto",
            "context_fmha": True,
            "use_paged_context_fmha": True,
            "remove_input_padding": True,
            "tokens_per_block": self.tokens_per_block,
        }

    def convert_command(self) -> list[str]:
        """The documented `convert_checkpoint.py` equivalent of the conversion step."""
        command = [
            "python3", "examples/models/core/llama/convert_checkpoint.py",
            "--model_dir", str(self.checkpoint),
            "--output_dir", str(self.checkpoint_dir),
            "--dtype", "float16",
        ]  # fmt: skip
        if self.weight_only_int8:
            command += ["--use_weight_only", "--weight_only_precision", "int8"]
        return command

    def build_command(self) -> list[str]:
        """The `trtllm-build` equivalent of the build step."""
        config = self.build_config()
        plugins = self.plugin_config()
        return [
            "trtllm-build",
            "--checkpoint_dir", str(self.checkpoint_dir),
            "--output_dir", str(self.engine_dir),
            "--max_batch_size", str(config["max_batch_size"]),
            "--max_input_len", str(config["max_input_len"]),
            "--max_seq_len", str(config["max_seq_len"]),
            "--max_num_tokens", str(config["max_num_tokens"]),
            "--max_beam_width", "1",
            "--kv_cache_type", "paged",
            "--tokens_per_block", str(plugins["tokens_per_block"]),
            "--gemm_plugin", "auto",
            "--gpt_attention_plugin", "auto",
            "--context_fmha", "enable",
            "--use_paged_context_fmha", "enable",
            "--remove_input_padding", "enable",
        ]  # fmt: skip

    def describe(self) -> str:
        quantization = "QuantAlgo.W8A16" if self.weight_only_int8 else "None"
        lines = [
            f"Engine plan: Llama-2-7b-chat {self.spec.precision} "
            f"(TensorRT-LLM {TENSORRT_LLM_VERSION}, Triton image {TRITON_TRTLLM_IMAGE})",
            f"  limits: input {self.spec.limits.max_input_len} tokens, "
            f"output {self.spec.limits.max_output_len} tokens, "
            f"max_seq_len {self.spec.limits.max_seq_len}",
            "  1. convert the Hugging Face checkpoint:",
            f"     LLaMAForCausalLM.from_hugging_face({str(self.checkpoint)!r}, dtype='float16', "
            f"quant_config=QuantConfig(quant_algo={quantization}))",
            f"       .save_checkpoint({str(self.checkpoint_dir)!r})",
            f"     equivalent: {shlex.join(self.convert_command())}",
            "  2. build the engine:",
            f"     tensorrt_llm.build(model, BuildConfig({_kwargs(self.build_config())}, "
            f"plugin_config=PluginConfig({_kwargs(self.plugin_config())})))",
            f"       .save({str(self.engine_dir)!r})",
            f"     equivalent: {shlex.join(self.build_command())}",
        ]
        return "\n".join(lines)


def _kwargs(values: dict[str, object]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in values.items())


WEIGHT_ONLY_INT8_REFUSED_SM = range(100, 120)
"""Blackwell data-centre GPUs (B200, GB200: SM 100; B300: SM 103): TensorRT-LLM's
`builder.build()` raises "INT8/INT4 quantization is not supported on SM>=100." there.
SM 120 and later (RTX 50, RTX PRO Blackwell) are not refused."""


def check_build_environment(precisions: Sequence[str] = ()) -> None:
    """Stop early, with the reason, where an engine cannot be compiled: no TensorRT-LLM, no
    GPU, or a precision the GPU's architecture refuses (checked before any conversion)."""
    if importlib.util.find_spec("tensorrt_llm") is None:
        raise EngineBuildUnavailable(
            "tensorrt_llm is not installed: engines are compiled inside "
            f"{TRITON_TRTLLM_IMAGE} (or with `pip install tensorrt-llm=={TENSORRT_LLM_VERSION}` "
            "on a CUDA host). Use --dry-run to print the plan, or --target cpu for the CPU twin."
        )
    if shutil.which("nvidia-smi") is None or not gpu_visible():
        raise EngineBuildUnavailable(
            "no NVIDIA GPU is visible (nvidia-smi lists none): TensorRT-LLM engines are built "
            "on the GPU model they will run on. Use --dry-run to print the plan."
        )
    if "int8" in precisions:
        sm = gpu_sm_version()
        if sm in WEIGHT_ONLY_INT8_REFUSED_SM:
            raise EngineBuildUnavailable(
                f"weight-only int8 does not build on this GPU (compute capability {sm // 10}."
                f"{sm % 10}, Blackwell B200/GB200/B300): TensorRT-LLM {TENSORRT_LLM_VERSION} "
                "refuses INT8/INT4 quantization on SM 100-119. Build --precision fp16 here, "
                "or build int8 on an Ampere, Ada, Hopper or RTX Blackwell (SM 120) GPU."
            )


def gpu_sm_version() -> int:
    """The first GPU's compute capability as TensorRT-LLM's `get_sm_version()` gives it
    (major * 10 + minor), from `nvidia-smi`, so it is known before `tensorrt_llm` loads."""
    query = subprocess.run(
        ["nvidia-smi", "--query-gpu=compute_cap", "--format=csv,noheader"],
        capture_output=True,
        text=True,
        check=False,
    )
    first = query.stdout.strip().splitlines()[0] if query.stdout.strip() else ""
    major, _, minor = first.strip().partition(".")
    if query.returncode != 0 or not (major.isdigit() and minor.isdigit()):
        raise EngineBuildUnavailable(
            f"nvidia-smi did not report the GPU's compute capability: {query.stdout.strip()!r} "
            f"{query.stderr.strip()!r}"
        )
    return int(major) * 10 + int(minor)


def gpu_visible() -> bool:
    listing = subprocess.run(
        ["nvidia-smi", "--list-gpus"], capture_output=True, text=True, check=False
    )
    return listing.returncode == 0 and "GPU" in listing.stdout


def build_engine(plan: EngineBuildPlan) -> Path:
    """Convert the checkpoint and compile the engine; returns the engine folder. Needs a GPU
    and `tensorrt_llm` (tests run it against a stand-in of the modules it uses)."""
    import tensorrt_llm  # type: ignore[import-not-found]
    from tensorrt_llm.models import LLaMAForCausalLM  # type: ignore[import-not-found]
    from tensorrt_llm.models.modeling_utils import QuantConfig  # type: ignore[import-not-found]
    from tensorrt_llm.plugin import PluginConfig  # type: ignore[import-not-found]
    from tensorrt_llm.quantization import QuantAlgo  # type: ignore[import-not-found]

    quant_config = QuantConfig(quant_algo=QuantAlgo.W8A16 if plan.weight_only_int8 else None)
    model = LLaMAForCausalLM.from_hugging_face(
        str(plan.checkpoint), dtype="float16", quant_config=quant_config
    )
    # save_checkpoint writes into the folder without creating it (convert_checkpoint.py
    # creates it first); the chart's work dir starts empty.
    plan.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    model.save_checkpoint(str(plan.checkpoint_dir), save_config=True)

    plugin_config = PluginConfig()
    for key, value in plan.plugin_config().items():
        setattr(plugin_config, key, value)
    build_kwargs = {**plan.build_config(), "kv_cache_type": _paged_kv_cache()}
    engine = tensorrt_llm.build(
        model, tensorrt_llm.BuildConfig(**build_kwargs, plugin_config=plugin_config)
    )
    engine.save(str(plan.engine_dir))
    return plan.engine_dir


def _paged_kv_cache() -> object:
    """`KVCacheType.PAGED` as `BuildConfig` takes it: the Python enum of 1.2 (llmapi), else
    the C++ binding of older releases. Never the string: an old `BuildConfig` compares it
    with the enum and silently builds without a paged KV cache."""
    try:
        from tensorrt_llm.llmapi.kv_cache_type import KVCacheType  # type: ignore[import-not-found]
    except ImportError:
        from tensorrt_llm.bindings import KVCacheType  # type: ignore[import-not-found]
    return KVCacheType.PAGED


def checkpoint_tokenizer_files(
    checkpoint: Path, names: Sequence[str] = TOKENIZER_FILE_NAMES
) -> tuple[Path, ...]:
    files = tuple(checkpoint / name for name in names if (checkpoint / name).exists())
    if not any(path.name == "tokenizer.json" for path in files):
        raise FileNotFoundError(
            f"{checkpoint} has no tokenizer.json: the gateway and the text path need the "
            "Hugging Face fast tokenizer file of the checkpoint"
        )
    return files
