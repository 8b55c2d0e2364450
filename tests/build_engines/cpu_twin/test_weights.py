"""The twin's engine file: weights stored in the engine's precision, widened once at load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from build_engines.cpu_twin.network import LlamaWeights, random_weights
from build_engines.cpu_twin.weights import (
    WeightsFileError,
    load_weights,
    quantize_int8,
    save_weights,
    stored_arrays,
)
from tests.build_engines.cpu_twin.doubles import SMALL_SHAPE


@pytest.fixture(scope="module")
def weights() -> LlamaWeights:
    return random_weights(SMALL_SHAPE, seed=7)


def test_int8_matrices_are_stored_as_int8_with_one_scale_per_output_channel(
    weights: LlamaWeights,
) -> None:
    arrays = stored_arrays(weights, "int8")
    for name in ("qkv", "output", "gate_up", "down"):
        stored, scale = arrays[f"layers.0.{name}"], arrays[f"layers.0.{name}.scale"]
        assert stored.dtype == np.int8
        assert scale.shape == (stored.shape[1],)
        assert np.abs(stored).max(axis=0).min() == 127


def test_fp16_matrices_are_stored_as_float16(weights: LlamaWeights) -> None:
    arrays = stored_arrays(weights, "fp16")
    assert arrays["layers.1.gate_up"].dtype == np.float16
    assert "layers.1.gate_up.scale" not in arrays


def test_int8_quantization_error_is_within_half_a_step_per_channel(weights: LlamaWeights) -> None:
    matrix = weights.layers[0].qkv
    quantized, scale = quantize_int8(matrix)
    assert np.all(np.abs(quantized * scale - matrix) <= scale / 2 + 1e-7)


@pytest.mark.parametrize("precision", ["int8", "fp16"])
def test_loading_widens_the_stored_values_to_float32(
    weights: LlamaWeights, tmp_path: Path, precision: str
) -> None:
    path = tmp_path / "weights.npz"
    save_weights(path, weights, precision)  # type: ignore[arg-type]
    loaded = load_weights(path, SMALL_SHAPE, precision)  # type: ignore[arg-type]
    arrays = stored_arrays(weights, precision)  # type: ignore[arg-type]
    widened = arrays["layers.0.down"].astype(np.float32)
    if precision == "int8":
        widened *= arrays["layers.0.down.scale"]
    assert loaded.layers[0].down.dtype == np.float32
    np.testing.assert_array_equal(loaded.layers[0].down, widened)


def test_a_missing_weights_file_names_the_build_command(tmp_path: Path) -> None:
    with pytest.raises(WeightsFileError, match="build-engines --target cpu"):
        load_weights(tmp_path / "weights.npz", SMALL_SHAPE, "int8")


def test_a_file_of_the_other_precision_is_refused(weights: LlamaWeights, tmp_path: Path) -> None:
    path = tmp_path / "weights.npz"
    save_weights(path, weights, "fp16")
    with pytest.raises(WeightsFileError, match="holds fp16 weights, the config says int8"):
        load_weights(path, SMALL_SHAPE, "int8")


def test_a_file_of_another_shape_is_refused_naming_the_array(
    weights: LlamaWeights, tmp_path: Path
) -> None:
    path = tmp_path / "weights.npz"
    save_weights(path, weights, "int8")
    wider = SMALL_SHAPE.__class__(**{**SMALL_SHAPE.__dict__, "intermediate_size": 256})
    with pytest.raises(WeightsFileError, match=r"'layers\.0\.gate_up' has shape"):
        load_weights(path, wider, "int8")
