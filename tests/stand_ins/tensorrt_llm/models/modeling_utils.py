"""`QuantConfig` (a dataclass in 1.2.x) and `PretrainedModel.save_checkpoint`
(models/modeling_utils.py), which writes into `output_dir` without creating it."""

import json
import os
from dataclasses import asdict, dataclass
from typing import Any

from tensorrt_llm.quantization import WEIGHT_ONLY, QuantAlgo


class SafetensorError(Exception):
    """safetensors' error for a file it cannot write (not an OSError)."""


@dataclass
class QuantConfig:
    quant_algo: QuantAlgo | None = None
    kv_cache_quant_algo: QuantAlgo | None = None
    group_size: int = 128
    smoothquant_val: float = 0.5
    clamp_val: list[float] | None = None
    use_meta_recipe: bool = False
    has_zero_point: bool = False
    pre_quant_scale: bool = False
    exclude_modules: list[str] | None = None
    mamba_ssm_cache_dtype: str | None = None

    @property
    def is_weight_only(self) -> bool:
        return self.quant_algo in WEIGHT_ONLY


@dataclass
class PretrainedConfig:
    architecture: str
    dtype: str
    quantization: QuantConfig
    hf_config: dict[str, Any]
    rank: int = 0


class PretrainedModel:
    def __init__(self, config: PretrainedConfig) -> None:
        self.config = config

    def save_checkpoint(self, output_dir: str, save_config: bool = True) -> None:
        weights = os.path.join(output_dir, f"rank{self.config.rank}.safetensors")
        if not os.path.isdir(output_dir):
            raise SafetensorError(
                "Error while serializing: I/O error: No such file or directory (os error 2) "
                f'at path "{weights}"'
            )
        with open(weights, "wb") as stand_in_weights:
            stand_in_weights.write(b"stand-in checkpoint weights\n")
        if save_config:
            with open(os.path.join(output_dir, "config.json"), "w") as config:
                json.dump(self.to_dict(), config, indent=4, default=str)

    def to_dict(self) -> dict[str, Any]:
        return {
            "architecture": self.config.architecture,
            "dtype": self.config.dtype,
            "quantization": asdict(self.config.quantization),
        }
