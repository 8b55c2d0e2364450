"""Reading the twin's config.pbtxt parameters."""

from __future__ import annotations

import json
from typing import Any

import pytest

from build_engines.cpu_twin.config import ConfigError, check_contract, parse_twin_config
from tests.build_engines.cpu_twin.conftest import model_args
from tests.build_engines.cpu_twin.doubles import SMALL_CONFIG


def parameters() -> dict[str, dict[str, str]]:
    parsed: dict[str, dict[str, str]] = json.loads(model_args(SMALL_CONFIG)["model_config"])[
        "parameters"
    ]
    return parsed


def model_config() -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(model_args(SMALL_CONFIG)["model_config"])
    return parsed


def test_parameters_parse_into_the_config() -> None:
    assert parse_twin_config(parameters()) == SMALL_CONFIG


def test_a_missing_parameter_is_named() -> None:
    incomplete = parameters()
    del incomplete["num_key_value_heads"]
    with pytest.raises(ConfigError, match="'num_key_value_heads' is missing"):
        parse_twin_config(incomplete)


def test_cancellation_check_period_defaults_to_100_ms() -> None:
    without = parameters()
    del without["cancellation_check_period_ms"]
    assert parse_twin_config(without).cancellation_check_period_ms == 100.0


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("max_input_len", "lots", "'max_input_len' must be a positive integer, got 'lots'"),
        ("max_output_len", "0", "'max_output_len' must be a positive integer"),
        ("weight_precision", "int4", "'weight_precision' must be one of"),
        ("decode_tokens_per_second", "-1", "'decode_tokens_per_second' must be a non-negative"),
        ("num_key_value_heads", "3", "not a multiple of num_key_value_heads 3"),
    ],
)
def test_an_invalid_parameter_is_named(key: str, value: str, message: str) -> None:
    invalid = parameters()
    invalid[key] = {"string_value": value}
    with pytest.raises(ConfigError, match=message):
        parse_twin_config(invalid)


def test_a_config_as_the_repository_writes_it_holds_the_contract() -> None:
    check_contract(model_config())


@pytest.mark.parametrize(
    "name", ["tokenizer_dir", "xgrammar_tokenizer_info_path", "guided_decoding_backend"]
)
def test_a_parameter_the_backend_reads_without_default_is_required(name: str) -> None:
    config = model_config()
    del config["parameters"][name]
    with pytest.raises(ConfigError, match=f"^Cannot find parameter with name: {name}$"):
        check_contract(config)


def test_guided_decoding_is_refused_as_the_twin_cannot_honour_it() -> None:
    config = model_config()
    config["parameters"]["guided_decoding_backend"] = {"string_value": "xgrammar"}
    with pytest.raises(ConfigError, match="no guided decoding"):
        check_contract(config)


@pytest.mark.parametrize("name", ["random_seed", "min_length"])
def test_an_input_the_backend_would_ignore_is_refused(name: str) -> None:
    config = model_config()
    config["input"].append({"name": name, "data_type": "TYPE_INT32"})
    with pytest.raises(ConfigError, match=f"input '{name}' is not read by TensorRT-LLM 1.2.1"):
        check_contract(config)


def test_both_outputs_must_be_declared() -> None:
    config = model_config()
    config["output"] = [{"name": "output_ids", "data_type": "TYPE_INT32"}]
    with pytest.raises(ConfigError, match="output 'sequence_length' is missing"):
        check_contract(config)
