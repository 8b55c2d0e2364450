"""The model catalog: public model names mapped to Triton models, tokenizers and limits.

The catalog is configuration. Without a catalog file the gateway serves the two CPU twin
models that `build-engines --target cpu` writes into the local model repository; production
points `GATEWAY_CATALOG_FILE` at a JSON file naming the TensorRT-LLM models.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgspec

from build_engines.repository import TOKENIZER_FOLDER
from build_engines.spec import ENGINE_SPECS

TEXT_GENERATION = "Text Generation"


class CatalogEntry(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    triton_model: str
    tokenizer_dir: str
    max_input_tokens: int
    max_output_tokens: int
    precision: str
    description: str
    task: str = TEXT_GENERATION
    triton_grpc_url: str | None = None
    """Overrides the gateway-wide Triton address, for models served by their own Triton."""


class CatalogFile(msgspec.Struct, frozen=True):
    models: list[CatalogEntry]


class ModelCatalog:
    def __init__(self, entries: list[CatalogEntry]) -> None:
        self._entries = {entry.name: entry for entry in entries}
        if len(self._entries) != len(entries):
            raise ValueError("the model catalog names a model twice")

    def __iter__(self) -> Iterator[CatalogEntry]:
        return iter(self._entries.values())

    def get(self, name: str) -> CatalogEntry | None:
        return self._entries.get(name)

    @property
    def entries(self) -> list[CatalogEntry]:
        return list(self._entries.values())


def twin_catalog(model_repository: Path) -> ModelCatalog:
    """The embedded default: the CPU twins of both engines in the local model repository."""
    return ModelCatalog(
        [
            CatalogEntry(
                name=f"@twin/meta/llama-2-7b-chat-{spec.precision}",
                triton_model=spec.triton_model("tensorrt_llm"),
                tokenizer_dir=str(
                    model_repository / spec.triton_model("tensorrt_llm") / TOKENIZER_FOLDER
                ),
                max_input_tokens=spec.limits.max_input_len,
                max_output_tokens=spec.limits.max_output_len,
                precision=spec.precision,
                description=f"CPU twin of {spec.description}: a tiny Llama-architecture "
                "network with seeded weights and the same limits and tensor interface",
            )
            for spec in ENGINE_SPECS.values()
        ]
    )


def load_catalog(catalog_file: Path | None, model_repository: Path) -> ModelCatalog:
    if catalog_file is None:
        return twin_catalog(model_repository)
    document = msgspec.json.decode(catalog_file.read_bytes(), type=CatalogFile)
    return ModelCatalog(document.models)
