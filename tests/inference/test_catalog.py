"""The model catalog: the embedded twin default and the production file."""

from __future__ import annotations

from pathlib import Path

import pytest

from build_engines.spec import ENGINE_SPECS
from gateway.inference.catalog import CatalogEntry, ModelCatalog, load_catalog

PRODUCTION_CATALOG = Path(__file__).parents[2] / "deploy" / "catalog.production.json"


def test_default_catalog_maps_both_cpu_twins_with_their_limits(tmp_path: Path) -> None:
    catalog = load_catalog(None, tmp_path)
    twin = catalog.get("@twin/meta/llama-2-7b-chat-fp16")
    assert twin is not None
    assert twin.triton_model == ENGINE_SPECS["fp16"].triton_model("tensorrt_llm")
    assert (twin.max_input_tokens, twin.max_output_tokens) == (3072, 2500)
    assert twin.tokenizer_dir.startswith(str(tmp_path))


@pytest.mark.parametrize("precision", ["int8", "fp16"])
def test_production_catalog_maps_the_cf_names_to_tensorrt_llm_models(precision: str) -> None:
    spec = ENGINE_SPECS[precision]  # type: ignore[index]
    entry = load_catalog(PRODUCTION_CATALOG, Path("unused")).get(
        f"@cf/meta/llama-2-7b-chat-{precision}"
    )
    assert entry is not None
    assert entry.triton_model == spec.triton_model("tensorrt_llm")
    assert (entry.max_input_tokens, entry.max_output_tokens) == (
        spec.limits.max_input_len,
        spec.limits.max_output_len,
    )


def test_a_catalog_naming_a_model_twice_is_refused() -> None:
    entry = CatalogEntry(
        name="m", triton_model="t", tokenizer_dir="d", max_input_tokens=1,
        max_output_tokens=1, precision="fp16", description="",
    )  # fmt: skip
    with pytest.raises(ValueError, match="twice"):
        ModelCatalog([entry, entry])
