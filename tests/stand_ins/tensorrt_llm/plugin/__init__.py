"""`PluginConfig` (plugin/plugin.py, a pydantic model with validate_assignment since 1.2):
assigning a field it does not have, or a value its type refuses, raises a ValueError."""

from typing import Any

DTYPES = ("auto", "float16", "float32", "bfloat16", "int32")
FIELDS: dict[str, tuple[object, tuple[object, ...] | type]] = {
    "dtype": ("float16", ("float16", "float32", "bfloat16")),
    "gemm_plugin": (None, (*DTYPES, "fp8", "nvfp4", None)),
    "gpt_attention_plugin": ("auto", (*DTYPES, None)),
    "weight_only_quant_matmul_plugin": (None, (*DTYPES, None)),
    "context_fmha": (True, bool),
    "use_paged_context_fmha": (True, bool),
    "remove_input_padding": (True, bool),
    "tokens_per_block": (32, int),
    "paged_kv_cache": (None, (True, False, None)),
}


class PluginConfig:
    def __init__(self, **values: Any) -> None:
        for name, (default, _) in FIELDS.items():
            object.__setattr__(self, name, default)
        for name, value in values.items():
            if name in FIELDS:  # upstream ignores unknown constructor arguments
                setattr(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in FIELDS:
            raise ValueError(f'"PluginConfig" object has no field "{name}"')
        _, allowed = FIELDS[name]
        valid = isinstance(value, allowed) if isinstance(allowed, type) else value in allowed
        if not valid or (allowed is int and isinstance(value, bool)):
            raise ValueError(f"PluginConfig.{name}: invalid value {value!r}")
        object.__setattr__(self, name, value)

    def __getattribute__(self, name: str) -> Any:
        value = object.__getattribute__(self, name)
        if name in FIELDS and value == "auto":
            return object.__getattribute__(self, "dtype")
        return value

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in FIELDS}
