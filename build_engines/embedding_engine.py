"""Build bge-small-en-v1.5 for Triton's `tensorrt` backend: an ONNX export of the encoder
with both poolings inside the graph, compiled to a TensorRT plan.

The export runs torch and transformers, the compile TensorRT: all three are in the engine
build Job's image (the Triton TensorRT-LLM image), never in the gateway. The plan is plain
data so it prints and tests without a GPU; `export_onnx` runs on any CPU with torch (checked
once against the model's own library, docs/engines.md), `compile_plan` needs the GPU the
plan will run on.
"""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from build_engines.trtllm_engine import EngineBuildUnavailable, gpu_visible
from llm_contract.embeddings import (
    ATTENTION_MASK,
    CLS_EMBEDDING,
    INPUT_IDS,
    MEAN_EMBEDDING,
    EmbeddingSpec,
)

ONNX_OPSET = 17
"""The first opset with LayerNormalization, which TensorRT fuses."""
EMBEDDING_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
)


@dataclass(frozen=True)
class EmbeddingBuildPlan:
    spec: EmbeddingSpec
    checkpoint: Path
    """The Hugging Face folder of BAAI/bge-small-en-v1.5 (config, weights, tokenizer)."""
    work_dir: Path
    precision: str = "fp16"

    @property
    def onnx_path(self) -> Path:
        return self.work_dir / "bge-small-en-v1.5.onnx"

    @property
    def plan_path(self) -> Path:
        return self.work_dir / "model.plan"

    def shapes(self) -> dict[str, tuple[int, int]]:
        """The optimization profile: (batch, length) at its minimum, typical and maximum."""
        spec = self.spec
        return {
            "min": (1, 1),
            "opt": (spec.max_batch_size, 128),
            "max": (spec.max_batch_size, spec.max_input_tokens),
        }

    def trtexec_command(self) -> list[str]:
        """The `trtexec` equivalent of the compile step."""
        shapes = {
            name: ",".join(f"{tensor}:{b}x{n}" for tensor in (INPUT_IDS, ATTENTION_MASK))
            for name, (b, n) in self.shapes().items()
        }
        command = [
            "trtexec",
            f"--onnx={self.onnx_path}",
            f"--saveEngine={self.plan_path}",
            f"--minShapes={shapes['min']}",
            f"--optShapes={shapes['opt']}",
            f"--maxShapes={shapes['max']}",
        ]
        return [*command, "--fp16"] if self.precision == "fp16" else command

    def describe(self) -> str:
        return "\n".join(
            [
                f"Embedding plan: {self.spec.hf_name} ({self.precision}, {self.spec.dimensions} "
                f"dimensions, up to {self.spec.max_input_tokens} tokens, batches of "
                f"{self.spec.max_batch_size})",
                f"  1. export to ONNX (opset {ONNX_OPSET}) with mean and [CLS] pooling, "
                f"L2-normalized: {self.onnx_path}",
                f"  2. compile the TensorRT plan: {' '.join(self.trtexec_command())}",
            ]
        )


def check_embedding_build_environment() -> None:
    """Stop early, with the reason, where the plan cannot be built."""
    missing = [name for name in ("torch", "transformers", "tensorrt")
               if importlib.util.find_spec(name) is None]  # fmt: skip
    if missing:
        raise EngineBuildUnavailable(
            f"{', '.join(missing)} not installed: the embedding plan is built inside the "
            "Triton TensorRT-LLM image (the chart's engine build Job). Use --dry-run to print "
            "the plan."
        )
    if shutil.which("nvidia-smi") is None or not gpu_visible():
        raise EngineBuildUnavailable(
            "no NVIDIA GPU is visible (nvidia-smi lists none): a TensorRT plan is compiled on "
            "the GPU model it will run on. Use --dry-run to print the plan."
        )


def export_onnx(plan: EmbeddingBuildPlan) -> Path:
    """The encoder and both poolings as one ONNX graph with the contract's tensor names,
    batch and length dynamic."""
    import torch  # type: ignore[import-not-found]
    from transformers import AutoModel  # type: ignore[import-not-found]

    class PooledEncoder(torch.nn.Module):  # type: ignore[misc]
        def __init__(self, encoder: Any) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: Any, attention_mask: Any) -> tuple[Any, Any]:
            states = self.encoder(
                input_ids=input_ids.long(), attention_mask=attention_mask.long()
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(states.dtype)
            mean = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            normalize = torch.nn.functional.normalize
            return normalize(mean, dim=-1), normalize(states[:, 0], dim=-1)

    encoder = AutoModel.from_pretrained(str(plan.checkpoint), attn_implementation="eager")
    module = PooledEncoder(encoder).eval()
    plan.work_dir.mkdir(parents=True, exist_ok=True)
    example = torch.ones((2, 8), dtype=torch.int32)
    dynamic = {0: "batch", 1: "length"}
    with torch.no_grad():
        torch.onnx.export(
            module,
            (example, example),
            str(plan.onnx_path),
            input_names=[INPUT_IDS, ATTENTION_MASK],
            output_names=[MEAN_EMBEDDING, CLS_EMBEDDING],
            dynamic_axes={INPUT_IDS: dynamic, ATTENTION_MASK: dynamic,
                          MEAN_EMBEDDING: {0: "batch"}, CLS_EMBEDDING: {0: "batch"}},
            opset_version=ONNX_OPSET,
            dynamo=False,
        )  # fmt: skip
    return plan.onnx_path


def compile_plan(plan: EmbeddingBuildPlan) -> Path:
    """The ONNX graph compiled by TensorRT's builder with one optimization profile; needs
    the GPU (tests run it against a stand-in of the `tensorrt` module)."""
    import tensorrt as trt  # type: ignore[import-not-found]

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(plan.onnx_path.read_bytes()):
        errors = [str(parser.get_error(index)) for index in range(parser.num_errors)]
        raise RuntimeError(f"TensorRT cannot parse {plan.onnx_path}: {'; '.join(errors)}")
    config = builder.create_builder_config()
    if plan.precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    shapes = plan.shapes()
    for tensor in (INPUT_IDS, ATTENTION_MASK):
        profile.set_shape(tensor, shapes["min"], shapes["opt"], shapes["max"])
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError("TensorRT could not build the embedding plan (see its log above)")
    plan.plan_path.write_bytes(bytes(serialized))
    return plan.plan_path
