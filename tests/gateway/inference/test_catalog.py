"""The model catalog: the embedded twin default and the production file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.inference.catalog import CatalogEntry, CatalogError, ModelCatalog, load_catalog
from llm_contract.embeddings import BGE_SMALL_EN_V1_5, EMBEDDING_MODEL
from llm_contract.engines import ENGINE_SPECS

PRODUCTION_CATALOG = Path(__file__).parents[3] / "deploy" / "catalog.production.json"


def test_default_catalog_maps_both_cpu_twins_with_their_limits(tmp_path: Path) -> None:
    catalog = load_catalog(None, tmp_path)
    twin = catalog.get("@twin/smollm2-135m-instruct/llama-2-7b-chat-fp16")
    assert twin is not None
    assert twin.triton_model == ENGINE_SPECS["fp16"].generation_model
    assert (twin.max_input_tokens, twin.max_output_tokens) == (3072, 2500)
    assert twin.tokenizer_dir.startswith(str(tmp_path))


def test_twin_names_and_descriptions_say_which_model_answers_for_which_engine(
    tmp_path: Path,
) -> None:
    model_dir = tmp_path / ENGINE_SPECS["int8"].generation_model
    model_dir.mkdir()
    (model_dir / "twin.json").write_text('{"model": "random", "title": "a random network"}')
    names = {entry.name: entry.description for entry in load_catalog(None, tmp_path)}
    assert names.keys() == {
        "@twin/random/llama-2-7b-chat-int8",
        "@twin/smollm2-135m-instruct/llama-2-7b-chat-fp16",
    }
    assert names["@twin/random/llama-2-7b-chat-int8"].startswith(
        "a random network on the CPU, standing in for Llama-2-7b-chat, weight-only int8"
    )
    assert "SmolLM2-135M-Instruct" in names["@twin/smollm2-135m-instruct/llama-2-7b-chat-fp16"]


def test_an_unreadable_twin_description_is_a_catalog_error(tmp_path: Path) -> None:
    model_dir = tmp_path / ENGINE_SPECS["int8"].generation_model
    model_dir.mkdir()
    (model_dir / "twin.json").write_text("{")
    with pytest.raises(CatalogError, match=r"twin\.json"):
        load_catalog(None, tmp_path)


@pytest.mark.parametrize("precision", ["int8", "fp16"])
def test_production_catalog_maps_the_cf_names_to_tensorrt_llm_models(precision: str) -> None:
    spec = ENGINE_SPECS[precision]  # type: ignore[index]
    entry = load_catalog(PRODUCTION_CATALOG, Path("unused")).get(
        f"@cf/meta/llama-2-7b-chat-{precision}"
    )
    assert entry is not None
    assert entry.triton_model == spec.generation_model
    assert (entry.max_input_tokens, entry.max_output_tokens) == (
        spec.limits.max_input_len,
        spec.limits.max_output_len,
    )


def test_the_default_catalog_serves_the_embedding_twin_with_the_production_models_limits(
    tmp_path: Path,
) -> None:
    (tmp_path / EMBEDDING_MODEL).mkdir()
    twin = load_catalog(None, tmp_path).get("@twin/all-minilm-l6-v2/bge-small-en-v1.5")
    production = load_catalog(PRODUCTION_CATALOG, Path("unused")).get(BGE_SMALL_EN_V1_5.name)
    assert twin is not None
    assert production is not None
    assert twin.task == production.task == "Text Embeddings"
    for limit in ("max_input_tokens", "dimensions", "poolings", "max_batch_size",
                  "length_buckets", "triton_model"):  # fmt: skip
        assert getattr(twin, limit) == getattr(production, limit), limit


def test_a_repository_without_an_embedding_twin_serves_its_text_twins_alone(
    tmp_path: Path,
) -> None:
    """The random build has none."""
    assert [entry.task for entry in load_catalog(None, tmp_path)] == ["Text Generation"] * 2


@pytest.mark.parametrize(
    ("fields", "refusal"),
    [
        ({"task": "Image Classification"}, "task must be one of"),
        ({"task": "Text Generation", "max_output_tokens": 0}, "needs max_output_tokens"),
        ({"task": "Text Embeddings", "poolings": []}, "needs dimensions and poolings"),
        ({"task": "Text Embeddings", "length_buckets": [16, 256]}, "must end at max_input"),
    ],
)
def test_a_catalog_entry_missing_what_its_task_needs_is_refused(
    tmp_path: Path, fields: dict[str, object], refusal: str
) -> None:
    entry = {
        "name": "m", "triton_model": "t", "tokenizer_dir": "d", "max_input_tokens": 512,
        "precision": "fp16", "description": "", "dimensions": 384, "poolings": ["mean"],
        "length_buckets": [16, 512], **fields,
    }  # fmt: skip
    catalog_file = tmp_path / "catalog.json"
    catalog_file.write_text(json.dumps({"models": [entry]}))
    with pytest.raises(CatalogError, match=refusal):
        load_catalog(catalog_file, tmp_path)


def test_a_catalog_naming_a_model_twice_is_refused() -> None:
    entry = CatalogEntry(
        name="m", triton_model="t", tokenizer_dir="d", max_input_tokens=1,
        max_output_tokens=1, precision="fp16", description="",
    )  # fmt: skip
    with pytest.raises(ValueError, match="twice"):
        ModelCatalog([entry, entry])


PRODUCTION_NAMES = [
    "@cf/meta/llama-2-7b-chat-int8",
    "@cf/meta/llama-2-7b-chat-fp16",
    "@cf/baai/bge-small-en-v1.5",
]
TEXT_MODELS = PRODUCTION_NAMES[:2]


@pytest.mark.parametrize(
    ("text", "task", "found"),
    [
        (None, None, PRODUCTION_NAMES),
        ("CHAT-INT8", None, PRODUCTION_NAMES[:1]),
        ("WEIGHT-ONLY", None, PRODUCTION_NAMES[:1]),
        ("half precision", None, []),
        (None, "text generation", TEXT_MODELS),
        (None, "Text Embeddings", PRODUCTION_NAMES[2:]),
        ("fp16", "Text Generation", TEXT_MODELS[1:]),
    ],
)
def test_search_finds_text_in_names_and_descriptions_of_a_task_ignoring_case(
    text: str | None, task: str | None, found: list[str]
) -> None:
    catalog = load_catalog(PRODUCTION_CATALOG, Path("unused"))
    assert [entry.name for entry in catalog.search(text, task)] == found
