"""The catalog of engines this project builds: one entry per precision of Llama-2-7b-chat.

Limits are the product's contract (input context / output sequence tokens per request); the
engine build, the Triton config, the CPU twin and the gateway all size themselves from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from llm_contract.model_repository import GENERATION_COMPONENT

Precision = Literal["int8", "fp16"]
PRECISIONS: tuple[Precision, ...] = ("int8", "fp16")


@dataclass(frozen=True)
class ModelLimits:
    max_input_len: int
    max_output_len: int

    @property
    def max_seq_len(self) -> int:
        """TensorRT-LLM's `max_seq_len` counts prompt and generated tokens together."""
        return self.max_input_len + self.max_output_len


@dataclass(frozen=True)
class EngineSpec:
    precision: Precision
    limits: ModelLimits
    hf_name: str
    description: str

    @property
    def name_prefix(self) -> str:
        """Prefix of every Triton model of this engine, so both precisions share one repository."""
        return f"llama2_7b_chat_{self.precision}_"

    def triton_model(self, component: str) -> str:
        return f"{self.name_prefix}{component}"

    @property
    def generation_model(self) -> str:
        """The Triton model that generates tokens: the engine, or its CPU twin."""
        return self.triton_model(GENERATION_COMPONENT)


ENGINE_SPECS: dict[Precision, EngineSpec] = {
    "int8": EngineSpec(
        precision="int8",
        limits=ModelLimits(max_input_len=2048, max_output_len=1800),
        hf_name="meta-llama/Llama-2-7b-chat-hf",
        description="Llama-2-7b-chat, weight-only int8 quantization",
    ),
    "fp16": EngineSpec(
        precision="fp16",
        limits=ModelLimits(max_input_len=3072, max_output_len=2500),
        hf_name="meta-llama/Llama-2-7b-chat-hf",
        description="Llama-2-7b-chat, full fp16 precision",
    ),
}
