"""Reading the twin's config.pbtxt parameters."""

from __future__ import annotations

import json

import pytest

from build_engines.cpu_twin.config import ConfigError, parse_twin_config
from tests.cpu_twin.conftest import model_args
from tests.cpu_twin.doubles import SMALL_CONFIG


def parameters() -> dict[str, dict[str, str]]:
    parsed: dict[str, dict[str, str]] = json.loads(model_args(SMALL_CONFIG)["model_config"])[
        "parameters"
    ]
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
