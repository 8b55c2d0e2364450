"""The twin's engine file: its weights stored as the engine of its precision stores them.

int8 (weight-only): every matrix as int8 with one float32 scale per output channel, as
TensorRT-LLM's weight-only quantization keeps them; fp16: every matrix rounded to float16.
Norms stay float32 and the embedding (and a separate output layer) float16 in both, as
weight-only quantization leaves them. `build-engines --target cpu` writes the file; the twin
loads it and widens the stored values to float32 once (see `LlamaWeights`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import numpy.typing as npt

from llm_contract.engines import Precision

from .network import DecoderLayer, FloatArray, LlamaShape, LlamaWeights

MATRICES = ("qkv", "output", "gate_up", "down")
NORMS = ("attention_norm", "mlp_norm")
WEIGHTS_FILE = "weights.npz"


class WeightsFileError(ValueError):
    """The weights file is missing, or does not hold the network the config describes."""


def quantize_int8(weight: FloatArray) -> tuple[npt.NDArray[np.int8], FloatArray]:
    """Symmetric int8 per output channel (column): the scale maps the column's largest
    magnitude to 127."""
    largest = np.abs(weight).max(axis=0)
    scale = (np.where(largest > 0, largest, 1.0) / 127.0).astype(np.float32)
    quantized = np.clip(np.rint(weight / scale), -127, 127).astype(np.int8)
    return quantized, scale


def stored_arrays(
    weights: LlamaWeights, precision: Precision
) -> dict[str, npt.NDArray[np.generic]]:
    """The arrays of the engine file, by name."""
    arrays: dict[str, npt.NDArray[np.generic]] = {
        "precision": np.array(precision),
        "embedding": weights.embedding.astype(np.float16),
        "final_norm": weights.final_norm.astype(np.float32),
    }
    if weights.lm_head is not None:
        arrays["lm_head"] = weights.lm_head.astype(np.float16)
    for index, layer in enumerate(weights.layers):
        prefix = f"layers.{index}."
        for norm in NORMS:
            arrays[prefix + norm] = getattr(layer, norm).astype(np.float32)
        for name in MATRICES:
            matrix: FloatArray = getattr(layer, name)
            if precision == "int8":
                arrays[prefix + name], arrays[prefix + name + ".scale"] = quantize_int8(matrix)
            else:
                arrays[prefix + name] = matrix.astype(np.float16)
    return arrays


def save_weights(path: Path, weights: LlamaWeights, precision: Precision) -> None:
    with path.open("wb") as file:
        np.savez(file, **stored_arrays(weights, precision))


def widened(arrays: Mapping[str, npt.NDArray[np.generic]], shape: LlamaShape) -> LlamaWeights:
    """Float32 weights from stored arrays, each checked against `shape`."""
    reader = _ArrayReader(arrays)
    hidden, vocab = shape.hidden_size, shape.vocab_size
    head_width = shape.num_attention_heads * shape.head_dim
    qkv_width = head_width + 2 * shape.num_key_value_heads * shape.head_dim
    expected = {
        "qkv": (hidden, qkv_width),
        "output": (head_width, hidden),
        "gate_up": (hidden, 2 * shape.intermediate_size),
        "down": (shape.intermediate_size, hidden),
    }
    layers = []
    for index in range(shape.num_hidden_layers):
        prefix = f"layers.{index}."
        matrices = {name: reader.matrix(prefix + name, expected[name]) for name in MATRICES}
        norms = {name: reader.vector(prefix + name, hidden) for name in NORMS}
        layers.append(DecoderLayer(**norms, **matrices))
    return LlamaWeights(
        embedding=reader.matrix("embedding", (vocab, hidden)),
        layers=tuple(layers),
        final_norm=reader.vector("final_norm", hidden),
        lm_head=reader.matrix("lm_head", (hidden, vocab)) if "lm_head" in arrays else None,
    )


def as_stored(weights: LlamaWeights, precision: Precision, shape: LlamaShape) -> LlamaWeights:
    """What the twin computes with after storing `weights` in `precision` and loading them."""
    return widened(stored_arrays(weights, precision), shape)


def load_weights(path: Path, shape: LlamaShape, precision: Precision) -> LlamaWeights:
    if not path.is_file():
        raise WeightsFileError(
            f"the twin's weights file {path} does not exist; rebuild the model repository "
            "with `build-engines --target cpu`"
        )
    with np.load(path, allow_pickle=False) as archive:
        stored = str(archive["precision"]) if "precision" in archive else "unknown"
        if stored != precision:
            raise WeightsFileError(f"{path} holds {stored} weights, the config says {precision}")
        try:
            # Read from the archive one array at a time: only one stored array is ever held
            # beside the float32 weights.
            return widened(archive, shape)
        except WeightsFileError as error:
            raise WeightsFileError(f"{path}: {error}") from None


class _ArrayReader:
    def __init__(self, arrays: Mapping[str, npt.NDArray[np.generic]]) -> None:
        self._arrays = arrays

    def matrix(self, name: str, shape: tuple[int, int]) -> FloatArray:
        stored = self._get(name, shape)
        values: FloatArray = stored.astype(np.float32)
        if stored.dtype == np.int8:
            values *= self._get(name + ".scale", (shape[1],)).astype(np.float32)
        return values

    def vector(self, name: str, size: int) -> FloatArray:
        return self._get(name, (size,)).astype(np.float32)

    def _get(self, name: str, shape: tuple[int, ...]) -> npt.NDArray[np.generic]:
        array = self._arrays.get(name)
        if array is None:
            raise WeightsFileError(f"no array {name!r}")
        if array.shape != shape:
            raise WeightsFileError(
                f"array {name!r} has shape {array.shape}, the config implies {shape}"
            )
        return array
