"""Names in a Triton model repository that `build-engines` writes and the gateway reads
(the layout they make up: `build_engines.repository`)."""

from __future__ import annotations

from dataclasses import dataclass

GENERATION_COMPONENT = "tensorrt_llm"
TEXT_PATH_COMPONENTS = ("preprocessing", "postprocessing", "ensemble", "bls")
TOKENIZER_FOLDER = "tokenizer"
"""Beside the generation model: the one copy of the tokenizer every text-path model and the
gateway's catalog point at."""
TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
TWIN_DESCRIPTION_FILE = "twin.json"


@dataclass(frozen=True)
class TwinDescription:
    """`twin.json`: what a CPU twin runs; the catalog names the twin after `model`."""

    model: str
    title: str


DEFAULT_TWIN = TwinDescription(
    model="smollm2-135m-instruct", title="SmolLM2-135M-Instruct (Hugging Face)"
)
"""What the default CPU build's twins run (SmolLM2); the catalog's name for a twin not built
yet, so that start-up can name the build that is missing."""

DEFAULT_EMBEDDING_TWIN = TwinDescription(
    model="all-minilm-l6-v2", title="all-MiniLM-L6-v2 (sentence-transformers)"
)
"""What the default CPU build's embedding twin runs."""
