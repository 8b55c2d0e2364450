"""The twin's settings, read once from the string parameters of its `config.pbtxt`.

Triton hands every parameter over as a string; parsing them all here, into one frozen value,
means a typo or a missing key fails the model load with the key's name instead of surfacing
as a wrong type deep inside the generation thread.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from llm_contract import trtllm_backend
from llm_contract.engines import PRECISIONS, Precision

from .network import LlamaShape

DEFAULT_CANCELLATION_CHECK_PERIOD_MS = 100.0

T = TypeVar("T")


class ConfigError(ValueError):
    """A config.pbtxt parameter is missing or has a value the twin cannot use."""


@dataclass(frozen=True)
class TwinConfig:
    max_input_len: int
    max_output_len: int
    max_inflight_requests: int
    decode_tokens_per_second: float
    """Pace of each decode step (0 = as fast as the CPU goes), to mimic a GPU's token rate."""
    cancellation_check_period_ms: float
    weight_precision: Precision
    weights_file: str
    """The engine file (`weights.py`), relative to the model's version folder or absolute."""
    network: LlamaShape
    exclude_input_in_output: bool = False
    """Default when a request does not say, as the tensorrtllm backend's parameter of that name."""


def check_contract(model_config: Mapping[str, Any]) -> None:
    """Load only a config the real backend would load and serve as declared: its required
    parameters present, no input it would silently ignore, both outputs it always fills."""
    parameters = model_config.get("parameters", {})
    for name in trtllm_backend.REQUIRED_PARAMETERS:
        if name not in parameters:
            raise ConfigError(trtllm_backend.missing_parameter_message(name))
    backend = parameters["guided_decoding_backend"]
    backend = backend.get("string_value", "") if isinstance(backend, Mapping) else ""
    if backend.strip():
        raise ConfigError(
            f"guided_decoding_backend {backend!r}: the CPU twin has no guided decoding; "
            "leave the parameter empty"
        )
    for tensor in model_config.get("input", []):
        if tensor.get("name") not in trtllm_backend.UPSTREAM_INPUT_NAMES:
            raise ConfigError(
                f"input {tensor.get('name')!r} is not read by {trtllm_backend.UPSTREAM_VERSION}'s "
                "tensorrtllm backend: it would accept it and ignore it"
            )
    declared = {tensor.get("name") for tensor in model_config.get("output", [])}
    for name in trtllm_backend.REQUIRED_OUTPUTS:
        if name not in declared:
            raise ConfigError(f"output {name!r} is missing: the backend fills it in every response")


def parse_twin_config(parameters: Mapping[str, Any]) -> TwinConfig:
    """Build the config from Triton's `parameters` map ({key: {"string_value": ...}})."""
    reader = _ParameterReader(parameters)
    network = LlamaShape(
        vocab_size=reader.positive_int("vocab_size"),
        hidden_size=reader.positive_int("hidden_size"),
        num_hidden_layers=reader.positive_int("num_hidden_layers"),
        num_attention_heads=reader.positive_int("num_attention_heads"),
        num_key_value_heads=reader.positive_int("num_key_value_heads"),
        intermediate_size=reader.positive_int("intermediate_size"),
        rope_theta=reader.positive_float("rope_theta"),
        rms_norm_eps=reader.positive_float("rms_norm_eps"),
    )
    _check_attention_heads(network)
    return TwinConfig(
        max_input_len=reader.positive_int("max_input_len"),
        max_output_len=reader.positive_int("max_output_len"),
        max_inflight_requests=reader.positive_int("max_inflight_requests"),
        decode_tokens_per_second=reader.non_negative_float("decode_tokens_per_second"),
        cancellation_check_period_ms=reader.positive_float(
            "cancellation_check_period_ms", default=DEFAULT_CANCELLATION_CHECK_PERIOD_MS
        ),
        weight_precision=reader.precision("weight_precision"),
        weights_file=reader.text("weights_file"),
        network=network,
        exclude_input_in_output=reader.boolean("exclude_input_in_output", default=False),
    )


def _check_attention_heads(network: LlamaShape) -> None:
    if network.hidden_size % network.num_attention_heads:
        raise ConfigError(
            f"hidden_size {network.hidden_size} is not a multiple of "
            f"num_attention_heads {network.num_attention_heads}"
        )
    if network.num_attention_heads % network.num_key_value_heads:
        raise ConfigError(
            f"num_attention_heads {network.num_attention_heads} is not a multiple of "
            f"num_key_value_heads {network.num_key_value_heads}"
        )
    if network.head_dim % 2:
        raise ConfigError(
            f"rotary embeddings need an even head size, got hidden_size / num_attention_heads "
            f"= {network.head_dim}"
        )


class _ParameterReader:
    """Typed access to string parameters; every error names the parameter."""

    def __init__(self, parameters: Mapping[str, Any]) -> None:
        self._parameters = parameters

    def positive_int(self, key: str) -> int:
        return self._checked(key, int, lambda value: value > 0, "a positive integer")

    def positive_float(self, key: str, default: float | None = None) -> float:
        return self._checked(key, float, lambda value: value > 0, "a positive number", default)

    def non_negative_float(self, key: str) -> float:
        return self._checked(key, float, lambda value: value >= 0, "a non-negative number")

    def boolean(self, key: str, default: bool) -> bool:
        text = self._text(key, default=str(default).lower()).lower()
        if text not in ("true", "false"):
            raise ConfigError(f"parameter {key!r} must be true or false, got {text!r}")
        return text == "true"

    def text(self, key: str) -> str:
        return self._text(key, default=None)

    def precision(self, key: str) -> Precision:
        text = self._text(key, default=None)
        for precision in PRECISIONS:
            if text == precision:
                return precision
        raise ConfigError(f"parameter {key!r} must be one of {PRECISIONS}, got {text!r}")

    def _checked(
        self,
        key: str,
        parse: Callable[[str], T],
        valid: Callable[[T], bool],
        expected: str,
        default: T | None = None,
    ) -> T:
        text = self._text(key, default=None if default is None else str(default))
        try:
            value = parse(text)
        except ValueError:
            raise ConfigError(f"parameter {key!r} must be {expected}, got {text!r}") from None
        if not valid(value):
            raise ConfigError(f"parameter {key!r} must be {expected}, got {text!r}")
        return value

    def _text(self, key: str, default: str | None) -> str:
        entry = self._parameters.get(key)
        text = entry.get("string_value") if isinstance(entry, Mapping) else None
        if text is None or not str(text).strip():
            if default is not None:
                return default
            raise ConfigError(f"config.pbtxt parameter {key!r} is missing")
        return str(text).strip()
