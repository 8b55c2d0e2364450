"""`--target trtllm`: the printed plan sizes the engine from the model's limits, and
without a GPU the build stops with a clear message instead of failing half-way."""

from __future__ import annotations

import shlex

import pytest

from build_engines.cli import main as build_engines_main
from llm_contract.engines import ENGINE_SPECS


def flag_values(plan_text: str) -> dict[str, str]:
    line = next(line for line in plan_text.splitlines() if "equivalent: trtllm-build" in line)
    words = shlex.split(line.split("equivalent: ", 1)[1])
    return {
        words[i][2:]: words[i + 1] for i in range(1, len(words) - 1) if words[i].startswith("--")
    }


@pytest.mark.parametrize(
    ("precision", "max_input_len", "max_seq_len"), [("int8", 2048, 3848), ("fp16", 3072, 5572)]
)
def test_dry_run_plan_flags_match_the_model_limits(
    capsys: pytest.CaptureFixture[str], precision: str, max_input_len: int, max_seq_len: int
) -> None:
    code = build_engines_main(
        ["--target", "trtllm", "--precision", precision, "--checkpoint", "/ckpt", "--dry-run"]
    )
    flags = flag_values(capsys.readouterr().out)
    assert code == 0
    assert flags["max_input_len"] == str(max_input_len)
    assert flags["max_seq_len"] == str(max_seq_len)
    assert flags["kv_cache_type"] == "paged"
    assert int(flags["max_num_tokens"]) >= max_input_len


def test_int8_plan_converts_with_weight_only_int8(capsys: pytest.CaptureFixture[str]) -> None:
    build_engines_main(
        ["--target", "trtllm", "--precision", "int8", "--checkpoint", "/c", "--dry-run"]
    )
    out = capsys.readouterr().out
    assert "--use_weight_only --weight_only_precision int8" in out
    assert "QuantAlgo.W8A16" in out


def test_fp16_plan_converts_without_quantization(capsys: pytest.CaptureFixture[str]) -> None:
    build_engines_main(
        ["--target", "trtllm", "--precision", "fp16", "--checkpoint", "/c", "--dry-run"]
    )
    out = capsys.readouterr().out
    assert "--use_weight_only" not in out
    assert "--dtype float16" in out


def test_build_without_tensorrt_llm_stops_with_a_clear_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = build_engines_main(["--target", "trtllm", "--precision", "int8", "--checkpoint", "/c"])
    assert code == 2
    assert "tensorrt_llm is not installed" in capsys.readouterr().err


def test_limits_come_from_the_engine_catalog() -> None:
    assert ENGINE_SPECS["int8"].limits.max_seq_len == 2048 + 1800
    assert ENGINE_SPECS["fp16"].limits.max_seq_len == 3072 + 2500
