"""What the CPU twins run: SmolLM2-135M-Instruct by default, or a random tiny network.

The real model makes the embedded default serve answers a person can judge; the random one
(`build-engines --target cpu --twin-model random`) is a fast synthetic backend for tests and
benchmarks of the gateway itself, with a small Llama-2-style tokenizer and Llama-2-7b-chat's
own chat template. Both twins of an engine run the same weights, stored in the engine's
precision (`cpu_twin.weights`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from build_engines import smollm2
from build_engines.cpu_twin.network import LlamaShape, LlamaWeights, random_weights
from build_engines.embedding_repository import EmbeddingTwin
from build_engines.tokenizer_asset import TOKENIZER_CONFIG_PATH, TOKENIZER_PATH
from llm_contract.model_repository import DEFAULT_TWIN

TwinModelName = Literal["smollm2", "random"]
TWIN_MODELS: tuple[TwinModelName, ...] = ("smollm2", "random")


@dataclass(frozen=True)
class TwinModel:
    name: str
    """The model's segment of the catalog name (`@twin/<name>/<engine>`)."""
    title: str
    shape: LlamaShape
    weights: LlamaWeights
    """Float32; each twin stores them in its engine's precision."""
    tokenizer_files: tuple[Path, ...]


@dataclass(frozen=True)
class RandomNetwork:
    """Dimensions of the random twin's tiny network; the vocabulary is its tokenizer's."""

    hidden_size: int = 64
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    intermediate_size: int = 172
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5
    weight_seed: int = 20240229


def load_twin_model(name: TwinModelName, scratch: Path) -> TwinModel:
    """The model `name`; files it has to write first (SmolLM2's tokenizer) go to `scratch`."""
    return smollm2_twin(scratch) if name == "smollm2" else random_twin()


def smollm2_twin(tokenizer_dir: Path) -> TwinModel:
    from build_engines.gguf_tokenizer import write_tokenizer_files

    reader = smollm2.read_reader(smollm2.gguf_path())
    converted = smollm2.convert(reader)
    tokenizer_dir.mkdir(parents=True, exist_ok=True)
    return TwinModel(
        name=DEFAULT_TWIN.model,
        title=DEFAULT_TWIN.title,
        shape=converted.shape,
        weights=converted.weights,
        tokenizer_files=write_tokenizer_files(reader, tokenizer_dir),
    )


def random_twin(network: RandomNetwork = RandomNetwork()) -> TwinModel:
    from tokenizers import Tokenizer

    shape = LlamaShape(
        vocab_size=Tokenizer.from_file(str(TOKENIZER_PATH)).get_vocab_size(),
        hidden_size=network.hidden_size,
        num_hidden_layers=network.num_hidden_layers,
        num_attention_heads=network.num_attention_heads,
        num_key_value_heads=network.num_key_value_heads,
        intermediate_size=network.intermediate_size,
        rope_theta=network.rope_theta,
        rms_norm_eps=network.rms_norm_eps,
    )
    return TwinModel(
        name="random",
        title="a tiny Llama-architecture network with random weights (says nothing)",
        shape=shape,
        weights=random_weights(shape, network.weight_seed),
        tokenizer_files=(TOKENIZER_PATH, TOKENIZER_CONFIG_PATH),
    )


def embedding_twin() -> EmbeddingTwin:
    """The embedding twin the real build writes beside the text twins: all-MiniLM-L6-v2.
    (The random build has none: a vector of random weights tests nothing the real one does
    not, and every Triton a test starts would load it.)"""
    from build_engines import minilm

    folder = minilm.model_folder()
    tokenizer_files = (folder / "tokenizer.json", folder / "tokenizer_config.json")
    return EmbeddingTwin(minilm.NAME, minilm.TITLE, minilm.read_weights(folder), tokenizer_files)
