"""`BuildConfig`, `build` and `Engine` (builder.py). `build` refuses weight-only int8/int4 on
SM 100-119 as upstream does, before any TensorRT work; the saved engine is a marker file."""

import copy
import json
import os
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from tensorrt_llm._utils import get_sm_version
from tensorrt_llm.llmapi.kv_cache_type import KVCacheType
from tensorrt_llm.models.modeling_utils import PretrainedModel
from tensorrt_llm.plugin import PluginConfig


@dataclass(kw_only=True)
class BuildConfig:
    max_input_len: int = 1024
    max_seq_len: int | None = None
    opt_batch_size: int = 8
    max_batch_size: int = 2048
    max_beam_width: int = 1
    max_num_tokens: int = 8192
    opt_num_tokens: int | None = None
    kv_cache_type: Any = None
    gather_context_logits: bool = False
    gather_generation_logits: bool = False
    strongly_typed: bool = True
    plugin_config: PluginConfig = field(default_factory=PluginConfig)

    def __post_init__(self) -> None:
        for name in ("max_input_len", "max_batch_size", "max_beam_width", "max_num_tokens"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"BuildConfig.{name}: invalid value {value!r}")
        if self.kv_cache_type is not None:
            # 1.2's pydantic field: its Python enum, a string of it, or the C++ binding's.
            cpp_name = getattr(self.kv_cache_type, "name", None)
            value = cpp_name if isinstance(self.kv_cache_type, Enum) else self.kv_cache_type
            self.kv_cache_type = KVCacheType(value.lower() if isinstance(value, str) else value)


class Engine:
    def __init__(self, config: dict[str, Any], engine: bytes | None) -> None:
        self.config = config
        self.engine = engine

    def save(self, engine_dir: str) -> None:
        os.makedirs(engine_dir, exist_ok=True)
        with open(os.path.join(engine_dir, "config.json"), "w") as config:
            json.dump(self.config, config, indent=4, default=str)
        if self.engine is not None:
            with open(os.path.join(engine_dir, "rank0.engine"), "wb") as engine:
                engine.write(self.engine)


def build(model: PretrainedModel, build_config: BuildConfig) -> Engine:
    build_config = copy.deepcopy(build_config)
    build_config.plugin_config.dtype = model.config.dtype
    kv_cache_type = build_config.kv_cache_type or KVCacheType.PAGED
    build_config.plugin_config.paged_kv_cache = kv_cache_type is KVCacheType.PAGED
    quantization = model.config.quantization
    sm = get_sm_version()
    if 100 <= sm < 120 and quantization.is_weight_only:
        raise RuntimeError("INT8/INT4 quantization is not supported on SM>=100.")
    if quantization.is_weight_only:
        build_config.plugin_config.weight_only_quant_matmul_plugin = model.config.dtype
    config = {
        "version": "1.2.1",
        "pretrained_config": model.to_dict(),
        "build_config": {
            **{k: v for k, v in asdict(build_config).items() if k != "plugin_config"},
            "kv_cache_type": kv_cache_type.name,
            "plugin_config": build_config.plugin_config.to_dict(),
        },
    }
    return Engine(config, engine=f"stand-in engine, SM {sm}\n".encode())
