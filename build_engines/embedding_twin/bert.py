"""A BERT encoder (all-MiniLM-L6-v2's shape by default) and the two poolings, in NumPy.

Float32 throughout, as the model was trained: one batched pass over sequences of one padded
length, the padding masked out of attention and of the mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int32]

LAYER_ARRAYS = ("qkv", "qkv_bias", "attention_out", "attention_out_bias", "attention_norm",
                "attention_norm_bias", "up", "up_bias", "down", "down_bias", "output_norm",
                "output_norm_bias")  # fmt: skip
"""Each layer's arrays: matrices as (in, out), so a layer is `x @ matrix + bias`."""

MLP_BLOCK_ROWS = 128
"""The feed-forward block runs this many tokens at a time: its 1,536-wide activation
(768 kB) stays in cache through the GELU's dozen element-wise passes."""


@dataclass(frozen=True)
class BertShape:
    vocab_size: int = 30522
    hidden_size: int = 384
    num_hidden_layers: int = 6
    num_attention_heads: int = 12
    intermediate_size: int = 1536
    max_position_embeddings: int = 512
    layer_norm_eps: float = 1e-12

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads


class BertWeights:
    """Arrays by name: `word`, `position`, `token_type` (row 0), `embedding_norm` and its
    `_bias`, and `layers.{i}.{name}` for `LAYER_ARRAYS`, the query, key and value matrices
    fused into one `qkv` so a layer makes one matmul for all three."""

    def __init__(self, arrays: dict[str, FloatArray], shape: BertShape) -> None:
        self.arrays = arrays
        self.shape = shape
        _check(arrays, shape)

    def save(self, path: Path) -> None:
        with path.open("wb") as file:
            np.savez(file, **self.arrays)

    @classmethod
    def load(cls, path: Path, shape: BertShape) -> BertWeights:
        with np.load(path) as stored:
            arrays = {name: stored[name].astype(np.float32) for name in stored.files}
        return cls(arrays, shape)


def _check(arrays: dict[str, FloatArray], shape: BertShape) -> None:
    hidden, inner = shape.hidden_size, shape.intermediate_size
    expected = {
        "word": (shape.vocab_size, hidden),
        "position": (shape.max_position_embeddings, hidden),
        "token_type": (hidden,),
        "embedding_norm": (hidden,),
        "embedding_norm_bias": (hidden,),
    }
    per_layer = {
        "qkv": (hidden, 3 * hidden), "qkv_bias": (3 * hidden,),
        "attention_out": (hidden, hidden), "attention_out_bias": (hidden,),
        "attention_norm": (hidden,), "attention_norm_bias": (hidden,),
        "up": (hidden, inner), "up_bias": (inner,),
        "down": (inner, hidden), "down_bias": (hidden,),
        "output_norm": (hidden,), "output_norm_bias": (hidden,),
    }  # fmt: skip
    for index in range(shape.num_hidden_layers):
        expected |= {f"layers.{index}.{name}": dims for name, dims in per_layer.items()}
    for name, dims in expected.items():
        array = arrays.get(name)
        if array is None or array.shape != dims:
            found = "missing" if array is None else f"shape {array.shape}"
            raise ValueError(f"weights: {name} is {found}, the network needs {dims}")


@dataclass(frozen=True)
class PooledVectors:
    mean: FloatArray
    """(batch, hidden): the mean over the tokens the mask keeps, L2-normalized."""
    cls: FloatArray
    """(batch, hidden): the first token's state, L2-normalized."""


class BertEncoder:
    def __init__(self, weights: BertWeights) -> None:
        self.shape = weights.shape
        self._arrays = _with_scaled_queries(weights.arrays, weights.shape)

    def encode(self, input_ids: IntArray, attention_mask: IntArray) -> PooledVectors:
        """Both poolings of a batch of sequences of one padded length."""
        states = self.hidden_states(input_ids, attention_mask)
        mask = attention_mask.astype(np.float32)[:, :, None]
        summed = (states * mask).sum(axis=1)
        mean = summed / np.maximum(mask.sum(axis=1), 1e-9)
        return PooledVectors(mean=_normalized(mean), cls=_normalized(states[:, 0, :]))

    def hidden_states(self, input_ids: IntArray, attention_mask: IntArray) -> FloatArray:
        arrays, shape = self._arrays, self.shape
        batch, length = input_ids.shape
        x = arrays["word"][input_ids] + arrays["position"][:length] + arrays["token_type"]
        x = _layer_norm(x, arrays["embedding_norm"], arrays["embedding_norm_bias"], shape)
        # Padding keys get a large negative score: their softmax weight underflows to zero.
        key_bias = None
        if not attention_mask.all():
            key_bias = np.where(attention_mask[:, None, None, :] > 0, 0.0, -1e30)
            key_bias = key_bias.astype(np.float32)
        x = x.reshape(batch * length, shape.hidden_size)
        for index in range(shape.num_hidden_layers):
            x = self._layer(f"layers.{index}.", x, key_bias, batch, length)
        return x.reshape(batch, length, shape.hidden_size)

    def _layer(
        self, prefix: str, x: FloatArray, key_bias: FloatArray | None, batch: int, length: int
    ) -> FloatArray:
        arrays, shape = self._arrays, self.shape
        heads, head_dim = shape.num_attention_heads, shape.head_dim
        qkv = x @ arrays[prefix + "qkv"] + arrays[prefix + "qkv_bias"]
        qkv = qkv.reshape(batch, length, 3, heads, head_dim).transpose(2, 0, 3, 1, 4)
        query, key, value = qkv[0], qkv[1], qkv[2]
        scores = query @ key.transpose(0, 1, 3, 2)
        if key_bias is not None:
            scores += key_bias
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        context = (scores @ value).transpose(0, 2, 1, 3).reshape(batch * length, -1)
        attended = (
            context @ arrays[prefix + "attention_out"] + arrays[prefix + "attention_out_bias"]
        )
        x = _layer_norm(
            x + attended, arrays[prefix + "attention_norm"], arrays[prefix + "attention_norm_bias"],
            shape,
        )  # fmt: skip
        out = np.empty_like(x)
        for start in range(0, len(x), MLP_BLOCK_ROWS):
            rows = slice(start, start + MLP_BLOCK_ROWS)
            inner = x[rows] @ arrays[prefix + "up"]
            inner += arrays[prefix + "up_bias"]
            _gelu_in_place(inner)
            np.matmul(inner, arrays[prefix + "down"], out=out[rows])
        out += arrays[prefix + "down_bias"]
        return _layer_norm(
            x + out, arrays[prefix + "output_norm"], arrays[prefix + "output_norm_bias"], shape
        )


def _with_scaled_queries(arrays: dict[str, FloatArray], shape: BertShape) -> dict[str, FloatArray]:
    """The arrays with attention's 1/√d folded into the query projection: one pass fewer
    over the (batch, heads, length, length) scores."""
    scaled = dict(arrays)
    scale = np.float32(1 / np.sqrt(shape.head_dim))
    queries = slice(0, shape.hidden_size)
    for index in range(shape.num_hidden_layers):
        for name in ("qkv", "qkv_bias"):
            array = arrays[f"layers.{index}.{name}"].copy()
            array[..., queries] *= scale
            scaled[f"layers.{index}.{name}"] = array
    return scaled


def _layer_norm(
    x: FloatArray, weight: FloatArray, bias: FloatArray, shape: BertShape
) -> FloatArray:
    centred = x - x.mean(axis=-1, keepdims=True)
    variance = np.square(centred).mean(axis=-1, keepdims=True)
    normed: FloatArray = centred / np.sqrt(variance + np.float32(shape.layer_norm_eps))
    return normed * weight + bias


def _gelu_in_place(x: FloatArray) -> None:
    """BERT's exact GELU, x·Φ(x), not the tanh approximation, in place, on a block small
    enough to stay in cache. x·Φ(x) = (x + |x|·erf(|x|/√2))/2, with erf = 1 - erfc and erfc
    by Abramowitz and Stegun 7.1.26 (absolute error ≤ 1.5e-7, float32's own rounding:
    NumPy has no erf)."""
    magnitude = np.abs(x)
    z = magnitude * np.float32(1 / np.sqrt(2))
    t = np.float32(0.3275911) * z
    t += np.float32(1.0)
    np.reciprocal(t, out=t)
    poly = np.float32(1.061405429) * t
    for coefficient in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += np.float32(coefficient)
        poly *= t
    np.square(z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    poly *= z
    poly *= magnitude  # |x|·erfc(|x|/√2)
    x += magnitude
    x -= poly
    x *= np.float32(0.5)


def _normalized(vectors: FloatArray) -> FloatArray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    result: FloatArray = vectors / np.maximum(norms, 1e-12)
    return result.astype(np.float32)
