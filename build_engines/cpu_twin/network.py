"""A Llama-architecture network in NumPy: Llama-2's computation at a size a CPU decodes.

The twin runs a real small model (SmolLM2-135M-Instruct, converted by `build_engines.smollm2`)
or, for tests that need a fast synthetic backend, a tiny network with random weights. Either
way everything the serving path depends on is real: a prompt is prefilled in one pass, every
later token is one decode step against a per-request KV cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .kv_cache import KVCache

FloatArray = npt.NDArray[np.float32]
TokenArray = npt.NDArray[np.int64]

PREFILL_QUERY_BLOCK = 512
"""Prefill attends this many prompt positions at a time, bounding the score matrix's memory."""

LOGIT_SCALE = 2.0
"""Standard deviation of the logits: large enough that greedy decoding has clear winners."""


@dataclass(frozen=True)
class LlamaShape:
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    intermediate_size: int
    rope_theta: float
    rms_norm_eps: float

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def queries_per_kv_head(self) -> int:
        return self.num_attention_heads // self.num_key_value_heads


@dataclass(frozen=True)
class DecoderLayer:
    """One Llama block as float32 matrices (in_features, out_features); Q/K/V and gate/up are
    fused, as TensorRT-LLM fuses them, so each is one matmul per step."""

    attention_norm: FloatArray
    qkv: FloatArray
    output: FloatArray
    mlp_norm: FloatArray
    gate_up: FloatArray
    down: FloatArray

    @property
    def matrices(self) -> tuple[FloatArray, ...]:
        return (self.qkv, self.output, self.gate_up, self.down)


@dataclass(frozen=True)
class LlamaWeights:
    """The network's weights in float32, the precision the twin computes in.

    A twin's weights are stored as its engine stores them (`weights.py`: int8 with
    per-channel scales, or float16) and widened once at load: NumPy has no fast int8 or
    float16 matmul, and widening per step would cost more than the matmul itself.
    """

    embedding: FloatArray
    layers: tuple[DecoderLayer, ...]
    final_norm: FloatArray
    lm_head: FloatArray | None = None
    """(hidden, vocab); None when the output layer is the embedding (tied, as SmolLM2's)."""

    @property
    def output_layer(self) -> FloatArray:
        return self.embedding.T if self.lm_head is None else self.lm_head

    @property
    def nbytes(self) -> int:
        arrays = [self.embedding, self.final_norm]
        if self.lm_head is not None:
            arrays.append(self.lm_head)
        for layer in self.layers:
            arrays += [layer.attention_norm, layer.mlp_norm, *layer.matrices]
        return sum(int(array.nbytes) for array in arrays)


def random_weights(shape: LlamaShape, seed: int) -> LlamaWeights:
    """Float32 weights drawn from `seed`: a network that computes like a model, says nothing.

    Scales follow the usual initialisations: 1/sqrt(fan_in) for projections, residual
    branches shrunk by the depth, and an output layer that gives logits of standard deviation
    `LOGIT_SCALE` after the final RMSNorm, so greedy decoding has clear winners.
    """
    rng = np.random.default_rng(seed)
    hidden, heads = shape.hidden_size, shape.num_attention_heads
    kv_width = shape.num_key_value_heads * shape.head_dim
    residual_scale = 1.0 / np.sqrt(2.0 * shape.num_hidden_layers)

    def matrix(rows: int, columns: int, scale: float = 1.0) -> FloatArray:
        values = rng.standard_normal((rows, columns), dtype=np.float32)
        return values * np.float32(scale / np.sqrt(rows))

    def norm_weight() -> FloatArray:
        return (1.0 + 0.1 * rng.standard_normal(hidden, dtype=np.float32)).astype(np.float32)

    embedding = rng.standard_normal((shape.vocab_size, hidden), dtype=np.float32)
    layers = tuple(
        DecoderLayer(
            attention_norm=norm_weight(),
            qkv=matrix(hidden, heads * shape.head_dim + 2 * kv_width),
            output=matrix(heads * shape.head_dim, hidden, residual_scale),
            mlp_norm=norm_weight(),
            gate_up=matrix(hidden, 2 * shape.intermediate_size),
            down=matrix(shape.intermediate_size, hidden, residual_scale),
        )
        for _ in range(shape.num_hidden_layers)
    )
    return LlamaWeights(
        embedding=embedding,
        layers=layers,
        final_norm=norm_weight(),
        lm_head=matrix(hidden, shape.vocab_size, LOGIT_SCALE),
    )


def rms_norm(x: FloatArray, weight: FloatArray, eps: float) -> FloatArray:
    mean_square = np.mean(np.square(x), axis=-1, keepdims=True)
    normalized: FloatArray = x / np.sqrt(mean_square + np.float32(eps)) * weight
    return normalized


def silu(x: FloatArray) -> FloatArray:
    return x / (np.float32(1.0) + np.exp(-x))


def softmax_last_axis(scores: FloatArray) -> FloatArray:
    scores = scores - scores.max(axis=-1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=-1, keepdims=True)
    return scores


class LlamaNetwork:
    """Prefill and batched decode of a Llama network over per-request KV caches."""

    def __init__(self, shape: LlamaShape, weights: LlamaWeights) -> None:
        self.shape = shape
        self.weights = weights
        half = shape.head_dim // 2
        exponents = np.arange(half, dtype=np.float64) * 2.0 / shape.head_dim
        self._inverse_frequencies = (1.0 / shape.rope_theta**exponents).astype(np.float64)
        self._attention_scale = np.float32(1.0 / np.sqrt(shape.head_dim))

    def new_cache(self) -> KVCache:
        shape = self.shape
        return KVCache(shape.num_hidden_layers, shape.num_key_value_heads, shape.head_dim)

    def prefill(self, token_ids: TokenArray, cache: KVCache) -> FloatArray:
        """Run the prompt through in one pass, fill `cache`, return the next token's logits."""
        count = len(token_ids)
        start = cache.length
        cache.reserve(start + count)
        positions = np.arange(start, start + count)
        x = self.weights.embedding[token_ids]
        for index, layer in enumerate(self.weights.layers):
            queries, keys, values = self._project_qkv(layer, x, positions)
            cache.keys[index, :, start : start + count] = keys.transpose(1, 0, 2)
            cache.values[index, :, start : start + count] = values.transpose(1, 0, 2)
            attended = self._causal_attention(queries, cache, index, start)
            x = self._finish_layer(layer, x, attended)
        cache.length = start + count
        logits: FloatArray = self._logits(x[-1:])[0]
        return logits

    def decode(self, token_ids: TokenArray, caches: Sequence[KVCache]) -> FloatArray:
        """One step for a batch: token i extends caches[i]; returns logits (batch, vocab).

        Projections and the MLP run as one matmul over the batch; attention is per request,
        against that request's own cache. Caches commit their new length only at the end, so
        a failed step leaves them as they were.
        """
        positions = np.array([cache.length for cache in caches])
        for cache in caches:
            cache.reserve(cache.length + 1)
        x = self.weights.embedding[token_ids]
        for index, layer in enumerate(self.weights.layers):
            queries, keys, values = self._project_qkv(layer, x, positions)
            attended = self._attend_each(queries, keys, values, caches, positions, index)
            x = self._finish_layer(layer, x, attended)
        for cache in caches:
            cache.length += 1
        return self._logits(x)

    def _project_qkv(
        self, layer: DecoderLayer, x: FloatArray, positions: npt.NDArray[np.int64]
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Q (n, heads, d), K and V (n, kv_heads, d), with rotary embeddings on Q and K."""
        shape = self.shape
        fused = rms_norm(x, layer.attention_norm, shape.rms_norm_eps) @ layer.qkv
        query_width = shape.num_attention_heads * shape.head_dim
        kv_width = shape.num_key_value_heads * shape.head_dim
        rows = len(x)
        queries = fused[:, :query_width].reshape(rows, shape.num_attention_heads, shape.head_dim)
        keys = fused[:, query_width : query_width + kv_width]
        values = fused[:, query_width + kv_width :]
        keys = keys.reshape(rows, shape.num_key_value_heads, shape.head_dim)
        cos, sin = self._rotary_tables(positions)
        return (
            _rotate(queries, cos, sin),
            _rotate(keys, cos, sin),
            values.reshape(rows, shape.num_key_value_heads, shape.head_dim),
        )

    def _rotary_tables(self, positions: npt.NDArray[np.int64]) -> tuple[FloatArray, FloatArray]:
        angles = positions[:, None].astype(np.float64) * self._inverse_frequencies[None, :]
        cos = np.cos(angles).astype(np.float32)[:, None, :]
        sin = np.sin(angles).astype(np.float32)[:, None, :]
        return cos, sin

    def _causal_attention(
        self, queries: FloatArray, cache: KVCache, layer: int, start: int
    ) -> FloatArray:
        """Prompt positions start.. attend to the cache up to themselves, in query blocks."""
        shape = self.shape
        count = len(queries)
        grouped = queries.transpose(1, 0, 2).reshape(
            shape.num_key_value_heads, shape.queries_per_kv_head, count, shape.head_dim
        )
        attended = np.empty_like(grouped)
        for block_start in range(0, count, PREFILL_QUERY_BLOCK):
            block_end = min(count, block_start + PREFILL_QUERY_BLOCK)
            visible = start + block_end
            keys = cache.keys[layer, :, :visible][:, None]
            values = cache.values[layer, :, :visible][:, None]
            scores = grouped[:, :, block_start:block_end] @ keys.transpose(0, 1, 3, 2)
            scores *= self._attention_scale
            query_positions = start + np.arange(block_start, block_end)
            future = np.arange(visible)[None, :] > query_positions[:, None]
            scores[..., future] = -np.inf
            attended[:, :, block_start:block_end] = softmax_last_axis(scores) @ values
        return attended.reshape(shape.num_attention_heads, count, shape.head_dim).transpose(1, 0, 2)

    def _attend_each(
        self,
        queries: FloatArray,
        keys: FloatArray,
        values: FloatArray,
        caches: Sequence[KVCache],
        positions: npt.NDArray[np.int64],
        layer: int,
    ) -> FloatArray:
        """Append each request's new key and value to its cache, and attend its whole cache.

        This loop is the decode step's cost at large batches, so it is kept to the fewest
        NumPy calls: queries are scaled for the whole batch first, and the softmax is
        normalized on the (small) output instead of the scores.
        """
        shape = self.shape
        grouped = (queries * self._attention_scale).reshape(
            len(caches), shape.num_key_value_heads, shape.queries_per_kv_head, shape.head_dim
        )
        attended = np.empty_like(grouped)
        for row, cache in enumerate(caches):
            position = positions[row]
            cache.keys[layer, :, position] = keys[row]
            cache.values[layer, :, position] = values[row]
            length = position + 1
            scores = grouped[row] @ cache.keys[layer, :, :length].transpose(0, 2, 1)
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            attended[row] = (scores @ cache.values[layer, :, :length]) / scores.sum(
                axis=-1, keepdims=True
            )
        return attended.reshape(queries.shape)

    def _finish_layer(self, layer: DecoderLayer, x: FloatArray, attended: FloatArray) -> FloatArray:
        """Attention output projection and the SwiGLU MLP, each added to the residual."""
        x = x + attended.reshape(len(x), -1) @ layer.output
        gate_up = rms_norm(x, layer.mlp_norm, self.shape.rms_norm_eps) @ layer.gate_up
        gate, up = np.split(gate_up, 2, axis=-1)
        output: FloatArray = x + (silu(gate) * up) @ layer.down
        return output

    def _logits(self, x: FloatArray) -> FloatArray:
        normalized = rms_norm(x, self.weights.final_norm, self.shape.rms_norm_eps)
        logits: FloatArray = normalized @ self.weights.output_layer
        return logits


def _rotate(x: FloatArray, cos: FloatArray, sin: FloatArray) -> FloatArray:
    """Rotary embedding, Llama's rotate-half layout: (x1, x2) -> (x1 c - x2 s, x2 c + x1 s)."""
    half = x.shape[-1] // 2
    first, second = x[..., :half], x[..., half:]
    return np.concatenate((first * cos - second * sin, second * cos + first * sin), axis=-1)
