"""The model catalog: public model names mapped to Triton models, tokenizers and limits.

The catalog is configuration. Without a catalog file the gateway serves the two CPU twin
models that `build-engines --target cpu` writes into the local model repository; production
points `GATEWAY_CATALOG_FILE` at a JSON file naming the TensorRT-LLM models.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgspec

from llm_contract.embeddings import BGE_SMALL_EN_V1_5, EMBEDDING_MODEL, POOLING_OUTPUTS
from llm_contract.engines import ENGINE_SPECS
from llm_contract.model_repository import (
    DEFAULT_EMBEDDING_TWIN,
    DEFAULT_TWIN,
    TOKENIZER_FILE,
    TOKENIZER_FOLDER,
    TWIN_DESCRIPTION_FILE,
    TwinDescription,
)

TEXT_GENERATION = "Text Generation"
TEXT_EMBEDDINGS = "Text Embeddings"
TASK_LABELS = {TEXT_GENERATION: "text_generation", TEXT_EMBEDDINGS: "text_embeddings"}
"""Each task's value of the request metric's `task` label."""


class CatalogEntry(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    triton_model: str
    tokenizer_dir: str
    max_input_tokens: int
    """Text generation: the prompt's tokens; text embeddings: each input's."""
    precision: str
    description: str
    task: str = TEXT_GENERATION
    max_output_tokens: int = 0
    """Text generation: the tokens a run generates at most."""
    dimensions: int | None = None
    """Text embeddings: the vectors' length."""
    poolings: tuple[str, ...] = ()
    """Text embeddings: the `pooling` values a request may ask for; the first is the default."""
    max_batch_size: int = 32
    """Text embeddings: sequences per backend request (the Triton model's max_batch_size)."""
    length_buckets: tuple[int, ...] = ()
    """Text embeddings: the padded lengths sent to the backend, the last the longest input."""
    triton_grpc_url: str | None = None
    """Overrides the gateway-wide Triton address, for models served by their own Triton."""
    chat_template: str | None = None
    """A Jinja chat template that replaces the one in the model's tokenizer_config.json."""

    def __post_init__(self) -> None:
        if self.task not in TASK_LABELS:
            raise ValueError(f"task must be one of {sorted(TASK_LABELS)}")
        if self.task == TEXT_GENERATION and self.max_output_tokens < 1:
            raise ValueError("a text-generation model needs max_output_tokens")
        if self.task == TEXT_EMBEDDINGS:
            if self.dimensions is None or not self.poolings:
                raise ValueError("a text-embeddings model needs dimensions and poolings")
            if not self.length_buckets or self.length_buckets[-1] != self.max_input_tokens:
                raise ValueError("length_buckets must end at max_input_tokens")

    @property
    def task_label(self) -> str:
        return TASK_LABELS[self.task]


class CatalogFile(msgspec.Struct, frozen=True):
    models: list[CatalogEntry]


class CatalogError(Exception):
    """The catalog cannot be served as configured; the message names what to fix."""


class ModelCatalog:
    def __init__(self, entries: list[CatalogEntry], *, twin_repository: Path | None = None) -> None:
        """`twin_repository`: the CPU twins' repository, for a default catalog (the fix for
        a missing tokenizer differs: a CPU build there, or the engine build job)."""
        self._entries = {entry.name: entry for entry in entries}
        if len(self._entries) != len(entries):
            raise ValueError("the model catalog names a model twice")
        self._twin_repository = twin_repository

    def check_tokenizers(self) -> None:
        """Fail at start-up, naming the model and the missing file, rather than at a request."""
        for entry in self:
            path = Path(entry.tokenizer_dir) / TOKENIZER_FILE
            if not path.is_file():
                raise CatalogError(
                    f"model '{entry.name}': its tokenizer {path} does not exist; "
                    f"{self._tokenizer_builder(entry)}"
                )

    def _tokenizer_builder(self, entry: CatalogEntry) -> str:
        if self._twin_repository is not None:
            return (
                "build the CPU twins with `build-engines --target cpu --precision all "
                f"--output {self._twin_repository}` (or set GATEWAY_MODEL_REPOSITORY to the "
                "repository that holds them)"
            )
        return (
            "the engine build writes it (`build-engines --target trtllm --precision "
            f"{entry.precision} --checkpoint … --output <model repository>`; in Kubernetes "
            "the chart's engine build job), or correct the model's tokenizer_dir in "
            "GATEWAY_CATALOG_FILE"
        )

    def __iter__(self) -> Iterator[CatalogEntry]:
        return iter(self._entries.values())

    def get(self, name: str) -> CatalogEntry | None:
        return self._entries.get(name)

    @property
    def entries(self) -> list[CatalogEntry]:
        return list(self._entries.values())

    def search(self, text: str | None, task: str | None) -> list[CatalogEntry]:
        """Workers AI's model search: `text` in the name or description, of the named task;
        both ignore case, and `None` matches all."""
        return [entry for entry in self if _matches(entry, text, task)]


def _matches(entry: CatalogEntry, text: str | None, task: str | None) -> bool:
    if task is not None and entry.task.casefold() != task.casefold():
        return False
    if text is None:
        return True
    needle = text.casefold()
    return needle in entry.name.casefold() or needle in entry.description.casefold()


def twin_catalog(model_repository: Path) -> ModelCatalog:
    """The embedded default: the CPU twins of both engines in the local model repository,
    named after the model they run and the engine they stand in for, with the engine's limits:
    `@twin/smollm2-135m-instruct/llama-2-7b-chat-int8`; and the embedding twin, where the
    repository holds one (the random build has none)."""
    entries = []
    for spec in ENGINE_SPECS.values():
        model_dir = model_repository / spec.generation_model
        twin = _twin_description(model_dir / TWIN_DESCRIPTION_FILE)
        engine = f"llama-2-7b-chat-{spec.precision}"
        entries.append(
            CatalogEntry(
                name=f"@twin/{twin.model}/{engine}",
                triton_model=spec.generation_model,
                tokenizer_dir=str(model_dir / TOKENIZER_FOLDER),
                max_input_tokens=spec.limits.max_input_len,
                max_output_tokens=spec.limits.max_output_len,
                precision=spec.precision,
                description=f"{twin.title} on the CPU, standing in for {spec.description}: "
                "the engine's limits and TensorRT-LLM's tensor interface",
            )
        )
    if (model_repository / EMBEDDING_MODEL).is_dir():
        entries.append(_embedding_twin_entry(model_repository))
    return ModelCatalog(entries, twin_repository=model_repository)


def _embedding_twin_entry(model_repository: Path) -> CatalogEntry:
    """The embedding twin, named like the text twins after the model it runs and the one it
    stands in for, with that model's limits and poolings."""
    spec = BGE_SMALL_EN_V1_5
    model_dir = model_repository / EMBEDDING_MODEL
    twin = _twin_description(model_dir / TWIN_DESCRIPTION_FILE, DEFAULT_EMBEDDING_TWIN)
    return CatalogEntry(
        name=f"@twin/{twin.model}/{spec.name.rpartition('/')[2]}",
        triton_model=EMBEDDING_MODEL,
        tokenizer_dir=str(model_dir / TOKENIZER_FOLDER),
        max_input_tokens=spec.max_input_tokens,
        precision="fp32",
        description=f"{twin.title} on the CPU, standing in for {spec.description}: its limits "
        "and the TensorRT plan's tensor interface",
        task=TEXT_EMBEDDINGS,
        dimensions=spec.dimensions,
        poolings=tuple(POOLING_OUTPUTS),
        max_batch_size=spec.max_batch_size,
        length_buckets=spec.length_buckets,
    )


def _twin_description(path: Path, default: TwinDescription = DEFAULT_TWIN) -> TwinDescription:
    """What the twin runs; before the twins are built, the default model (start-up then
    fails on the missing tokenizer, naming the build command)."""
    try:
        return msgspec.json.decode(path.read_bytes(), type=TwinDescription)
    except FileNotFoundError:
        return default
    except (OSError, msgspec.DecodeError) as error:
        raise CatalogError(f"{path}: {error}") from error


def load_catalog(catalog_file: Path | None, model_repository: Path) -> ModelCatalog:
    if catalog_file is None:
        return twin_catalog(model_repository)
    try:
        document = msgspec.json.decode(catalog_file.read_bytes(), type=CatalogFile)
    except (OSError, msgspec.DecodeError) as error:
        raise CatalogError(f"catalog file {catalog_file}: {error}") from error
    return ModelCatalog(document.models)
