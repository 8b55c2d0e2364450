"""`LLaMAForCausalLM.from_hugging_face` (models/llama/model.py): reads the Hugging Face
folder's config.json and needs its weight files."""

import json
import os
from pathlib import Path
from typing import Any

from tensorrt_llm.models.modeling_utils import PretrainedConfig, PretrainedModel, QuantConfig


class LLaMAForCausalLM(PretrainedModel):
    @classmethod
    def from_hugging_face(
        cls,
        hf_model_or_dir: str,
        dtype: str = "auto",
        mapping: object | None = None,
        quant_config: QuantConfig | None = None,
        **kwargs: Any,
    ) -> "LLaMAForCausalLM":
        folder = Path(hf_model_or_dir)
        config_file = folder / "config.json"
        if not config_file.is_file():
            raise OSError(f"{folder} does not appear to have a file named config.json.")
        hf_config = json.loads(config_file.read_text())
        if hf_config.get("model_type") != "llama":
            raise ValueError(f"not a Llama checkpoint: model_type {hf_config.get('model_type')!r}")
        if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
            raise FileNotFoundError(f"no *.safetensors or *.bin weights in {folder}")
        resolved = hf_config.get("torch_dtype", "float16") if dtype == "auto" else dtype
        return cls(
            PretrainedConfig(
                architecture="LlamaForCausalLM",
                dtype=resolved,
                quantization=quant_config or QuantConfig(),
                hf_config=hf_config,
                rank=int(os.environ.get("OMPI_COMM_WORLD_RANK", "0")),
            )
        )
